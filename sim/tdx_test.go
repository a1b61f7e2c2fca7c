package sim

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tdx"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
)

func tdxPolicy(t *testing.T, require string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("tdx", []byte("version: 1\nroots: {intel: simulated, nvidia: simulated}\n"+require+"tdx:\n  mrtd: ["+hex.EncodeToString(tdx.SimMRTD[:])+"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTDXNode: a simulated TDX node's bundle affirms under a TDX policy
// (policy.require.cpu accepts tdx), its MRTD reaches the release claims,
// and a policy that names only snp refuses it.
func TestTDXNode(t *testing.T) {
	n, err := Boot(Options{Seed: 3, At: at, TEE: attest.KindTDX, GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	verifiers := []attest.Verifier{snp.NewVerifier(), tdx.NewVerifier(), nvgpu.NewVerifier(nil)}
	ap := func(p *policy.Policy, b *attest.Bundle) *attest.Result {
		return attest.Appraise(t.Context(), b, attest.Options{At: at.Add(time.Hour), Policy: p, Verifiers: verifiers})
	}
	r := ap(tdxPolicy(t, ""), n.Bundle)
	if r.Verdict != attest.Affirming || !r.Simulated {
		t.Fatalf("verdict %s simulated %v: %+v %+v", r.Verdict, r.Simulated, r.Devices["cpu0"].FirstFailure(), r.Policy.Steps)
	}
	if st := r.Policy.Step("policy.require.cpu"); st == nil || st.Status != attest.Pass {
		t.Fatalf("policy.require.cpu: %+v", st)
	}
	c := tlog.ClaimsFromDevices(r.Devices)
	if c.TDX == nil || !bytes.Equal(c.TDX.MRTD, tdx.SimMRTD[:]) {
		t.Fatalf("release claims: %+v", c.TDX)
	}
	snpOnly, err := policy.Parse("snp", []byte("version: 1\nroots: {intel: simulated, nvidia: simulated}\nrequire: [snp]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r = ap(snpOnly, n.Bundle)
	if st := r.Policy.Step("policy.require.cpu"); st == nil || st.Status != attest.Fail || r.Verdict != attest.Contraindicated {
		t.Fatalf("a TDX bundle under a policy that accepts only snp: %+v", st)
	}
	// Another node's TDX quote spliced in: its REPORTDATA binds other keys.
	other, err := Boot(Options{Seed: 4, At: at, TEE: attest.KindTDX})
	if err != nil {
		t.Fatal(err)
	}
	spliced := *n.Bundle
	spliced.Evidence = append([]attest.Entry{other.Bundle.Evidence[0]}, n.Bundle.Evidence[1:]...)
	r = ap(tdxPolicy(t, ""), &spliced)
	if st := r.Devices["cpu0"].Step("tdx.binding"); st == nil || st.Status != attest.Fail || r.Verdict != attest.Contraindicated {
		t.Fatalf("spliced quote: %+v", st)
	}
	if _, err := Boot(Options{Seed: 3, At: at, TEE: "sgx"}); err == nil {
		t.Fatal("unknown TEE accepted")
	}
}
