package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tdx"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/internal/safetext"
	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/wire"
)

func inspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE",
		Short: "Print a bundle or an evidence file as JSON (nothing is verified)",
		Long: `inspect decodes one file and prints it as JSON; it verifies nothing. It
reads: a sworn evidence bundle; a release proof (.tlog-proof, with its
record); a raw SEV-SNP report or an Azure HCL report; an Intel TDX quote or
its DCAP collateral (JSON); an NVIDIA GPU attestation report (hex text or
raw) or RIM (XML); a TPM quote's TPMS_ATTEST (tpm2_quote -m); a TPM
attestation key (TPM2B_PUBLIC or TPMT_PUBLIC from tpm2_createak -u, or PEM);
a TCG event log (binary_bios_measurements), replayed per bank to the PCR
values it implies; a receipt (COSE_Sign1, or its
base64url text); an OHTTP key configuration list (application/ohttp-keys);
and an encapsulated OHTTP request (its header only: key id, KEM, suite).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput("input", args[0])
			if err != nil {
				return err
			}
			v, err := inspect(data)
			if err != nil {
				return usageErr("%s: %v", args[0], err)
			}
			return printJSON(cmd.OutOrStdout(), v)
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
	if _, perr := tlog.ParseProof(data); perr == nil {
		return map[string]any{"kind": "tlog-proof", "proof": inspectProof(data)}, nil
	} else if bytes.HasPrefix(data, []byte("c2sp.org/tlog-proof@v1\n")) {
		return nil, fmt.Errorf("a release proof that does not parse: %v", perr)
	}
	if r, rerr := receipt.Parse(receiptBytes(data)); rerr == nil {
		return map[string]any{"kind": "receipt", "id": client.ReceiptID(receiptBytes(data)), "payload": jsonFriendly(r.Payload)}, nil
	}
	if _, kerr := wire.ParseKeyConfigs(data); kerr == nil {
		return map[string]any{"kind": wire.MediaTypeKeys, "keys": keyConfigsJSON(data)}, nil
	}
	if rep, rerr := snp.ParseReport(data); rerr == nil {
		return map[string]any{"kind": attest.KindSNP, "evidence": snp.Inspect(rep)}, nil
	}
	if q, qerr := tdx.ParseQuote(data); qerr == nil {
		if a, aerr := tdx.Parse(&tdx.Evidence{Quote: q.Raw}); aerr == nil {
			return map[string]any{"kind": attest.KindTDX, "evidence": tdx.Inspect(a)}, nil
		}
	}
	if c, cerr := tdx.ParseCollateral(data); cerr == nil {
		return map[string]any{"kind": "tdx-collateral", "collateral": tdx.InspectCollateral(c)}, nil
	}
	if raw, rerr := nvgpu.DecodeReportInput(data); rerr == nil {
		if rep, rerr := nvgpu.ParseReport(raw); rerr == nil {
			return map[string]any{"kind": attest.KindNVGPU, "report": jsonFriendly(rep)}, nil
		}
	}
	if rim, rerr := nvgpu.ParseRIM(data); rerr == nil {
		return map[string]any{"kind": "nvidia-rim", "rim": jsonFriendly(rim)}, nil
	}
	if q, ok := parseTPMSAttest(data); ok {
		return map[string]any{"kind": "tpm-quote", "quote": q}, nil
	}
	if ak, rerr := tpm.ParseAK(data); rerr == nil {
		fp := ak.Fingerprint()
		return map[string]any{"kind": "tpm-ak", "ak": map[string]any{"fingerprint": hex.EncodeToString(fp[:]), "pem": ak.PEM(), "public": jsonFriendly(ak.Public)}}, nil
	}
	if pcrs := eventLogPCRs(data); pcrs != nil {
		return map[string]any{"kind": "tcg-eventlog", "size": len(data), "pcrs": pcrs}, nil
	}
	if h, encSize, herr := wire.ParseHeader(data); herr == nil && len(data) >= 7+encSize+16 {
		// An encapsulated OHTTP request: its header only (the rest is ciphertext).
		return map[string]any{"kind": "ohttp-request", "key_id": h.KeyID, "kem": wire.KEMName(h.KEM), "suite": h.Suite.String(),
			"enc_bytes": encSize, "ciphertext_bytes": len(data) - 7 - encSize}, nil
	}
	return nil, fmt.Errorf("not a sworn bundle, a release proof, a receipt, an OHTTP key configuration list or request, a raw SEV-SNP or Azure HCL report, an Intel TDX quote or its collateral, an NVIDIA GPU report or RIM, a TPM quote (TPMS_ATTEST), a TPM attestation key or a TCG event log (it starts with %s)", safetext.Quote(data))
}

// inspectProof decodes a release proof and the record it carries.
func inspectProof(data []byte) any {
	p, err := tlog.ParseProof(data)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	hashes := make([]string, len(p.Hashes))
	for i, h := range p.Hashes {
		hashes[i] = hex.EncodeToString(h[:])
	}
	out := map[string]any{"index": p.Index, "inclusion_proof": hashes, "checkpoint": string(p.Checkpoint)}
	if rec, err := tlog.ParseLeaf(p.Record); err != nil {
		out["record_error"] = err.Error()
	} else {
		out["record"] = rec
	}
	return out
}

// parseTPMSAttest decodes a TPM quote's TPMS_ATTEST (tpm2_quote -m): only a
// structure with the TPM_GENERATED magic and the quote type counts.
func parseTPMSAttest(data []byte) (q any, ok bool) {
	defer func() {
		if recover() != nil { // go-tpm's reflective decoder may panic on garbage
			q, ok = nil, false
		}
	}()
	if len(data) > tpm.MaxAttestSize {
		return nil, false
	}
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](data)
	if err != nil || att.Magic != tpm2.TPMGeneratedValue || att.Type != tpm2.TPMSTAttestQuote {
		return nil, false
	}
	info, err := att.Attested.Quote()
	if err != nil {
		return nil, false
	}
	sel := map[string][]int{}
	for _, s := range info.PCRSelect.PCRSelections {
		var idx []int
		for i, b := range s.PCRSelect {
			for bit := range 8 {
				if b&(1<<bit) != 0 {
					idx = append(idx, i*8+bit)
				}
			}
		}
		sel[tpm.Alg(s.Hash).String()] = idx
	}
	return map[string]any{
		"type":             "TPM_ST_ATTEST_QUOTE",
		"qualified_signer": hex.EncodeToString(tpm2.Marshal(att.QualifiedSigner)),
		"extra_data":       hex.EncodeToString(att.ExtraData.Buffer),
		"clock":            att.ClockInfo.Clock,
		"reset_count":      att.ClockInfo.ResetCount,
		"restart_count":    att.ClockInfo.RestartCount,
		"safe":             att.ClockInfo.Safe,
		"firmware_version": fmt.Sprintf("%#016x", att.FirmwareVersion),
		"pcr_select":       sel,
		"pcr_digest":       hex.EncodeToString(info.PCRDigest.Buffer),
	}, true
}

// eventLogPCRs replays a TCG event log in each bank it has and returns the
// PCR values per bank, or nil when it is not an event log.
func eventLogPCRs(data []byte) map[string]map[int]string {
	out := map[string]map[int]string{}
	for _, bank := range []tpm.Alg{tpm.SHA1, tpm.SHA256, tpm.SHA384, tpm.SHA512} {
		pcrs, err := tpm.ComputePCRs(data, bank)
		if err != nil || len(pcrs) == 0 {
			continue
		}
		m := map[int]string{}
		for i, v := range pcrs {
			m[i] = hex.EncodeToString(v)
		}
		out[bank.String()] = m
	}
	if len(out) == 0 {
		return nil
	}
	return out
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
		case attest.KindTDX:
			if a, err := tdx.ParseEvidence(e.Body); err != nil {
				en.Error = err.Error()
			} else {
				en.Body = tdx.Inspect(a)
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
		out["release"] = inspectProof(b.Release)
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

// receiptBytes decodes a receipt given as base64url text (the trailer's
// value), or returns data as it is.
func receiptBytes(data []byte) []byte {
	if len(data) > 0 && data[0] != 0xd2 && len(data) < 2*receipt.MaxSize {
		if dec, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(data)), "=")); err == nil {
			return dec
		}
	}
	return data
}
