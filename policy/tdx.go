package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// TCBAction is what a TDX TCB status other than UpToDate does to the
// verdict: warn (the device is at best "warning") or refuse (the device is
// "contraindicated").
type TCBAction string

// The TCB actions.
const (
	TCBWarn   TCBAction = "warn"
	TCBRefuse TCBAction = "refuse"
)

// TDXStatuses are the TCB statuses Intel's TCB info and QE identity use,
// best first.
var TDXStatuses = []string{
	"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
	"OutOfDate", "OutOfDateConfigurationNeeded", "Revoked",
}

// defaultTCBActions is what each status does when the policy does not say:
// a platform that needs hardening or configuration is a warning (the
// advisories are carried into the result); an out-of-date or revoked one is
// refused.
var defaultTCBActions = map[string]TCBAction{
	"SWHardeningNeeded":                 TCBWarn,
	"ConfigurationNeeded":               TCBWarn,
	"ConfigurationAndSWHardeningNeeded": TCBWarn,
	"OutOfDate":                         TCBRefuse,
	"OutOfDateConfigurationNeeded":      TCBRefuse,
	"Revoked":                           TCBRefuse,
}

// TDX is the Intel TDX section of a policy.
type TDX struct {
	// Optional accepts a bundle whose CPU TEE is not TDX although this
	// section configures TDX checks (a policy for several platforms).
	Optional bool `yaml:"optional"`
	// TCBStatus maps a TCB status other than UpToDate (of the platform, from
	// the TCB info, and of the Quoting Enclave, from the QE identity) to
	// warn or refuse. Unlisted statuses take the defaults: SWHardeningNeeded,
	// ConfigurationNeeded and ConfigurationAndSWHardeningNeeded warn;
	// OutOfDate, OutOfDateConfigurationNeeded and Revoked refuse.
	TCBStatus map[string]TCBAction `yaml:"tcb_status"`
	// MRTD lists the allowed MRTDs (hex, 48 bytes); empty: not checked.
	MRTD []HexBytes `yaml:"mrtd"`
	// RTMR0 to RTMR3 list the allowed values of each RTMR (hex, 48 bytes);
	// empty: not checked.
	RTMR0 []HexBytes `yaml:"rtmr0"`
	RTMR1 []HexBytes `yaml:"rtmr1"`
	RTMR2 []HexBytes `yaml:"rtmr2"`
	RTMR3 []HexBytes `yaml:"rtmr3"`
	// MRConfigID, MROwner and MROwnerConfig, when set, must equal the
	// quote's (hex, 48 bytes).
	MRConfigID    HexBytes `yaml:"mr_config_id"`
	MROwner       HexBytes `yaml:"mr_owner"`
	MROwnerConfig HexBytes `yaml:"mr_owner_config"`
	// XFAM lists the allowed XFAM values (hex, 8 bytes as in the quote);
	// empty: not checked.
	XFAM []HexBytes `yaml:"xfam"`
	// MinTEETCBSVN is the floor of TEE_TCB_SVN, byte by byte (hex, 16
	// bytes); empty: no floor beyond the TCB status.
	MinTEETCBSVN HexBytes `yaml:"min_tee_tcb_svn"`
	// AllowSEPTVE accepts TDs without the SEPT_VE_DISABLE attribute (the
	// host can then inject #VE on EPT violations, which the guest must
	// handle). Default: refused.
	AllowSEPTVE bool `yaml:"allow_sept_ve"`
	// AllowMigratable accepts TDs with the MIGRATABLE attribute.
	AllowMigratable bool `yaml:"allow_migratable"`
	// AllowPerfmon accepts TDs with the PERFMON attribute (the TD may use
	// the host's performance monitoring).
	AllowPerfmon bool `yaml:"allow_perfmon"`
	// SkipRevocation turns off the PCK CRL check; the ledger then says so.
	SkipRevocation bool `yaml:"skip_revocation"`
	// RequireEventLog requires a stapled CCEL event log that replays to
	// the RTMRs (tdx.replay); by default a missing log is an optional skip.
	RequireEventLog bool `yaml:"require_event_log"`
}

// Action returns what a TCB status does under the policy: "" for UpToDate,
// refuse for an unknown status.
func (t *TDX) Action(status string) TCBAction {
	if status == "UpToDate" {
		return ""
	}
	if a, ok := t.TCBStatus[status]; ok {
		return a
	}
	if a, ok := defaultTCBActions[status]; ok {
		return a
	}
	return TCBRefuse
}

func (t *TDX) check() error {
	keys := make([]string, 0, len(t.TCBStatus))
	for k := range t.TCBStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "UpToDate" {
			return fmt.Errorf("tdx.tcb_status.UpToDate: UpToDate is always affirming; list only the other statuses")
		}
		if !slices.Contains(TDXStatuses, k) {
			return fmt.Errorf("tdx.tcb_status lists unknown TCB status %q (known: %s)", k, strings.Join(TDXStatuses[1:], ", "))
		}
		if a := t.TCBStatus[k]; a != TCBWarn && a != TCBRefuse {
			return fmt.Errorf("tdx.tcb_status.%s is %q; use warn or refuse", k, a)
		}
	}
	for name, l := range map[string][]HexBytes{"mrtd": t.MRTD, "rtmr0": t.RTMR0, "rtmr1": t.RTMR1, "rtmr2": t.RTMR2, "rtmr3": t.RTMR3} {
		for i, m := range l {
			if len(m) != 48 {
				return fmt.Errorf("tdx.%s[%d] is %d bytes; a TDX measurement register is 48 bytes (96 hex digits)", name, i, len(m))
			}
		}
	}
	for name, m := range map[string]HexBytes{"mr_config_id": t.MRConfigID, "mr_owner": t.MROwner, "mr_owner_config": t.MROwnerConfig} {
		if m != nil && len(m) != 48 {
			return fmt.Errorf("tdx.%s is %d bytes; it is 48 bytes (96 hex digits)", name, len(m))
		}
	}
	for i, x := range t.XFAM {
		if len(x) != 8 {
			return fmt.Errorf("tdx.xfam[%d] is %d bytes; XFAM is 8 bytes (16 hex digits, as in the quote)", i, len(x))
		}
	}
	if t.MinTEETCBSVN != nil && len(t.MinTEETCBSVN) != 16 {
		return fmt.Errorf("tdx.min_tee_tcb_svn is %d bytes; TEE_TCB_SVN is 16 bytes (32 hex digits)", len(t.MinTEETCBSVN))
	}
	return nil
}
