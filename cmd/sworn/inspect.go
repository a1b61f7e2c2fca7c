package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/tlog"
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
			if v, err := genericCBOR(e.Body); err != nil {
				en.Error = err.Error()
			} else {
				en.Body = v
			}
		}
		es = append(es, en)
	}
	out["evidence"] = es
	if b.Release != nil {
		if p, err := tlog.ParseProof(b.Release); err != nil {
			out["release"] = map[string]any{"error": err.Error()}
		} else {
			out["release"] = p
		}
	}
	return out
}

// maxInlineBytes is the largest byte string genericCBOR prints in full.
const maxInlineBytes = 1024

// genericCBOR decodes an entry body into JSON-friendly values: byte
// strings as hex (or, when long, their size and SHA-256), text, numbers,
// arrays and maps as they are.
func genericCBOR(body []byte) (any, error) {
	var v any
	if err := attest.UnmarshalCBOR(body, &v); err != nil {
		return nil, fmt.Errorf("entry body is not valid CBOR: %v", err)
	}
	return jsonFriendly(v), nil
}

func jsonFriendly(v any) any {
	switch x := v.(type) {
	case []byte:
		if len(x) > maxInlineBytes {
			sum := sha256.Sum256(x)
			return map[string]any{"size": len(x), "sha256": hex.EncodeToString(sum[:])}
		}
		return hex.EncodeToString(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonFriendly(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonFriendly(e)
		}
		return out
	default:
		return v
	}
}
