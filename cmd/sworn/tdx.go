package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tdx"
)

func verifyTDXCmd() *cobra.Command {
	var f verifyFlags
	var quotePath, collateralPath, reportData, ccelPath, ccelTablePath, hclPath string
	cmd := &cobra.Command{
		Use:   "tdx --quote FILE [--collateral FILE] [--ccel FILE [--ccel-table FILE]] [--hcl FILE] [--report-data HEX] [--policy FILE] [--at RFC3339] [--json]",
		Short: "Verify an Intel TDX quote (v4 or v5) with DCAP collateral, offline",
		Long: `Verify an Intel TDX quote offline: the quote signature by the Quoting
Enclave's attestation key, the QE report's signature by the PCK key and its
binding of that key, the PCK chain to Intel's SGX Root CA (pinned by SPKI
hash); with --collateral (Intel DCAP collateral as JSON: tcb_info,
tcb_info_signature, tcb_info_issuer_chain, qe_identity, qe_identity_signature,
qe_identity_issuer_chain, pck_crl, pck_crl_issuer_chain, root_ca_crl — the
shape dcap-qvl and PCCS tooling write) the collateral's signatures and
freshness at --at, revocation, the platform's and the Quoting Enclave's TCB
status; the REPORTDATA binding (with --report-data; with --hcl, an Azure TDX
VM's HCL report: REPORTDATA = SHA-256(runtime data), and --report-data is
compared with the runtime data's user-data); the TD attributes (a
DEBUG TD is always refused); with --ccel the replay of the TD's CCEL event
log against RTMR0-3; and with --policy the tdx section (TCB status actions,
MRTD/RTMR allow-lists, attributes). Checks that cannot be made are
"skip", with the reason, and keep the verdict at best "warning".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, p, err := f.load()
			if err != nil {
				return err
			}
			var binding *attest.Binding
			if cmd.Flags().Changed("report-data") {
				rd, err := parseHex("--report-data", reportData)
				if err != nil {
					return err
				}
				if len(rd) > attest.BindingSize {
					return usageErr("--report-data is %d bytes; REPORTDATA is %d bytes", len(rd), attest.BindingSize)
				}
				binding = new(attest.Binding)
				copy(binding[:], rd) // shorter values are zero-padded
			}
			ev := &tdx.Evidence{}
			if ev.Quote, err = readInput("--quote", quotePath); err != nil {
				return err
			}
			if _, err := tdx.ParseQuote(ev.Quote); err != nil {
				return inputErr("--quote", quotePath, ev.Quote, "a TDX quote (version 4 or 5, as configfs-tsm or the Quoting Enclave returns it)", err)
			}
			if collateralPath != "" {
				if ev.Collateral, err = readInput("--collateral", collateralPath); err != nil {
					return err
				}
				if _, err := tdx.ParseCollateral(ev.Collateral); err != nil {
					return inputErr("--collateral", collateralPath, ev.Collateral, "Intel DCAP collateral as JSON (fetch it from Intel PCS or a PCCS)", err)
				}
			}
			if ccelPath != "" {
				if ev.CCEL, err = readInput("--ccel", ccelPath); err != nil {
					return err
				}
			}
			if ccelTablePath != "" {
				if ccelPath == "" {
					return usageErr("--ccel-table needs --ccel (the event log the table describes)")
				}
				if ev.CCELTable, err = readInput("--ccel-table", ccelTablePath); err != nil {
					return err
				}
			}
			if hclPath != "" {
				if ev.HCL, err = readInput("--hcl", hclPath); err != nil {
					return err
				}
			}
			if _, err := tdx.Parse(ev); err != nil {
				return usageErr("--quote %s: %v", quotePath, err)
			}
			body, err := ev.Marshal()
			if err != nil {
				return usageErr("%v", err)
			}
			r := attest.VerifyEntry(context.Background(), tdx.NewVerifier(), attest.Entry{Kind: attest.KindTDX, Device: "cpu0", Body: body}, at, p, binding)
			return report(cmd.OutOrStdout(), r, f.json)
		},
	}
	cmd.Flags().StringVar(&quotePath, "quote", "", "the quote `FILE`: a TDX quote, version 4 or 5, with its PCK chain embedded")
	cmd.Flags().StringVar(&collateralPath, "collateral", "", "Intel DCAP collateral `FILE` (JSON)")
	cmd.Flags().StringVar(&ccelPath, "ccel", "", "the TD's CCEL event log `FILE` (/sys/firmware/acpi/tables/data/CCEL)")
	cmd.Flags().StringVar(&ccelTablePath, "ccel-table", "", "the CCEL ACPI table `FILE` (/sys/firmware/acpi/tables/CCEL)")
	cmd.Flags().StringVar(&hclPath, "hcl", "", "an Azure TDX VM's HCL report `FILE` (vTPM NV index 0x01400001)")
	cmd.Flags().StringVar(&reportData, "report-data", "", "expected REPORTDATA as `HEX`, up to 64 bytes, zero-padded")
	f.register(cmd)
	return cmd
}
