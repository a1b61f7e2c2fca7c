package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/snp"
)

func inspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE",
		Short: "Print a bundle or an evidence file as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput("input", args[0])
			if err != nil {
				return err
			}
			v, err := inspect(data)
			if err != nil {
				return usageErr("%s: %v", args[0], err)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		},
	}
}

// inspect decodes a bundle, or failing that a raw evidence file.
func inspect(data []byte) (any, error) {
	b, err := attest.ParseBundle(data)
	if err == nil {
		return inspectBundle(b), nil
	}
	if !errors.Is(err, attest.ErrNotBundle) {
		return nil, err
	}
	if rep, rerr := snp.ParseReport(data); rerr == nil {
		return map[string]any{"kind": attest.KindSNP, "evidence": snp.Inspect(rep)}, nil
	}
	return nil, errors.New("not a sworn bundle, a raw SEV-SNP report or an Azure HCL report")
}

func inspectBundle(b *attest.Bundle) any {
	type entry struct {
		Kind   string `json:"kind"`
		Device string `json:"device"`
		Size   int    `json:"size"`
		Body   any    `json:"body,omitempty"`
		Error  string `json:"error,omitempty"`
	}
	binding := b.Binding()
	out := map[string]any{
		"version": b.Version,
		"keys": map[string]any{
			"request_kem": b.Keys.RequestKEM,
			"request_key": hex.EncodeToString(b.Keys.RequestKey),
			"receipt_key": hex.EncodeToString(b.Keys.ReceiptKey),
		},
		"freshness": b.Freshness,
		"binding":   hex.EncodeToString(binding[:]),
	}
	var es []entry
	for _, e := range b.Evidence {
		en := entry{Kind: e.Kind, Device: e.Device, Size: len(e.Body)}
		switch e.Kind {
		case attest.KindSNP:
			if a, err := snp.ParseEvidence(e.Body); err != nil {
				en.Error = err.Error()
			} else {
				en.Body = snp.Inspect(a)
			}
		default:
			en.Error = "this sworn cannot decode " + e.Kind + " evidence"
		}
		es = append(es, en)
	}
	out["evidence"] = es
	return out
}
