package tpmsim

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
)

func TestSimBootVerifies(t *testing.T) {
	r, binding, p := simBoot(t)
	res := attest.VerifyEntry(context.Background(), tpm.NewVerifier(), r.Entry, at, p, &binding)
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

// at is when the simulated evidence is appraised.
var at = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// simBoot runs the simulated boot (seed 7) bound to a fixed binding, and
// returns it with simPolicy's policy for it.
func simBoot(t testing.TB) (*Result, attest.Binding, *policy.Policy) {
	t.Helper()
	binding := attest.ComputeBinding([]byte("req"), []byte("rcpt"), []byte("nonce-nonce-nonce"))
	r, err := Run(Options{Seed: 7, Binding: binding})
	if err != nil {
		t.Fatal(err)
	}
	return r, binding, simPolicy(t, r)
}

// simPolicy pins the simulated AK and expects the simulated UKI and node
// software, in the sha384 bank.
func simPolicy(t testing.TB, r *Result) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("sim", []byte("version: 1\ntpm:\n  pinned_aks: ["+hex.EncodeToString(r.AKFingerprint[:])+"]\n  components:\n    - name: uki\n      alternatives:\n        - uki_digest: "+hex.EncodeToString(r.UKIDigest[tpm.SHA384])+"\n          pcr11: "+hex.EncodeToString(r.PCR11[tpm.SHA384])+"\n          cmdline: \""+r.Cmdline+"\"\n          node_software: "+hex.EncodeToString(r.NodeSoftware)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReplayEveryBank: the simulated log records, and the quotes cover,
// sha256 and sha384. An event digest altered in either bank alone fails
// tpm.replay, naming that bank and the PCR, although the other bank still
// replays.
func TestReplayEveryBank(t *testing.T) {
	r, binding, p := simBoot(t)
	res := attest.VerifyEntry(context.Background(), tpm.NewVerifier(), r.Entry, at, p, &binding)
	if st := res.Devices["tpm0"].Step(tpm.StepReplay); st == nil || st.Status != attest.Pass || !strings.Contains(st.Detail, "24 sha384, 24 sha256") {
		t.Fatalf("untampered: %+v", res.Devices["tpm0"].Steps)
	}
	for _, bank := range Banks {
		t.Run(bank.String(), func(t *testing.T) {
			// The UKI's Authenticode digest is the PCR 4 load event's
			// digest in this bank, and appears nowhere else in the log.
			ev := *r.Evidence
			ev.EventLog = bytes.Clone(r.Evidence.EventLog)
			i := bytes.Index(ev.EventLog, r.UKIDigest[bank])
			if i < 0 || bytes.Index(ev.EventLog[i+1:], r.UKIDigest[bank]) >= 0 {
				t.Fatalf("the %s UKI digest is not in the log exactly once", bank)
			}
			ev.EventLog[i] ^= 1
			e, err := ev.Entry("tpm0")
			if err != nil {
				t.Fatal(err)
			}
			res := attest.VerifyEntry(context.Background(), tpm.NewVerifier(), e, at, p, &binding)
			st := res.Devices["tpm0"].Step(tpm.StepReplay)
			if st == nil || st.Status != attest.Fail || !strings.Contains(st.Detail, "quoted "+bank.String()+" PCRs [4]") || !strings.Contains(st.Detail, "PCR 4:") {
				t.Fatalf("tampered %s digest: %+v", bank, res.Devices["tpm0"].Steps)
			}
			if res.Verdict == attest.Affirming {
				t.Fatal("affirming")
			}
		})
	}
}
