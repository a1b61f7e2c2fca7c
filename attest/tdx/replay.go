package tdx

import (
	"crypto"
	"fmt"
	"strings"

	"github.com/google/go-eventlog/ccel"
	"github.com/google/go-eventlog/extract"
	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tpm"
)

// Size bounds of a CCEL event log and its ACPI table.
const (
	// MaxCCELSize bounds the CCEL event log (firmware reserves 256 KiB or
	// so, mostly padding).
	MaxCCELSize = 2 << 20
	// MaxCCELTableSize bounds the CCEL ACPI table (56 bytes today).
	MaxCCELTableSize = 4 << 10
)

// Claim names of a replayed CCEL event log.
const (
	ClaimCCELEvents     = "ccel_events"
	ClaimKernelCmdline  = "kernel_cmdline"
	ClaimGRUBCommands   = "grub_commands"
	ClaimCCELExtraction = "ccel_extraction"
	// ClaimUKISections are the UKI sections systemd-stub measured into
	// RTMR2 (CC MR 3), as attest/tpm reads them from PCR 11 of a TPM log:
	// [{name, digest}].
	ClaimUKISections = "uki_sections"
	// ClaimUKINote says why RTMR2's EV_IPL events are not a UKI boot.
	ClaimUKINote = "uki_note"
)

// ReplayCCEL replays a TDX Confidential Computing event log (TCG
// crypto-agile, SHA-384) against RTMR0 to RTMR3 and returns what the
// verified events say: the number of events and, for a GRUB boot, the
// kernel command line and GRUB commands (best effort: an extraction error
// is reported in the claims, not as a replay failure). table, when
// given, is the CCEL ACPI table, which must name TDX.
func ReplayCCEL(table, log []byte, rtmr [4][48]byte) (claims map[string]any, err error) {
	if len(log) == 0 || len(log) > MaxCCELSize {
		return nil, fmt.Errorf("the CCEL event log is %d bytes; it must be 1 to %d", len(log), MaxCCELSize)
	}
	if len(table) > MaxCCELTableSize {
		return nil, fmt.Errorf("the CCEL ACPI table is %d bytes; the limit is %d", len(table), MaxCCELTableSize)
	}
	defer func() {
		if r := recover(); r != nil {
			claims, err = nil, fmt.Errorf("the CCEL event log is malformed (%v)", r)
		}
	}()
	bank := register.RTMRBank{}
	for i := range rtmr {
		bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: rtmr[i][:]})
	}
	if table != nil {
		// go-eventlog checks the table's CC type; only its errors about the
		// table matter here, the replay is checked below.
		if _, err := ccel.ReplayAndExtract(table, log, bank, extract.Opts{Loader: extract.UnsupportedLoader}); err != nil && isTableError(err) {
			return nil, err
		}
	}
	events, err := tcg.ParseAndReplay(log, bank.MRs(), tcg.ParseOpts{AllowPadding: true})
	if err != nil {
		return nil, fmt.Errorf("the CCEL event log does not reproduce the quoted RTMRs: %v", err)
	}
	claims = map[string]any{ClaimCCELEvents: len(events)}
	st, xerr := extract.FirmwareLogState(events, crypto.SHA384, extract.RTMRRegisterConfig, extract.Opts{Loader: extract.GRUB})
	if st != nil {
		if c := st.GetLinuxKernel().GetCommandLine(); c != "" {
			claims[ClaimKernelCmdline] = c
		}
		if cmds := st.GetGrub().GetCommands(); len(cmds) > 0 {
			claims[ClaimGRUBCommands] = cmds
		}
	}
	if xerr != nil {
		claims[ClaimCCELExtraction] = xerr.Error()
	}
	// A UKI boot: systemd-stub measures its sections into PCR 11, which a
	// TD's CCEL maps to RTMR2 (CC MR 3).
	if uki, err := tpm.UKISections(events, 3, crypto.SHA384, "RTMR2 (CC MR 3)"); err != nil {
		claims[ClaimUKINote] = err.Error()
	} else if len(uki) > 0 {
		// As plain maps, which policy rules (CEL) read.
		sections := make([]any, len(uki))
		for i, u := range uki {
			sections[i] = map[string]any{"name": u.Name, "digest": u.Digest}
		}
		claims[ClaimUKISections] = sections
	}
	return claims, nil
}

func isTableError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "CCEL ACPI Table") || strings.Contains(s, "only TDX Confidential Computing")
}

// checkReplay replays a stapled CCEL event log against the quoted RTMRs.
// It is trusted only as far as the quote is: the claims it adds say what
// the boot measured into RTMRs the quote vouches for.
func checkReplay(s *attest.Section, a *Attestation, env *attest.Env) map[string]any {
	const id = "tdx.replay"
	if a.CCEL == nil {
		if tdxPolicy(env.Policy).RequireEventLog {
			s.Add(id, attest.Fail, "no CCEL event log is stapled, and the policy requires one (tdx.require_event_log): staple /sys/firmware/acpi/tables/data/CCEL")
			return nil
		}
		s.AddOptional(id, attest.Skip, "no CCEL event log stapled: RTMR0–3 are taken as quoted, with no account of what was measured into them")
		return nil
	}
	c, err := ReplayCCEL(a.CCELTable, a.CCEL, a.Quote.Body.RTMR)
	if err != nil {
		s.Add(id, attest.Fail, "%v", err)
		return nil
	}
	detail := fmt.Sprintf("the CCEL event log (%d events) reproduces RTMR0–3", c[ClaimCCELEvents])
	if cmd, ok := c[ClaimKernelCmdline].(string); ok {
		detail += fmt.Sprintf("; kernel command line %q", excerpt(cmd, 80))
	}
	if uki, ok := c[ClaimUKISections].([]any); ok {
		var names []string
		for _, u := range uki {
			names = append(names, u.(map[string]any)["name"].(string))
		}
		detail += "; UKI sections in RTMR2: " + strings.Join(names, ", ")
	}
	s.Add(id, attest.Pass, "%s", detail)
	env.Ledger.Verify("tdx.replay", "The TD's boot event log reproduces the quoted RTMRs.")
	return c
}

func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
