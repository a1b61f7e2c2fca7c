package main

import (
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
			return reportCPU(cmd.OutOrStdout(), tdx.NewVerifier(), attest.KindTDX, body, at, p, binding, f.json)
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

func newTDXCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tdx", Short: "Intel TDX tools: assemble DCAP collateral"}
	var tcbInfo, tcbChain, qeIdentity, qeChain, pckCRL, pckChain, rootCRL, out string
	var force bool
	coll := &cobra.Command{
		Use:   "collateral --tcb-info FILE --tcb-info-chain FILE --qe-identity FILE --qe-identity-chain FILE --pck-crl FILE --pck-crl-chain FILE --root-crl FILE [--out FILE]",
		Short: "Assemble DCAP collateral (JSON, for verify tdx --collateral) from Intel PCS responses",
		Long: `Assemble the collateral JSON that verify tdx --collateral and node serve
--tdx-collateral take, from Intel PCS (or PCCS) responses saved as fetched:
the bodies of /tdx/certification/v4/tcb?fmspc=… and /tdx/certification/v4/qe/identity
(kept byte for byte: their signatures cover them), their issuer-chain
headers (TCB-Info-Issuer-Chain, SGX-Enclave-Identity-Issuer-Chain; PEM, URL-
decoded), the PCK CRL of /sgx/certification/v4/pckcrl?ca=platform|processor
with its SGX-PCK-CRL-Issuer-Chain header, and Intel's root CA CRL. Nothing is
verified here; verify tdx does that.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r tdx.PCSResponses
			for _, in := range []struct {
				flag, path string
				dst        *[]byte
			}{{"--tcb-info", tcbInfo, &r.TCBInfo}, {"--tcb-info-chain", tcbChain, &r.TCBInfoIssuerChain},
				{"--qe-identity", qeIdentity, &r.QEIdentity}, {"--qe-identity-chain", qeChain, &r.QEIdentityIssuerChain},
				{"--pck-crl", pckCRL, &r.PCKCRL}, {"--pck-crl-chain", pckChain, &r.PCKCRLIssuerChain}, {"--root-crl", rootCRL, &r.RootCACRL}} {
				data, err := readInput(in.flag, in.path)
				if err != nil {
					return err
				}
				*in.dst = data
			}
			c, err := tdx.CollateralFromPCS(r)
			if err != nil {
				return usageErr("%v", err)
			}
			data, err := c.Marshal()
			if err != nil {
				return usageErr("%v", err)
			}
			if _, err := tdx.ParseCollateral(data); err != nil {
				return usageErr("the assembled collateral does not parse: %v; check the files given", err)
			}
			if out == "" {
				data = append(data, '\n')
			}
			return writeOutput(cmd.OutOrStdout(), out, data, force)
		},
	}
	f := coll.Flags()
	f.StringVar(&tcbInfo, "tcb-info", "", "the TCB info response body `FILE` ({\"tcbInfo\": …, \"signature\": …})")
	f.StringVar(&tcbChain, "tcb-info-chain", "", "the TCB-Info-Issuer-Chain header, URL-decoded, as a PEM `FILE`")
	f.StringVar(&qeIdentity, "qe-identity", "", "the QE identity response body `FILE` ({\"enclaveIdentity\": …, \"signature\": …})")
	f.StringVar(&qeChain, "qe-identity-chain", "", "the SGX-Enclave-Identity-Issuer-Chain header as a PEM `FILE`")
	f.StringVar(&pckCRL, "pck-crl", "", "the PCK CRL `FILE` (DER or PEM)")
	f.StringVar(&pckChain, "pck-crl-chain", "", "the SGX-PCK-CRL-Issuer-Chain header as a PEM `FILE`")
	f.StringVar(&rootCRL, "root-crl", "", "Intel's root CA CRL `FILE` (DER or PEM)")
	f.StringVar(&out, "out", "", "write the collateral to `FILE` instead of stdout")
	f.BoolVar(&force, "force", false, "overwrite --out if it exists")
	cmd.AddCommand(coll)
	return cmd
}
