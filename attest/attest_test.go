package attest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/wire"
)

func testBundle(t testing.TB) *Bundle {
	t.Helper()
	k, err := wire.NewPrivateKey(1, wire.KEMXWing, wire.DefaultSuites, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	rk := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	return &Bundle{
		Version:   BundleVersion,
		Keys:      NodeKeys{RequestKeys: wire.MarshalKeyConfigs([]wire.KeyConfig{k.Config()}), ReceiptKey: rk.Public().(ed25519.PublicKey)},
		Freshness: Freshness{Nonce: bytes.Repeat([]byte{3}, 32)},
		Evidence:  []Entry{{Kind: KindSNP, Device: "cpu0", Body: []byte{0xa0}}},
	}
}

func TestBindingDefinition(t *testing.T) {
	req, rcpt, fresh := []byte("request-key"), []byte("receipt-key"), []byte("nonce")
	want := sha512.Sum512([]byte("sworn-binding-v1request-keyreceipt-keynonce"))
	if got := ComputeBinding(req, rcpt, fresh); got != Binding(want) {
		t.Fatalf("binding %x, want %x", got, want)
	}
}

// TestBindingOfBundle checks the whole construction on a bundle: the
// whole key configuration list, the receipt key, and the freshness with
// its mode's label.
func TestBindingOfBundle(t *testing.T) {
	b := testBundle(t)
	var in []byte
	in = append(in, "sworn-binding-v1"...)
	in = append(in, b.Keys.RequestKeys...)
	in = append(in, b.Keys.ReceiptKey...)
	in = append(in, "sworn-nonce-v1"...)
	in = append(in, b.Freshness.Nonce...)
	if b.Binding() != Binding(sha512.Sum512(in)) {
		t.Fatal("bundle binding does not follow docs/bundle.md")
	}
}

// TestNonceCannotBeEpoch: a nonce whose bytes are an epoch's encoding (or
// anything else) never gives the binding of that epoch.
func TestNonceCannotBeEpoch(t *testing.T) {
	epoch := Freshness{Epoch: &Epoch{NotBefore: 100, NotAfter: 200, Checkpoint: make([]byte, 32)}}
	enc := epoch.Bytes()
	for _, n := range [][]byte{enc, enc[len(nonceLabel):], enc[:min(len(enc), MaxNonceSize)]} {
		if len(n) < MinNonceSize || len(n) > MaxNonceSize {
			continue
		}
		nonce := Freshness{Nonce: n}
		if bytes.Equal(nonce.Bytes(), epoch.Bytes()) {
			t.Fatalf("nonce %x encodes like an epoch", n)
		}
	}
}

func TestEpochFreshnessBytes(t *testing.T) {
	f := Freshness{Epoch: &Epoch{NotBefore: 1, NotAfter: 2, Checkpoint: make([]byte, 32)}}
	b := f.Bytes()
	if !bytes.HasPrefix(b, []byte("sworn-epoch-v1")) || len(b) != len("sworn-epoch-v1")+16+32 {
		t.Fatalf("epoch encoding %x", b)
	}
	if !f.Epoch.Contains(time.Unix(1, 0)) || f.Epoch.Contains(time.Unix(2, 0)) {
		t.Fatal("epoch window is [NotBefore, NotAfter)")
	}
}

func TestBundleRoundTrip(t *testing.T) {
	b := testBundle(t)
	enc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBundle(enc)
	if err != nil {
		t.Fatal(err)
	}
	enc2, _ := got.Marshal()
	if !bytes.Equal(enc, enc2) {
		t.Fatal("re-encoding differs: encoding is not deterministic")
	}
	if got.Binding() != b.Binding() {
		t.Fatal("binding changed across encoding")
	}
}

func TestBundleErrors(t *testing.T) {
	good, err := testBundle(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(*Bundle)) []byte {
		b := testBundle(t)
		f(b)
		enc, err := MarshalCBOR(b)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a sworn bundle"},
		{"not CBOR", []byte("hello"), "not a sworn bundle"},
		{"truncated", good[:len(good)/2], "truncated or malformed"},
		{"trailing bytes", append(bytes.Clone(good), 0), "after the CBOR item"},
		{"oversized", make([]byte, MaxBundleSize+1), "limit"},
		{"future version", mutate(func(b *Bundle) { b.Version = 2 }), "version 2 is not supported"},
		{"unknown kind", mutate(func(b *Bundle) { b.Evidence[0].Kind = "sgx" }), "unknown kind \"sgx\""},
		{"bad device", mutate(func(b *Bundle) { b.Evidence[0].Device = "CPU-0" }), "invalid device name"},
		{"duplicate device", mutate(func(b *Bundle) { b.Evidence = append(b.Evidence, b.Evidence[0]) }), "repeats device"},
		{"no evidence", mutate(func(b *Bundle) { b.Evidence = nil }), "no evidence"},
		{"short nonce", mutate(func(b *Bundle) { b.Freshness.Nonce = []byte{1} }), "nonce is 1 bytes"},
		{"bad receipt key", mutate(func(b *Bundle) { b.Keys.ReceiptKey = []byte{1} }), "receipt key"},
		{"bad request keys", mutate(func(b *Bundle) { b.Keys.RequestKeys = b.Keys.RequestKeys[1:] }), "request keys"},
		{"no request keys", mutate(func(b *Bundle) { b.Keys.RequestKeys = nil }), "request keys"},
		{"unknown KEM", mutate(func(b *Bundle) { b.Keys.RequestKeys[3] = 0x77 }), "KEM 0x777a is not supported"},
		{"device named for another kind", mutate(func(b *Bundle) { b.Evidence[0].Device = "gpu0" }), "snp devices are named cpu0"},
		{"not deterministic CBOR", nonCanonical(good), "deterministic CBOR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBundle(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// nonCanonical re-encodes the version field (the first key) with a longer
// integer head than needed.
func nonCanonical(good []byte) []byte {
	// good starts with a map head, then key 1 (0x01) and value 1 (0x01).
	if len(good) < 3 || good[1] != 0x01 || good[2] != 0x01 {
		panic("unexpected bundle encoding")
	}
	return append([]byte{good[0], 0x01, 0x18, 0x01}, good[3:]...)
}

// stubVerifier passes every entry, for pipeline tests.
type stubVerifier struct{ kind string }

func (s stubVerifier) Kind() string { return s.kind }
func (s stubVerifier) Verify(_ context.Context, e Entry, env *Env) *Section {
	sec := &Section{}
	sec.Add(StepPrefix(s.kind)+".parse", Pass, "ok")
	sec.Add(StepPrefix(s.kind)+".binding", Pass, "ok")
	sec.Claims = map[string]any{"vmpl": 0}
	return sec
}

func TestPipelineFailsClosed(t *testing.T) {
	b := testBundle(t)
	b.Evidence = append(b.Evidence, Entry{Kind: KindTPM, Device: "tpm0", Body: []byte{0xa0}})
	at := time.Unix(1e9, 0)
	nonce := b.Freshness.Nonce
	opts := func(p *policy.Policy) Options {
		return Options{At: at, Policy: p, Nonce: nonce, Verifiers: []Verifier{stubVerifier{KindSNP}, stubVerifier{KindTPM}}}
	}
	snpPolicy := func() *policy.Policy { p := policy.Default(); p.Require = []string{"snp"}; return p }
	if r := Appraise(t.Context(), b, opts(snpPolicy())); r.Verdict != Affirming {
		t.Fatalf("baseline: %s %+v", r.Verdict, r.Policy)
	}
	// A policy that requires no CPU TEE affirms nothing.
	if r := Appraise(t.Context(), b, opts(policy.Default())); r.Verdict != Contraindicated || r.Policy.Step("policy.require.cpu").Status != Fail {
		t.Fatalf("no CPU TEE required: %s %+v", r.Verdict, r.Policy)
	}
	// No appraisal time: never the wall clock.
	o := opts(policy.Default())
	o.At = time.Time{}
	if r := Appraise(t.Context(), b, o); r.Verdict != Contraindicated || r.Policy.Step("policy.time") == nil {
		t.Fatalf("zero time: %+v", r)
	}
	// A pinned release log with no release verifier.
	p := policy.Default()
	p.Log = &policy.Log{Origin: "x"}
	if r := Appraise(t.Context(), b, opts(p)); r.Release == nil || r.Release.Step("release.inclusion").Status != Fail {
		t.Fatalf("release log without a verifier: %+v", r.Release)
	}
	// A kind nobody can appraise: its step uses the kind's prefix.
	b.Evidence[1].Kind, b.Evidence[1].Device = KindNVGPU, "gpu0"
	if r := Appraise(t.Context(), b, opts(snpPolicy())); r.Devices["gpu0"].Step("gpu.parse").Status != Fail {
		t.Fatalf("unknown verifier: %+v", r.Devices["gpu0"])
	}
	// Rules added in code (never parsed) are evaluated, and a single
	// entry's appraisal applies them too.
	b.Evidence[1].Kind, b.Evidence[1].Device = KindTPM, "tpm0"
	p = snpPolicy()
	p.Rules = []policy.Rule{{Name: "vmpl3", Expr: "claims.tpm0.vmpl == 3", Message: "not VMPL 3"}}
	if r := Appraise(t.Context(), b, opts(p)); r.Policy.Step("policy.rule.vmpl3").Status != Fail {
		t.Fatalf("uncompiled rule: %+v", r.Policy)
	}
	p.Require = []string{"tpm", "snp"}
	r := VerifyEntry(t.Context(), stubVerifier{KindTPM}, b.Evidence[1], at, p, nil)
	if r.Policy.Step("policy.rule.vmpl3").Status != Fail || r.Verdict != Contraindicated {
		t.Fatalf("VerifyEntry ignores rules: %+v", r.Policy)
	}
	if st := r.Policy.Step("policy.require.snp"); st.Status != Skip || !st.Optional {
		t.Fatalf("VerifyEntry and other required kinds: %+v", st)
	}
	if r := VerifyEntry(t.Context(), stubVerifier{KindTPM}, b.Evidence[1], time.Time{}, nil, nil); r.Verdict != Contraindicated {
		t.Fatal("VerifyEntry without a time")
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	type extra struct {
		Bundle
		X int `cbor:"99,keyasint"`
	}
	b := testBundle(t)
	enc, err := MarshalCBOR(extra{Bundle: *b, X: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseBundle(enc); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		steps []Step
		want  Verdict
	}{
		{nil, Warning},
		{[]Step{{Status: Pass}}, Affirming},
		{[]Step{{Status: Pass}, {Status: Warn}}, Warning},
		{[]Step{{Status: Pass}, {Status: Skip}}, Warning},
		{[]Step{{Status: Pass}, {Status: Skip, Optional: true}}, Affirming},
		{[]Step{{Status: Warn}, {Status: Fail}}, Contraindicated},
		{[]Step{{Status: "bogus"}}, Contraindicated},
	} {
		s := &Section{Steps: tc.steps}
		if got := s.Finish(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.steps, got, tc.want)
		}
	}
	r := &Result{Devices: map[string]*Section{}}
	if r.Finish() != Contraindicated {
		t.Error("a result with no devices must be contraindicated")
	}
}

func TestDeviceOrder(t *testing.T) {
	r := &Result{Devices: map[string]*Section{"gpu10": {}, "gpu2": {}, "tpm0": {}, "cpu0": {}, "x0": {}}}
	if got := strings.Join(r.DeviceNames(), ","); got != "cpu0,tpm0,gpu2,gpu10,x0" {
		t.Fatal(got)
	}
}

func FuzzParseBundle(f *testing.F) {
	good, err := testBundle(f).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa1, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		if _, err := b.Marshal(); err != nil {
			t.Fatalf("a parsed bundle does not re-encode: %v", err)
		}
	})
}
