package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/tlog"
)

func simCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sim", Short: "Simulated hardware, for trying sworn and for tests"}
	var out, at, nonce, tee string
	var seed uint64
	var noTPM bool
	var gpus int
	var releasePath string
	boot := &cobra.Command{
		Use:   "boot --out FILE [--tee snp|tdx] [--seed N] [--at RFC3339] [--nonce HEX]",
		Short: "Write the evidence bundle of a simulated node",
		Long: `Boot a simulated node and write its evidence bundle: fresh keys from the
seed, their binding, and evidence from the simulated devices, all signed
under sworn's simulated roots: an SEV-SNP CPU whose Azure-style HCL report
binds a vTPM's attestation key, and the vTPM's quotes of a synthetic UEFI +
UKI boot. Verify it under a policy from "sworn policy init --simulated".

The same seed and time give the same bytes, except the vTPM quotes' clock
(TPMS_CLOCK_INFO), which the TPM simulator takes from its running clock;
--no-tpm leaves the vTPM out and gives byte-identical bundles.

--tee tdx boots an Intel TDX node instead: a TDX quote (v4) whose REPORTDATA
is the binding, signed under a simulated PCK chain, with simulated DCAP
collateral; it has no vTPM. Verify it under a policy with roots.intel:
simulated and a tdx section (see docs/tdx.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("--out is required")
			}
			t, err := parseAt(at)
			if err != nil {
				return err
			}
			switch tee {
			case "snp", "tdx":
			default:
				return usageErr("--tee %q: use snp or tdx", excerpt(tee))
			}
			o := sim.Options{Seed: seed, At: t, NoTPM: noTPM, GPUs: gpus, TEE: tee}
			if gpus < 0 || gpus > sim.MaxGPUs {
				return usageErr("--gpus is %d; it must be 0 to %d", gpus, sim.MaxGPUs)
			}
			if releasePath != "" {
				if o.Release, err = readInput("--release", releasePath); err != nil {
					return err
				}
				if _, err := tlog.ParseProof(o.Release); err != nil {
					return usageErr("--release %s: %v", releasePath, err)
				}
			}
			if cmd.Flags().Changed("nonce") {
				if o.Nonce, err = parseHex("--nonce", nonce); err != nil {
					return err
				}
			}
			n, err := sim.Boot(o)
			if err != nil {
				return usageErr("%v", err)
			}
			data, err := n.Bundle.Marshal()
			if err != nil {
				return usageErr("%v", err)
			}
			if err := writeFileAtomic(out, data, 0o644); err != nil {
				return usageErr("--out: %v", err)
			}
			cmd.PrintErrf("wrote SIMULATED bundle %s (%d bytes)\n", out, len(data))
			return nil
		},
	}
	boot.Flags().StringVar(&out, "out", "", "write the bundle to `FILE`")
	boot.Flags().Uint64Var(&seed, "seed", 1, "simulated machine and key seed `N`")
	boot.Flags().StringVar(&at, "at", "", "boot at this `RFC3339` time instead of now")
	boot.Flags().IntVar(&gpus, "gpus", 0, "add `N` simulated NVIDIA confidential GPUs")
	boot.Flags().StringVar(&releasePath, "release", "", "staple this release proof `FILE` (from sworn release publish of sworn sim record)")
	boot.Flags().StringVar(&tee, "tee", "snp", "the simulated CPU TEE: `snp` or tdx")
	boot.Flags().BoolVar(&noTPM, "no-tpm", false, "leave the vTPM out (the SEV-SNP report then carries the binding itself)")
	boot.Flags().StringVar(&nonce, "nonce", "", "answer this client nonce (challenge mode) instead of a 24h epoch, as `HEX`")
	var version, recAt string
	var recGPUs int
	record := &cobra.Command{
		Use:   "record [--version V] [--gpus N] [--at RFC3339]",
		Short: "Print the release record of the simulated node software (unsigned), to publish",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseAt(recAt)
			if err != nil {
				return err
			}
			if recGPUs < 0 || recGPUs > sim.MaxGPUs {
				return usageErr("--gpus is %d; it must be 0 to %d", recGPUs, sim.MaxGPUs)
			}
			r, err := sim.ReleaseRecord(version, t, recGPUs)
			if err != nil {
				return usageErr("%v", err)
			}
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return nil
		},
	}
	record.Flags().StringVar(&version, "version", "1.0.0", "the release `V`ersion")
	record.Flags().IntVar(&recGPUs, "gpus", 0, "the machine shape's number of GPUs, `N` (as sim boot --gpus)")
	record.Flags().StringVar(&recAt, "at", "", "the record's creation time (`RFC3339`, default now)")
	cmd.AddCommand(boot, record)
	return cmd
}
