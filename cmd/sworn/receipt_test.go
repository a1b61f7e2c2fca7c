package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/sim"
)

// TestVerifyReceipt signs a receipt with a simulated node's receipt key and
// verifies it with the built binary: with and without the plaintexts, as
// base64url text, and altered in each way a receipt can be.
func TestVerifyReceipt(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	boot := func(seed uint64) (*sim.Node, string) {
		n, err := sim.Boot(sim.Options{Seed: seed, At: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		data, err := n.Bundle.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return n, write("node"+string(rune('0'+seed))+".bundle", data)
	}
	n, bundle := boot(3)
	_, otherBundle := boot(4)
	pol, code := swornBinary(t, "policy", "init", "--simulated")
	if code != 0 {
		t.Fatal(pol)
	}
	policyPath := write("sim.yaml", []byte(pol))

	req := []byte("\x00\x04POST\x05https\x09localhost\x14/v1/chat/completions")
	body := []byte(`{"choices":[{"message":{"content":"hi"}}]}`)
	p := &receipt.Payload{
		Version: receipt.Version, Request: receipt.RequestDigest(req), Response: receipt.ResponseDigest(200, body),
		Model: sha256.Sum256([]byte("model")), Time: time.Date(2026, 11, 27, 0, 30, 0, 0, time.UTC).Unix(),
		Tokens: receipt.Tokens{Prompt: 7, Completion: 2}, Suite: receipt.Suite{KEM: 0x647a, KDF: 1, AEAD: 1, Candidates: 1}, Status: 200,
	}
	if err := p.SetBundle(n.Bundle); err != nil {
		t.Fatal(err)
	}
	rc, err := receipt.Sign(n.ReceiptKey, p)
	if err != nil {
		t.Fatal(err)
	}
	rcpt := write("answer.receipt", rc)
	b64 := write("answer.receipt.txt", []byte(base64.RawURLEncoding.EncodeToString(rc)+"\n"))
	flipped := bytes.Clone(rc)
	flipped[len(flipped)-1] ^= 1
	bad := write("flipped.receipt", flipped)
	reqPath, bodyPath := write("request.bhttp", req), write("response.json", body)
	wrongBody := write("wrong.json", append(bytes.Clone(body), '\n'))

	base := []string{"verify", "receipt", "--bundle", bundle, "--policy", policyPath, "--at", testAt}
	out, code := swornBinary(t, append(base, rcpt, "--request", reqPath, "--response", bodyPath, "--json")...)
	var r attest.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	if code != 0 || r.Verdict != attest.Affirming || r.Receipt == nil {
		t.Fatalf("exit %d verdict %s\n%s", code, r.Verdict, out)
	}
	for _, id := range []string{receipt.StepSignature, receipt.StepBundle, receipt.StepRequest, receipt.StepResponse} {
		if st := r.Receipt.Step(id); st == nil || st.Status != attest.Pass {
			t.Errorf("%s: %+v", id, st)
		}
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"base64url text, no plaintexts", append(base, b64), 0, "– receipt.request"},
		{"another response", append(base, rcpt, "--response", wrongBody), 1, "✘ receipt.response"},
		{"another status", append(base, rcpt, "--response", bodyPath, "--status", "500"), 1, "✘ receipt.response"},
		{"another request", append(base, rcpt, "--request", bodyPath), 1, "✘ receipt.request"},
		{"flipped byte", append(base, bad), 1, "✘ receipt.signature"},
		{"another node's bundle", []string{"verify", "receipt", "--bundle", otherBundle, "--policy", policyPath, "--at", testAt, rcpt}, 1, "✘ receipt.signature"},
		{"verified before it was signed", []string{"verify", "receipt", "--bundle", bundle, "--policy", policyPath, "--at", "2026-11-26T00:00:00Z", rcpt}, 1, "✘ receipt.time"},
		{"not a receipt", append(base, bundle), 2, "receipt " + bundle},
		{"no bundle", []string{"verify", "receipt", "--policy", policyPath, rcpt}, 2, "--bundle is required"},
		{"receipt as bundle", []string{"verify", "receipt", "--bundle", rcpt, "--policy", policyPath, rcpt}, 2, "--bundle " + rcpt},
		{"status without response", append(base, rcpt, "--status", "200"), 2, "--status"},
		{"status out of range", append(base, rcpt, "--response", bodyPath, "--status", "1000"), 2, "--status 1000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, code := swornBinary(t, c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, c.code, c.want, out)
			}
		})
	}
}
