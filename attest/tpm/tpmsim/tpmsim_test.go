package tpmsim

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
)

func TestSimBootVerifies(t *testing.T) {
	binding := attest.ComputeBinding([]byte("req"), []byte("rcpt"), []byte("nonce-nonce-nonce"))
	r, err := Run(Options{Seed: 7, Binding: binding})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("sim", []byte("version: 1\ntpm:\n  pinned_aks: ["+hex.EncodeToString(r.AKFingerprint[:])+"]\n  components:\n    - name: uki\n      alternatives:\n        - uki_digest: "+hex.EncodeToString(r.UKIDigest[tpm.SHA384])+"\n          pcr11: "+hex.EncodeToString(r.PCR11[tpm.SHA384])+"\n          cmdline: \""+r.Cmdline+"\"\n          node_software: "+hex.EncodeToString(r.NodeSoftware)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	res := attest.VerifyEntry(context.Background(), tpm.NewVerifier(), r.Entry, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), p, &binding)
	s := res.Devices["tpm0"]
	for _, id := range []string{tpm.StepParse, tpm.StepQuote, tpm.StepAK, tpm.StepReplay, tpm.StepReference} {
		if st := s.Step(id); st == nil || st.Status != attest.Pass {
			t.Fatalf("%s: %+v", id, s.Steps)
		}
	}
	if res.Verdict != attest.Affirming {
		t.Fatalf("verdict %s: %+v", res.Verdict, s.Steps)
	}
	uki, _ := s.Claims["uki"].([]any)
	if len(uki) != 6 {
		t.Fatalf("uki claims %v", s.Claims["uki"])
	}
	// Deterministic AK from the seed.
	r2, err := Run(Options{Seed: 7, Binding: binding})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r2.Evidence.AK, r.Evidence.AK) {
		t.Fatal("AK differs for the same seed")
	}
	// Another binding is refused at tpm.quote.
	other := binding
	other[0] ^= 1
	res = attest.VerifyEntry(context.Background(), tpm.NewVerifier(), r.Entry, time.Now(), p, &other)
	if st := res.Devices["tpm0"].Step(tpm.StepQuote); st == nil || st.Status != attest.Fail {
		t.Fatalf("wrong binding: %+v", res.Devices["tpm0"].Steps)
	}
}
