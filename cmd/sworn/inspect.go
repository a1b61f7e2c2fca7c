package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/wire"
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
	if raw, rerr := nvgpu.DecodeReportInput(data); rerr == nil {
		if rep, rerr := nvgpu.ParseReport(raw); rerr == nil {
			return map[string]any{"kind": attest.KindNVGPU, "report": jsonFriendly(rep)}, nil
		}
	}
	if rim, rerr := nvgpu.ParseRIM(data); rerr == nil {
		return map[string]any{"kind": "nvidia-rim", "rim": jsonFriendly(rim)}, nil
	}
	return nil, errors.New("not a sworn bundle, a raw SEV-SNP report, an Azure HCL report, an NVIDIA GPU attestation report or an NVIDIA RIM")
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
			"request_keys": keyConfigsJSON(b.Keys.RequestKeys),
			"receipt_key":  hex.EncodeToString(b.Keys.ReceiptKey),
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
		case attest.KindTPM:
			en.Body, en.Error = decoded(tpm.ParseEvidence(e.Body))
		case attest.KindNVGPU:
			en.Body, en.Error = decoded(nvgpu.ParseEvidence(e.Body))
		default:
			en.Body, en.Error = decoded(genericCBOR(e.Body))
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

// decoded turns a decoder's result into an inspect entry's body or error.
func decoded[T any](v T, err error) (any, string) {
	if err != nil {
		return nil, err.Error()
	}
	return jsonFriendly(v), ""
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
	return v, nil
}

func jsonFriendly(v any) any {
	if v == nil {
		return nil
	}
	return friendly(reflect.ValueOf(v))
}

// friendly walks a value: byte strings and arrays become hex (long ones
// their size and SHA-256), structs maps of their exported fields, maps get
// string keys; times and scalars stay as they are.
func friendly(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return friendly(v.Elem())
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			if len(b) > maxInlineBytes {
				sum := sha256.Sum256(b)
				return map[string]any{"size": len(b), "sha256": hex.EncodeToString(sum[:])}
			}
			return hex.EncodeToString(b)
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = friendly(v.Index(i))
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = friendly(it.Value())
		}
		return out
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			return t
		}
		out := map[string]any{}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				out[f.Name] = friendly(v.Field(i))
			}
		}
		return out
	default:
		if v.CanInterface() {
			return v.Interface()
		}
		return nil
	}
}

// keyConfigsJSON renders an application/ohttp-keys list for inspect.
func keyConfigsJSON(list []byte) any {
	cs, err := wire.ParseKeyConfigs(list)
	if err != nil {
		return map[string]any{"error": err.Error(), "hex": hex.EncodeToString(list)}
	}
	var out []map[string]any
	for _, c := range cs {
		var suites []string
		for _, s := range c.Suites {
			suites = append(suites, s.String())
		}
		out = append(out, map[string]any{"key_id": c.ID, "kem": wire.KEMName(c.KEM), "kem_id": c.KEM, "public_key": hex.EncodeToString(c.PublicKey), "suites": suites})
	}
	return out
}
