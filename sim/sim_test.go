package sim

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
)

var at = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// simStarter returns the options of the simulated starter policy.
func simStarter(t *testing.T, require []string, gpus int) policy.StarterOptions {
	t.Helper()
	ref, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	return policy.StarterOptions{
		Simulated: true, SNPMeasurements: []string{hex.EncodeToString(snp.SimMeasurement[:])}, Require: require, GPUs: gpus,
		UKI: &policy.StarterUKI{
			Name: "sim", Cmdline: ref.Cmdline, Digest: hex.EncodeToString(ref.UKIDigest[tpm.SHA384]),
			PCR11: hex.EncodeToString(ref.PCR11[tpm.SHA384]), NodeSoftware: hex.EncodeToString(ref.NodeSoftware),
		},
	}
}

func simPolicy(t *testing.T, extra string) *policy.Policy {
	t.Helper()
	// These tests boot nodes with and without GPUs: accept any number
	// (TestLeftOutEvidence checks the count).
	data := bytes.Replace(policy.Starter(simStarter(t, []string{"snp", "tpm"}, 0)), []byte("  count: 0\n"), []byte("  min_count: 0\n"), 1)
	if extra != "" {
		data = append(bytes.Replace(data, []byte("rules: []"), []byte("rules:"), 1), extra...)
	}
	p, err := policy.Parse("sim", data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func appraise(t *testing.T, n *Node, p *policy.Policy, nonce []byte, when time.Time) *attest.Result {
	t.Helper()
	return attest.Appraise(t.Context(), n.Bundle, attest.Options{At: when, Policy: p, Nonce: nonce, Verifiers: []attest.Verifier{snp.NewVerifier(), tpm.NewVerifier(), nvgpu.NewVerifier(nil)}})
}

func TestBootDeterministic(t *testing.T) {
	a, err := Boot(Options{Seed: 9, At: at, NoTPM: true, GPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Boot(Options{Seed: 9, At: at, NoTPM: true, GPUs: 2})
	x, _ := a.Bundle.Marshal()
	y, _ := b.Bundle.Marshal()
	if !bytes.Equal(x, y) {
		t.Fatal("same seed and time, different bundles")
	}
	if _, err := Boot(Options{Seed: 9}); err == nil {
		t.Fatal("boot without a time accepted")
	}
	if _, err := Boot(Options{Seed: 9, At: at, GPUs: MaxGPUs + 1}); err == nil {
		t.Fatal("too many GPUs accepted")
	}
}

func TestPipeline(t *testing.T) {
	n, err := Boot(Options{Seed: 1, At: at, GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := appraise(t, n, simPolicy(t, ""), nil, at.Add(time.Hour))
	if r.Verdict != attest.Affirming || !r.Simulated {
		t.Fatalf("verdict %s simulated %v", r.Verdict, r.Simulated)
	}

	// The claims a release is compared with come from the real sections.
	c := tlog.ClaimsFromDevices(r.Devices)
	if !bytes.Equal(c.SNPMeasurement, snp.SimMeasurement[:]) || len(c.GPUDrivers) != 1 || c.GPUDrivers[0] != nvgpu.SimDriverVersion ||
		len(c.GPUVBIOS) != 1 || c.GPUVBIOS[0] != nvgpu.SimVBIOSVersion || c.Components["node"] == "" || c.Components["uki"] == "" || len(c.PCRs) != 48 {
		t.Fatalf("release claims from the sections: %+v", c)
	}

	// A policy that requires a kind the bundle lacks.
	noTPM, err := Boot(Options{Seed: 1, At: at, NoTPM: true})
	if err != nil {
		t.Fatal(err)
	}
	r = appraise(t, noTPM, simPolicy(t, ""), nil, at.Add(time.Hour))
	if st := r.Policy.Step("policy.require.tpm"); st == nil || st.Status != attest.Fail || r.Verdict != attest.Contraindicated {
		t.Fatalf("missing required tpm evidence: %+v", st)
	}

	// CEL rules over the claims.
	r = appraise(t, n, simPolicy(t, `  - name: vmpl0
    expr: claims.cpu0.vmpl == 0
    message: not VMPL 0
  - name: svn
    expr: claims.cpu0.guest_svn >= 5
    message: guest SVN below 5
`), nil, at.Add(time.Hour))
	if st := r.Policy.Step("policy.rule.vmpl0"); st == nil || st.Status != attest.Pass {
		t.Errorf("vmpl0: %+v", st)
	}
	if st := r.Policy.Step("policy.rule.svn"); st == nil || st.Status != attest.Fail || st.Detail != "guest SVN below 5" {
		t.Errorf("svn: %+v", st)
	}

	// The epoch is over: contraindicated.
	r = appraise(t, n, simPolicy(t, ""), nil, at.Add(25*time.Hour))
	if st := r.Bundle.Step("bundle.freshness"); st.Status != attest.Fail {
		t.Fatalf("expired epoch: %+v", st)
	}
	// max_age shorter than the epoch's age.
	p := simPolicy(t, "")
	p.MaxAge = policy.Duration(time.Hour)
	r = appraise(t, n, p, nil, at.Add(2*time.Hour))
	if st := r.Bundle.Step("bundle.freshness"); st.Status != attest.Fail {
		t.Fatalf("epoch older than max_age: %+v", st)
	}
	// A nonce given for a passport-mode bundle.
	r = appraise(t, n, simPolicy(t, ""), bytes.Repeat([]byte{1}, 32), at.Add(time.Hour))
	if st := r.Bundle.Step("bundle.freshness"); st.Status != attest.Fail {
		t.Fatalf("nonce against an epoch bundle: %+v", st)
	}
}

// TestSplicedEvidence moves one node's SNP evidence into another node's
// bundle: the binding must catch it.
func TestSplicedEvidence(t *testing.T) {
	a, _ := Boot(Options{Seed: 1, At: at, GPUs: 1})
	b, _ := Boot(Options{Seed: 2, At: at, GPUs: 1})
	// The whole evidence of another node.
	spliced := *a.Bundle
	spliced.Evidence = b.Bundle.Evidence
	r := appraise(t, &Node{Bundle: &spliced}, simPolicy(t, ""), nil, at.Add(time.Hour))
	if st := r.Devices["cpu0"].Step("snp.binding"); st.Status != attest.Fail {
		t.Fatalf("spliced evidence: %+v", st)
	}
	if st := r.Devices["tpm0"].Step("tpm.quote"); st.Status != attest.Fail {
		t.Fatalf("spliced vTPM quote: %+v", st)
	}
	// Only the vTPM of another node: its AK is not the one cpu0 vouches
	// for, and its quote is over another binding.
	spliced.Evidence = []attest.Entry{a.Bundle.Evidence[0], b.Bundle.Evidence[1], a.Bundle.Evidence[2]}
	r = appraise(t, &Node{Bundle: &spliced}, simPolicy(t, ""), nil, at.Add(time.Hour))
	if st := r.Devices["tpm0"].Step("tpm.quote"); st == nil || st.Status != attest.Fail {
		t.Fatalf("spliced vTPM quote: %+v", r.Devices["tpm0"].Steps)
	}
	// Only the GPU of another node: its nonce is derived from another binding.
	spliced.Evidence = []attest.Entry{a.Bundle.Evidence[0], a.Bundle.Evidence[1], b.Bundle.Evidence[2]}
	r = appraise(t, &Node{Bundle: &spliced}, simPolicy(t, ""), nil, at.Add(time.Hour))
	if st := r.Devices["gpu0"].Step("gpu.nonce"); st == nil || st.Status != attest.Fail {
		t.Fatalf("spliced GPU: %+v", r.Devices["gpu0"].Steps)
	}
	if r.Devices["tpm0"].Verdict != attest.Affirming {
		t.Fatalf("the node's own vTPM: %+v", r.Devices["tpm0"].Steps)
	}
}

// TestReplayedNonce boots with one nonce and appraises with another.
func TestReplayedNonce(t *testing.T) {
	n, err := Boot(Options{Seed: 1, At: at, Nonce: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if r := appraise(t, n, simPolicy(t, ""), bytes.Repeat([]byte{7}, 32), at); r.Verdict != attest.Affirming {
		t.Fatalf("right nonce: %s", r.Verdict)
	}
	// An attacker swaps in the new nonce: the binding no longer matches.
	n.Bundle.Freshness.Nonce = bytes.Repeat([]byte{8}, 32)
	r := appraise(t, n, simPolicy(t, ""), bytes.Repeat([]byte{8}, 32), at)
	if st := r.Devices["cpu0"].Step("snp.binding"); st.Status != attest.Fail {
		t.Fatalf("replayed evidence with a swapped nonce: %+v", st)
	}
}

// TestForgedCPUReport: a CPU report whose signature fails vouches for
// nothing: not the vTPM key in its runtime data, and nothing in the ledger.
func TestForgedCPUReport(t *testing.T) {
	n, err := Boot(Options{Seed: 1, At: at})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := snp.ParseEvidence(n.Bundle.Evidence[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(ev.Raw)
	raw[0x90] ^= 1 // the launch measurement
	var e snp.Evidence
	if err := attest.UnmarshalCBOR(n.Bundle.Evidence[0].Body, &e); err != nil {
		t.Fatal(err)
	}
	copy(e.Report[32:32+len(raw)], raw) // the report sits after the 32-byte HCL header
	body, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	n.Bundle.Evidence[0].Body = body
	r := appraise(t, n, simPolicy(t, ""), nil, at.Add(time.Hour))
	if st := r.Devices["cpu0"].Step("snp.signature"); st.Status != attest.Fail {
		t.Fatalf("forged report: %+v", st)
	}
	if r.Devices["tpm0"].Verdict == attest.Affirming {
		t.Fatalf("the vTPM is trusted through a forged CPU report: %+v", r.Devices["tpm0"].Steps)
	}
	for _, e := range r.Ledger.Verified {
		if strings.HasPrefix(e.ID, "snp.") || e.ID == "tpm.ak.tee" {
			t.Errorf("ledger says %s is verified: %s", e.ID, e.Text)
		}
	}
}
