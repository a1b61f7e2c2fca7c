package main

import (
	"encoding/hex"
	"os"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
)

func policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Write and check appraisal policies"}
	var simulated, force bool
	var out string
	initCmd := &cobra.Command{
		Use:   "init [--simulated] [--out FILE]",
		Short: "Write a commented starter policy (to stdout, or --out FILE)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := policy.StarterOptions{Simulated: simulated, AllowSMT: !simulated}
			if simulated {
				o.SNPMeasurements = []string{hex.EncodeToString(snp.SimMeasurement[:])}
				t := snp.DecodeTCB(snp.SimTCB, "Milan")
				o.SNPMinTCB = policy.TCB{Bootloader: t.Bootloader, TEE: t.TEE, SNP: t.SNP, Microcode: t.Microcode}
				ref, err := sim.Reference()
				if err != nil {
					return usageErr("%v", err)
				}
				o.Require = []string{"snp", "tpm"}
				o.UKI = &policy.StarterUKI{
					Name: "sworn simulated node", Cmdline: ref.Cmdline,
					Digest: hex.EncodeToString(ref.UKIDigest[tpm.SHA384]), PCR11: hex.EncodeToString(ref.PCR11[tpm.SHA384]),
					NodeSoftware: hex.EncodeToString(ref.NodeSoftware),
				}
			}
			data := policy.Starter(o)
			if out == "" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			if _, err := os.Stat(out); err == nil && !force {
				return usageErr("%s exists; pass --force to overwrite it", out)
			}
			if err := writeFileAtomic(out, data, 0o644); err != nil {
				return usageErr("--out: %v", err)
			}
			return nil
		},
	}
	initCmd.Flags().BoolVar(&simulated, "simulated", false, "trust sworn's simulated roots (for trying sworn and for tests)")
	initCmd.Flags().StringVar(&out, "out", "", "write the policy to `FILE` instead of stdout")
	initCmd.Flags().BoolVar(&force, "force", false, "overwrite --out if it exists")
	checkCmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Check that a policy file parses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := loadPolicy(args[0]); err != nil {
				return err
			}
			cmd.Printf("%s: ok\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(initCmd, checkCmd)
	return cmd
}
