package attest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/policy"
)

// unboundVerifier passes an entry but skips its binding step.
type unboundVerifier struct{ kind string }

func (u unboundVerifier) Kind() string { return u.kind }
func (u unboundVerifier) Verify(_ context.Context, _ Entry, _ *Env) *Section {
	s := &Section{}
	s.Add(StepPrefix(u.kind)+".parse", Pass, "ok")
	s.AddOptional(StepPrefix(u.kind)+".binding", Skip, "no binding")
	return s
}

// TestRequiredEvidence covers the evidence a node may leave out: every
// kind that the policy configures is required unless it is optional, a
// bundle affirms only with exactly one bound CPU TEE, and the number of
// GPUs is checked when the policy names it.
func TestRequiredEvidence(t *testing.T) {
	type want struct {
		verdict Verdict
		step    string // a step that must have this status
		status  Status
		ledger  string // an assumption the ledger must make, or ""
	}
	dev := func(kind, name string) Entry { return Entry{Kind: kind, Device: name, Body: []byte{0xa0}} }
	cpu, tpm0, gpu0, gpu1 := dev(KindSNP, "cpu0"), dev(KindTPM, "tpm0"), dev(KindNVGPU, "gpu0"), dev(KindNVGPU, "gpu1")
	stubs := []Verifier{stubVerifier{KindSNP}, stubVerifier{KindTDX}, stubVerifier{KindTPM}, stubVerifier{KindNVGPU}}
	for _, tc := range []struct {
		name      string
		policy    string
		evidence  []Entry
		verifiers []Verifier
		want      want
	}{
		{"tpm section makes tpm required", "require: [snp]\ntpm: {ak_trust: [tee]}\n", []Entry{cpu}, nil,
			want{Contraindicated, "policy.require.tpm", Fail, ""}},
		{"tpm present", "require: [snp]\ntpm: {ak_trust: [tee]}\n", []Entry{cpu, tpm0}, nil,
			want{Affirming, "policy.require.tpm", Pass, "nvgpu.count"}},
		{"optional tpm may be absent, and the ledger says so", "require: [snp]\ntpm: {optional: true, ak_trust: [tee]}\n", []Entry{cpu}, nil,
			want{Affirming, "policy.require.cpu", Pass, "tpm.absent"}},
		{"snp section alone requires a CPU TEE", "snp: {allow_debug: false}\n", []Entry{cpu}, nil,
			want{Affirming, "policy.require.cpu", Pass, ""}},
		{"no CPU TEE required", "require: []\n", []Entry{cpu, gpu0}, nil,
			want{Contraindicated, "policy.require.cpu", Fail, ""}},
		{"GPU-only bundle", "require: [snp]\n", []Entry{gpu0}, nil,
			want{Contraindicated, "policy.require.cpu", Fail, ""}},
		{"two CPU TEEs", "require: [snp]\n", []Entry{cpu, dev(KindSNP, "cpu1")}, nil,
			want{Contraindicated, "policy.require.cpu", Fail, ""}},
		{"CPU TEE of a kind the policy does not name", "require: [snp]\n", []Entry{dev(KindTDX, "cpu0")}, nil,
			want{Contraindicated, "policy.require.cpu", Fail, ""}},
		{"CPU TEE of a configured alternative", "require: [tdx]\nsnp: {allow_debug: false}\n", []Entry{dev(KindTDX, "cpu0")}, nil,
			want{Affirming, "policy.require.cpu", Pass, ""}},
		{"CPU TEE whose binding did not verify", "require: [snp]\n", []Entry{cpu}, []Verifier{unboundVerifier{KindSNP}},
			want{Contraindicated, "policy.require.cpu", Fail, ""}},
		{"a GPU left out", "require: [snp]\nnvgpu: {count: 2}\n", []Entry{cpu, gpu0}, nil,
			want{Contraindicated, "policy.nvgpu.count", Fail, ""}},
		{"every GPU present", "require: [snp]\nnvgpu: {count: 2}\n", []Entry{cpu, gpu0, gpu1}, nil,
			want{Affirming, "policy.nvgpu.count", Pass, ""}},
		{"a GPU added", "require: [snp]\nnvgpu: {count: 1}\n", []Entry{cpu, gpu0, gpu1}, nil,
			want{Contraindicated, "policy.nvgpu.count", Fail, ""}},
		{"min_count", "require: [snp]\nnvgpu: {min_count: 1}\n", []Entry{cpu, gpu0, gpu1}, nil,
			want{Affirming, "policy.nvgpu.count", Pass, ""}},
		{"min_count not met", "require: [snp]\nnvgpu: {min_count: 1}\n", []Entry{cpu}, nil,
			want{Contraindicated, "policy.require.nvgpu", Fail, ""}},
		{"count 0 forbids GPUs", "require: [snp]\nnvgpu: {count: 0}\n", []Entry{cpu, gpu0}, nil,
			want{Contraindicated, "policy.nvgpu.count", Fail, ""}},
		{"count 0 needs no GPU", "require: [snp]\nnvgpu: {count: 0}\n", []Entry{cpu}, nil,
			want{Affirming, "policy.nvgpu.count", Pass, ""}},
		{"no count: not attested", "require: [snp]\n", []Entry{cpu, gpu0}, nil,
			want{Affirming, "policy.require.cpu", Pass, "nvgpu.count"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Parse(tc.name, []byte("version: 1\n"+tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			b := testBundle(t)
			b.Evidence = tc.evidence
			vs := tc.verifiers
			if vs == nil {
				vs = stubs
			}
			r := Appraise(t.Context(), b, Options{At: time.Unix(1e9, 0), Policy: p, Nonce: b.Freshness.Nonce, Verifiers: vs})
			if r.Verdict != tc.want.verdict {
				t.Errorf("verdict %s, want %s; policy section %+v", r.Verdict, tc.want.verdict, r.Policy)
			}
			if st := r.Policy.Step(tc.want.step); st == nil || st.Status != tc.want.status {
				t.Errorf("step %s: %+v, want %s", tc.want.step, st, tc.want.status)
			} else {
				t.Logf("%s: %s", st.ID, st.Detail)
			}
			if tc.want.ledger != "" && !slices.ContainsFunc(r.Ledger.Assumed, func(e LedgerEntry) bool { return e.ID == tc.want.ledger }) {
				t.Errorf("the ledger does not assume %s: %+v", tc.want.ledger, r.Ledger.Assumed)
			}
		})
	}
}
