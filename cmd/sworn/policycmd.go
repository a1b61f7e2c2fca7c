package main

import (
	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/tlog"
	"golang.org/x/mod/sumdb/note"
)

func policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Write and check appraisal policies"}
	var simulated, force bool
	var out, logKey, tee string
	var gpus, quorum int
	var witnesses, publishers []string
	initCmd := &cobra.Command{
		Use:   "init [--simulated] [--tee snp|tdx] [--gpus N] [--log-key FILE [--witness FILE]... [--quorum N] [--publisher FILE]...] [--out FILE]",
		Short: "Write a commented starter policy (to stdout, or --out FILE)",
		Long: `Write a commented starter policy. It requires exactly one CPU TEE (SEV-SNP,
or with --tee tdx Intel TDX), the vTPM's measured boot (SEV-SNP only) and,
with --gpus, exactly that many GPUs. With
--log-key it pins the release log, its witnesses (--witness, each a witness
.pub file; --quorum, default all of them) and its publishers (--publisher).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if gpus < 0 || gpus > policy.MaxGPUs {
				return usageErr("--gpus is %d; it must be 0 to %d", gpus, policy.MaxGPUs)
			}
			o := policy.StarterOptions{GPUs: gpus}
			switch {
			case tee != "snp" && tee != "tdx":
				return usageErr("--tee %q: use snp or tdx", excerpt(tee))
			case simulated && tee == "tdx":
				var err error
				if o, err = sim.TDXStarterOptions(gpus); err != nil {
					return usageErr("%v", err)
				}
			case simulated:
				var err error
				if o, err = sim.StarterOptions(gpus); err != nil {
					return usageErr("%v", err)
				}
			case tee == "tdx":
				o.TDX = &policy.StarterTDX{}
			}
			if logKey != "" {
				l, err := starterLog(logKey, witnesses, publishers, quorum, cmd.Flags().Changed("quorum"))
				if err != nil {
					return err
				}
				o.Log = l
			} else if len(witnesses) > 0 || len(publishers) > 0 || cmd.Flags().Changed("quorum") {
				return usageErr("--witness, --quorum and --publisher describe the release log: give its key with --log-key too")
			}
			data := policy.Starter(o)
			if _, err := policy.Parse("starter", data); err != nil {
				return usageErr("the starter policy does not parse (%v); check the key files given", err)
			}
			return writeOutput(cmd.OutOrStdout(), out, data, force)
		},
	}
	initCmd.Flags().StringVar(&tee, "tee", "snp", "the CPU TEE to require: `snp` or tdx")
	initCmd.Flags().BoolVar(&simulated, "simulated", false, "trust sworn's simulated roots (for trying sworn and for tests)")
	initCmd.Flags().StringVar(&out, "out", "", "write the policy to `FILE` instead of stdout")
	initCmd.Flags().BoolVar(&force, "force", false, "overwrite --out if it exists")
	initCmd.Flags().IntVar(&gpus, "gpus", 0, "the machine shape's number of GPUs, `N` (nvgpu.count)")
	initCmd.Flags().StringVar(&logKey, "log-key", "", "pin the release log whose verifier key is in `FILE` (the .pub of sworn keygen --kind log)")
	initCmd.Flags().StringArrayVar(&witnesses, "witness", nil, "a witness verifier key `FILE` (sworn keygen --kind witness); repeatable")
	initCmd.Flags().IntVar(&quorum, "quorum", 0, "how many of the witnesses must cosign, `N` (default: all)")
	initCmd.Flags().StringArrayVar(&publishers, "publisher", nil, "a publisher verifier key `FILE` (sworn keygen --kind publisher); repeatable")
	checkCmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Check that a policy file parses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPolicy(args[0])
			if err != nil {
				return err
			}
			if err := p.CheckComplete(); err != nil {
				return usageErr("policy %s: %v", args[0], err)
			}
			cmd.Printf("%s: ok\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(initCmd, checkCmd)
	return cmd
}

// starterLog reads the key files of policy init's log section.
func starterLog(logKey string, witnesses, publishers []string, quorum int, haveQuorum bool) (*policy.StarterLog, error) {
	read := func(flag, path string, parse func(string) (note.Verifier, error)) (string, string, error) {
		k, err := tlog.ReadKeyFile(path)
		if err != nil {
			return "", "", usageErr("%s: %v", flag, err)
		}
		v, err := parse(k)
		if err != nil {
			return "", "", usageErr("%s %s: %v", flag, path, err)
		}
		return k, v.Name(), nil
	}
	key, origin, err := read("--log-key", logKey, tlog.ParseVerifier)
	if err != nil {
		return nil, err
	}
	l := &policy.StarterLog{Origin: origin, Key: key, Quorum: len(witnesses)}
	for _, w := range witnesses {
		k, _, err := read("--witness", w, tlog.ParseWitnessVerifier)
		if err != nil {
			return nil, err
		}
		l.Witnesses = append(l.Witnesses, k)
	}
	for _, p := range publishers {
		k, _, err := read("--publisher", p, tlog.ParseVerifier)
		if err != nil {
			return nil, err
		}
		l.Publishers = append(l.Publishers, k)
	}
	if haveQuorum {
		if quorum < 0 || quorum > len(witnesses) {
			return nil, usageErr("--quorum is %d; it must be 0 to the number of --witness keys (%d)", quorum, len(witnesses))
		}
		l.Quorum = quorum
	}
	return l, nil
}
