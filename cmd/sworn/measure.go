package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

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
	var sections string
	var phases []string
	cmd := &cobra.Command{
		Use:   "uki FILE",
		Short: "Print a UKI's Authenticode digest (its PCR 4 event) and the PCR 11 value systemd-stub produces",
		Long: `Print a UKI's Authenticode digest (its PCR 4 event) and the PCR 11 values
systemd-stub and systemd-pcrextend produce, as systemd-measure calculate does:
before any boot phase, and after each --phase path.

Sections are measured in systemd's canonical order; by default every section
systemd knows (` + strings.Join(tpm.UKISectionOrder, " ") + `).
An older stub measures fewer: give its list with --sections (systemd 252:
--sections .linux,.osrel,.cmdline,.initrd,.splash,.dtb,.pcrpkey).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			order := tpm.UKISectionOrder
			if cmd.Flags().Changed("sections") {
				var err error
				if order, err = tpm.ParseUKISections(sections); err != nil {
					return usageErr("--sections: %v", err)
				}
			}
			var paths [][]string
			for _, ph := range phases {
				words, err := tpm.ParsePhase(ph)
				if err != nil {
					return usageErr("--phase: %v", err)
				}
				paths = append(paths, words)
			}
			data, err := policy.ReadFileLimited(args[0], tpm.MaxPESize)
			if err != nil {
				return usageErr("uki: %v", err)
			}
			pe, err := tpm.ParsePE(data)
			if err != nil {
				return usageErr("uki %s: %v", args[0], err)
			}
			type phaseOut struct {
				Phase string `json:"phase"`
				PCR11 string `json:"pcr11"`
			}
			type bankOut struct {
				Authenticode string           `json:"authenticode"`
				PCR11        string           `json:"pcr11"`
				Phases       []phaseOut       `json:"pcr11_phases"`
				Sections     []tpm.UKISection `json:"sections"`
			}
			out := map[string]bankOut{}
			for _, b := range measureBanks {
				m := pe.MeasureUKISections(b.Hash(), order)
				o := bankOut{Authenticode: hex.EncodeToString(pe.Authenticode(b.Hash())), PCR11: hex.EncodeToString(m.PCR11), Sections: m.Sections}
				for i, words := range paths {
					o.Phases = append(o.Phases, phaseOut{phases[i], hex.EncodeToString(tpm.ExtendPhases(b.Hash(), m.PCR11, words...))})
				}
				out[b.String()] = o
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, out)
			}
			for _, b := range measureBanks {
				o := out[b.String()]
				fmt.Fprintf(w, "%s authenticode (PCR 4 event): %s\n", b, o.Authenticode)
				fmt.Fprintf(w, "%s pcr11 (systemd-stub, no phase): %s\n", b, o.PCR11)
				for _, p := range o.Phases {
					fmt.Fprintf(w, "%s pcr11 phase %s: %s\n", b, p.Phase, p.PCR11)
				}
				for _, s := range o.Sections {
					fmt.Fprintf(w, "%s   section %-9s %s\n", b, s.Name, s.Digest)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&sections, "sections", "", "measure only these UKI `SECTIONS` (comma-separated, e.g. .linux,.osrel,.cmdline), as an older systemd-stub does; always in canonical order")
	f.StringSliceVar(&phases, "phase", slices.Clone(tpm.DefaultPhases), "boot-phase `PATH`s to print PCR 11 for (comma-separated or repeated), as systemd-measure --phase")
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
