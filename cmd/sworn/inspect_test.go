package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/wire"
)

// TestInspectEveryInput: inspect decodes the release proofs and the
// tpm2-tools files that sworn's other commands read, not only bundles and
// vendor reports.
func TestInspectEveryInput(t *testing.T) {
	dir, bundle, _, _ := setup(t)
	quote, sig, ak, _, eventlog := tpmFiles(t, dir, bundle)

	skey, _, err := tlog.GenerateKey(tlog.KeyKind("publisher"), "ci.inspect.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	rec := tlog.Template(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))
	if err := rec.Sign(signer); err != nil {
		t.Fatal(err)
	}
	leaf, err := rec.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	proof := filepath.Join(dir, "release.tlog-proof")
	p := &tlog.Proof{Record: leaf, Index: 7, Hashes: [][32]byte{{1}}, Checkpoint: []byte("log.example\n8\nAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n\n— log.example AAAA\n")}
	if err := os.WriteFile(proof, p.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.tlog-proof")
	os.WriteFile(broken, []byte("c2sp.org/tlog-proof@v1\nindex 1\n"), 0o644)

	// Wire inputs: a key configuration list, an encapsulated request, a
	// receipt as its trailer's base64url text.
	keys, err := wire.NodeKeys(1)
	if err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "ohttp-keys")
	os.WriteFile(list, wire.MarshalKeyConfigs([]wire.KeyConfig{keys[0].Config(), keys[1].Config()}), 0o644)
	enc, _, err := wire.EncapsulateRequest(keys[0].Config(), wire.DefaultSuites[0], []byte("a request"))
	if err != nil {
		t.Fatal(err)
	}
	encPath := filepath.Join(dir, "request.ohttp")
	os.WriteFile(encPath, enc, 0o644)
	pk, rk, _ := ed25519.GenerateKey(nil)
	rc, err := receipt.Sign(rk, &receipt.Payload{Version: receipt.Version, Time: 1e9, Status: 200, NodeKey: receipt.KeyID(pk), Suite: receipt.Suite{KEM: 0x647a, KDF: 1, AEAD: 2, Candidates: 1}})
	if err != nil {
		t.Fatal(err)
	}
	rcPath := filepath.Join(dir, "receipt.txt")
	os.WriteFile(rcPath, []byte(base64.RawURLEncoding.EncodeToString(rc)+"\n"), 0o644)

	for _, tc := range []struct {
		name string
		path string
		want []string
	}{
		{"key configuration list", list, []string{`"kind": "application/ohttp-keys"`, `"kem": "ML-KEM-768+X25519 (X-Wing)"`, `"key_id": 2`}},
		{"encapsulated request", encPath, []string{`"kind": "ohttp-request"`, `"key_id": 1`, `"suite": "HKDF-SHA256/AES-256-GCM"`}},
		{"receipt", rcPath, []string{`"kind": "receipt"`, `"Status": 200`}},
		{"release proof", proof, []string{`"kind": "tlog-proof"`, `"index": 7`, `"inclusion_proof": [`, `"record": {`, "log.example"}},
		{"quote.msg", quote, []string{`"kind": "tpm-quote"`, `"type": "TPM_ST_ATTEST_QUOTE"`, `"pcr_select": {`, `"sha256": [`, `"extra_data": "`}},
		{"ak.pub", ak, []string{`"kind": "tpm-ak"`, `"fingerprint": "`, "BEGIN PUBLIC KEY"}},
		{"event log", eventlog, []string{`"kind": "tcg-eventlog"`, `"sha384": {`}},
		{"bundle", bundle, []string{`"evidence": [`}},
	} {
		code, out, stderr := sworn(t, "inspect", tc.path)
		if code != 0 {
			t.Errorf("inspect %s: exit %d: %s", tc.name, code, stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("inspect %s: output lacks %s\n%s", tc.name, w, out)
			}
		}
	}
	// A quote's signature is not one of them: exit 2, and a broken proof
	// says it is a proof that does not parse.
	if code, _, stderr := sworn(t, "inspect", sig); code != 2 || !strings.Contains(stderr, "not a sworn bundle") {
		t.Errorf("inspect quote.sig: exit %d: %s", code, stderr)
	}
	if code, _, stderr := sworn(t, "inspect", broken); code != 2 || !strings.Contains(stderr, "a release proof that does not parse") {
		t.Errorf("inspect a broken proof: exit %d: %s", code, stderr)
	}
}
