package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
)

// newMeasureCmd is `sworn measure`: reference values computed from files.
func newMeasureCmd() *cobra.Command {
	m := &cobra.Command{
		Use:   "measure",
		Short: "Compute reference values (UKI digests and PCR 11, event-log PCRs and claims)",
	}
	m.AddCommand(newMeasureUKICmd(), newMeasureEventlogCmd())
	return m
}

var measureBanks = []tpm.Alg{tpm.SHA256, tpm.SHA384}

func newMeasureUKICmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "uki FILE",
		Short: "Print a UKI's Authenticode digest (its PCR 4 event) and the PCR 11 value systemd-stub produces",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := policy.ReadFileLimited(args[0], tpm.MaxPESize)
			if err != nil {
				return usageErr("uki: %v", err)
			}
			pe, err := tpm.ParsePE(data)
			if err != nil {
				return usageErr("uki %s: %v", args[0], err)
			}
			type bankOut struct {
				Authenticode string            `json:"authenticode"`
				PCR11        string            `json:"pcr11"`
				Phases       map[string]string `json:"pcr11_phases"`
				Sections     []tpm.UKISection  `json:"sections"`
			}
			out := map[string]bankOut{}
			for _, b := range measureBanks {
				m := pe.MeasureUKI(b.Hash())
				ph := map[string]string{}
				path := []string{}
				for _, p := range []string{"enter-initrd", "leave-initrd", "sysinit", "ready"} {
					path = append(path, p)
					ph[fmt.Sprint(path)] = hex.EncodeToString(tpm.ExtendPhases(b.Hash(), m.PCR11, path...))
				}
				out[b.String()] = bankOut{hex.EncodeToString(pe.Authenticode(b.Hash())), hex.EncodeToString(m.PCR11), ph, m.Sections}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, out)
			}
			for _, b := range measureBanks {
				o := out[b.String()]
				fmt.Fprintf(w, "%s authenticode (PCR 4 event): %s\n", b, o.Authenticode)
				fmt.Fprintf(w, "%s pcr11 (systemd-stub, no phase): %s\n", b, o.PCR11)
				for _, s := range o.Sections {
					fmt.Fprintf(w, "%s   section %-9s %s\n", b, s.Name, s.Digest)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newMeasureEventlogCmd() *cobra.Command {
	var asJSON bool
	var bank string
	cmd := &cobra.Command{
		Use:   "eventlog FILE",
		Short: "Replay a TCG event log by itself and print its PCRs and claims (untrusted without a quote)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := readInput("eventlog", args[0])
			if err != nil {
				return err
			}
			b, err := tpm.ParseAlg(bank)
			if err != nil {
				return usageErr("--bank: %v", err)
			}
			pcrs, err := tpm.ComputePCRs(raw, b)
			if err != nil {
				return usageErr("eventlog %s: %v", args[0], err)
			}
			claims, err := tpm.ReplayEventLog(raw, b, pcrs)
			if err != nil {
				return usageErr("eventlog %s: %v", args[0], err)
			}
			hexPCRs := map[int]string{}
			idx := []int{}
			for i, v := range pcrs {
				hexPCRs[i] = hex.EncodeToString(v)
				idx = append(idx, i)
			}
			slices.Sort(idx)
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, map[string]any{"bank": b.String(), "pcrs": hexPCRs, "claims": claims})
			}
			for _, i := range idx {
				fmt.Fprintf(w, "%s:%-2d %s\n", b, i, hexPCRs[i])
			}
			c, _ := json.MarshalIndent(claims, "", "  ")
			fmt.Fprintf(w, "claims: %s\n", c)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&bank, "bank", "sha256", "PCR `BANK` to replay: sha1, sha256, sha384 or sha512")
	return cmd
}
