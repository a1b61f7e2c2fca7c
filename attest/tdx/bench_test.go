package tdx

import (
	"crypto/ecdsa"
	"testing"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/interleave"
	"github.com/sworn-dev/sworn/policy"
)

// BenchmarkTDXFloor is the floor of a cached appraisal: the two ECDSA P-256
// verifications no cache can skip, the quote's signature by the
// attestation key and the QE report's signature by the PCK key, on the
// real dcap-qvl quote.
func BenchmarkTDXFloor(b *testing.B) {
	floor := floorCheck(b)
	for b.Loop() {
		if !floor() {
			b.Fatal("verify failed")
		}
	}
}

// floorCheck returns the floor's two verifications on the real dcap-qvl
// quote.
func floorCheck(b *testing.B) func() bool {
	a, err := Parse(loadVector(b, realVectors[0]))
	if err != nil {
		b.Fatal(err)
	}
	q := a.Quote
	ak, err := p256Key(q.AttestationKey[:])
	if err != nil {
		b.Fatal(err)
	}
	pck := a.PCK[0].PublicKey.(*ecdsa.PublicKey)
	return func() bool {
		return verifyRaw(ak, q.Signed, q.Signature[:]) && verifyRaw(pck, q.QEReportRaw, q.QEReportSignature[:])
	}
}

// benchEntry returns the real dcap-qvl quote with its collateral, and a
// policy that checks everything but the binding.
func benchEntry(b *testing.B) (attest.Entry, *policy.Policy) {
	body, err := loadVector(b, realVectors[0]).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	p, err := policy.Parse("bench", []byte("version: 1\ntdx:\n  mrtd: [91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7]\n"))
	if err != nil {
		b.Fatal(err)
	}
	return attest.Entry{Kind: attest.KindTDX, Device: "cpu0", Body: body}, p
}

func benchAppraise(b *testing.B, fresh bool) {
	entry, p := benchEntry(b)
	v := NewVerifier()
	at := realVectors[0].at
	for b.Loop() {
		if fresh {
			v = NewVerifier()
		}
		r := attest.VerifyEntry(b.Context(), v, entry, at, p, nil)
		if f := r.Devices["cpu0"].FirstFailure(); f != nil {
			b.Fatalf("%+v", f)
		}
	}
}

// BenchmarkAppraiseTDX is the full appraisal of one real quote with its
// stapled collateral: cold (an empty cache: three chains, two collateral
// signatures, two CRL signatures, the quote's two signatures) and cached
// (verified chains and collateral signatures reused).
func BenchmarkAppraiseTDX(b *testing.B) {
	b.Run("cold", func(b *testing.B) { benchAppraise(b, true) })
	b.Run("cached", func(b *testing.B) { benchAppraise(b, false) })
}

// BenchmarkTDXRatio interleaves the floor and a cached appraisal in each
// iteration, timing each, and reports their medians and the cached
// appraisal's ratio to the floor: both see the same load, which separate
// benchmarks on a shared machine do not. Cold appraisals (a new Verifier
// each) are timed after the loop, one for every ten iterations: each
// leaves some 350 KiB of garbage, whose collection would otherwise be
// charged to the cached appraisals timed beside it.
func BenchmarkTDXRatio(b *testing.B) {
	check := floorCheck(b)
	entry, p := benchEntry(b)
	at := realVectors[0].at
	appraise := func(v *Verifier) {
		r := attest.VerifyEntry(b.Context(), v, entry, at, p, nil)
		if f := r.Devices["cpu0"].FirstFailure(); f != nil {
			b.Fatalf("%+v", f)
		}
	}
	warm := NewVerifier()
	appraise(warm)
	var t interleave.Timings
	n := 0
	for b.Loop() {
		t.Time("floor", func() {
			if !check() {
				b.Fatal("verify failed")
			}
		})
		t.Time("cached", func() { appraise(warm) })
		n++
	}
	for range max(n/10, 1) {
		fresh := NewVerifier()
		t.Time("cold", func() { appraise(fresh) })
	}
	t.Report(b, "floor")
}
