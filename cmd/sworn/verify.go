package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/appraiser"
	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/tlog"
)

// verifiers returns a verifier for every evidence kind this build appraises.
func verifiers() []attest.Verifier { return appraiser.New().Verifiers() }

func verifySNPCmd() *cobra.Command {
	var f verifyFlags
	var reportPath, certsPath, crlPath, reportData, manifestPath string
	cmd := &cobra.Command{
		Use:   "snp --report FILE [--certs FILE] [--crl FILE] [--report-data HEX] [--svsm-manifest FILE] [--policy FILE] [--at RFC3339] [--json]",
		Short: "Verify an AMD SEV-SNP report (raw or Azure HCL)",
		Long: `Verify an AMD SEV-SNP attestation report offline: its signature, the VCEK or
VLEK chain to AMD's pinned roots, revocation (when a CRL is given), the
REPORT_DATA binding (when --report-data is given; for an Azure HCL report,
the runtime data's user-data; with --svsm-manifest, the SVSM vTPM form:
VMPL0 and REPORT_DATA = SHA-512(report-data ‖ manifest), the manifest
being the vTPM EK's TPMT_PUBLIC), and with --policy the TCB floors, guest
policy and launch measurement. Checks that cannot be made are "skip", with
the reason, and keep the verdict at best "warning".`,
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
					return usageErr("--report-data is %d bytes; REPORT_DATA is %d bytes", len(rd), attest.BindingSize)
				}
				binding = new(attest.Binding)
				copy(binding[:], rd) // shorter values are zero-padded, as the hardware does
			}
			ev := &snp.Evidence{}
			if ev.Report, err = readInput("--report", reportPath); err != nil {
				return err
			}
			if _, err := snp.ParseReport(ev.Report); err != nil {
				return usageErr("--report %s: %v", reportPath, err)
			}
			if ev.Certs, err = readPEMorDER("--certs", certsPath, snp.ParseCertificates); err != nil {
				return err
			}
			if ev.CRLs, err = readPEMorDER("--crl", crlPath, snp.ParseCRLs); err != nil {
				return err
			}
			if manifestPath != "" {
				if ev.SVSMManifest, err = readInput("--svsm-manifest", manifestPath); err != nil {
					return err
				}
				if err := snp.CheckSVSMManifest(ev.SVSMManifest); err != nil {
					return usageErr("--svsm-manifest %s: %v", manifestPath, err)
				}
			}
			// Bounds and combinations (too many certificates, a manifest on
			// an HCL report) are input errors, not verdicts.
			if _, err := snp.Parse(ev); err != nil {
				return usageErr("--report %s with its collateral: %v", reportPath, err)
			}
			body, err := ev.Marshal()
			if err != nil {
				return usageErr("%v", err)
			}
			return reportCPU(cmd.OutOrStdout(), snp.NewVerifier(), attest.KindSNP, body, at, p, binding, f.json)
		},
	}
	cmd.Flags().StringVar(&reportPath, "report", "", "the report `FILE`: a raw 1184-byte SEV-SNP report or an Azure HCL report")
	cmd.Flags().StringVar(&certsPath, "certs", "", "certificates `FILE`, PEM or DER: the VCEK or VLEK, optionally with ASK/ARK")
	cmd.Flags().StringVar(&crlPath, "crl", "", "AMD's CRL `FILE`, PEM or DER")
	cmd.Flags().StringVar(&manifestPath, "svsm-manifest", "", "the SVSM vTPM service manifest `FILE` (configfs-tsm manifestblob: the EK's TPMT_PUBLIC)")
	cmd.Flags().StringVar(&reportData, "report-data", "", "expected REPORT_DATA (or HCL user-data) as `HEX`, up to 64 bytes, zero-padded")
	f.register(cmd)
	return cmd
}

// bundleFlags are the inputs of an appraisal of a whole bundle, shared by
// verify bundle and explain.
type bundleFlags struct {
	policy, at, nonce string
	revocations       []string
}

func (f *bundleFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.policy, "policy", "", "policy `FILE` (YAML)")
	cmd.Flags().StringVar(&f.at, "at", "", "appraise at this `RFC3339` time instead of now")
	cmd.Flags().StringVar(&f.nonce, "nonce", "", "the nonce the bundle must answer (challenge mode), as `HEX`")
	cmd.Flags().StringArrayVar(&f.revocations, "revocation", nil, "a revocation proof `FILE` from the release log (sworn release revoke); repeatable")
}

// appraise reads the bundle at path and appraises it under the flags.
func (f *bundleFlags) appraise(cmd *cobra.Command, path string) (*attest.Result, error) {
	return appraiseBundleFile(path, f.policy, f.at, f.nonce, cmd.Flags().Changed("nonce"), f.revocations)
}

func verifyBundleCmd() *cobra.Command {
	var f bundleFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bundle FILE --policy FILE [--nonce HEX] [--revocation FILE]... [--at RFC3339] [--json]",
		Short: "Verify a node's evidence bundle under a policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.appraise(cmd, args[0])
			if err != nil {
				return err
			}
			return report(cmd.OutOrStdout(), r, asJSON)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON on stdout")
	return cmd
}

// appraiseBundleFile reads a bundle and a policy and appraises the bundle.
func appraiseBundleFile(path, policyPath, atFlag, nonceHex string, haveNonce bool, revocationPaths []string) (*attest.Result, error) {
	if policyPath == "" {
		return nil, usageErr("--policy is required (write a starter with: sworn policy init)")
	}
	at, err := parseAt(atFlag)
	if err != nil {
		return nil, err
	}
	p, err := loadPolicy(policyPath)
	if err != nil {
		return nil, err
	}
	var nonce []byte
	if haveNonce {
		if nonce, err = parseHex("--nonce", nonceHex); err != nil {
			return nil, err
		}
		if len(nonce) == 0 {
			return nil, usageErr("--nonce is empty")
		}
	}
	revocations, err := readRevocations(revocationPaths)
	if err != nil {
		return nil, err
	}
	data, err := readInput("bundle", path)
	if err != nil {
		return nil, err
	}
	b, err := attest.ParseBundle(data)
	if err != nil {
		if errors.Is(err, attest.ErrNotBundle) {
			return nil, usageErr("bundle %s: %v (is it a raw report? use sworn verify snp)", path, err)
		}
		return nil, usageErr("bundle %s: %v", path, err)
	}
	return appraiser.New().Appraise(context.Background(), b, appraiser.Options{At: at, Policy: p, Nonce: nonce, Revocations: revocations}), nil
}

func explainCmd() *cobra.Command {
	var f bundleFlags
	cmd := &cobra.Command{
		Use:   "explain FILE --policy FILE [--nonce HEX] [--revocation FILE]... [--at RFC3339]",
		Short: "Explain a bundle's chain of trust, layer by layer, and what is still assumed",
		Long: `explain appraises a bundle exactly as verify bundle does, with the same
inputs and exit codes, and tells the chain of trust layer by layer: the
hardware roots, the CPU TEE, the measured boot (vTPM), the GPUs, the
release log, and the node's keys, freshness and policy. Each layer says
what it verified, what it rests on, and what is still assumed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.appraise(cmd, args[0])
			if err != nil {
				return err
			}
			if err := r.WriteExplain(cmd.OutOrStdout()); err != nil {
				return err
			}
			return verdictExit(r)
		},
	}
	f.register(cmd)
	return cmd
}

// readPEMorDER reads an optional collateral file (certificates or CRLs) and
// returns its items as DER.
func readPEMorDER(flag, path string, parse func([]byte) ([][]byte, error)) ([][]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readInput(flag, path)
	if err != nil {
		return nil, err
	}
	ders, err := parse(data)
	if err != nil {
		return nil, usageErr("%s %s: %v", flag, path, err)
	}
	return ders, nil
}

// readRevocations reads the --revocation proof files; each must be a
// tlog-proof (whether it proves a revocation is the appraisal's to say).
func readRevocations(paths []string) ([][]byte, error) {
	var out [][]byte
	for _, p := range paths {
		b, err := readInput("--revocation", p)
		if err != nil {
			return nil, err
		}
		if _, err := tlog.ParseProof(b); err != nil {
			return nil, usageErr("--revocation %s: %v (give the .tlog-proof that sworn release revoke wrote)", p, err)
		}
		out = append(out, b)
	}
	return out, nil
}
