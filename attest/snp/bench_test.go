package snp

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"testing"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

// BenchmarkP384Verify is the baseline: one ECDSA P-384 signature check, the
// one cost no appraisal can avoid.
func BenchmarkP384Verify(b *testing.B) {
	k, err := ecdsa.GenerateKey(simKey("bench").Curve, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha512.Sum384([]byte("report"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

// benchEntry returns a real Milan report with its VCEK, ASK, ARK and a
// fresh AMD CRL, and a policy that checks everything.
func benchEntry(b *testing.B) (attest.Entry, *policy.Policy) {
	e := loadVector(b, realVectors[0])
	e.CRLs = [][]byte{loadCRL(b)}
	body, err := e.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	// This recorded guest allows debugging, so the benchmark's policy does too.
	p, err := policy.Parse("bench", []byte("version: 1\nsnp: {allow_smt: true, allow_debug: true, vmpl: 0}\n"))
	if err != nil {
		b.Fatal(err)
	}
	return attest.Entry{Kind: attest.KindSNP, Device: "cpu0", Body: body}, p
}

func benchAppraise(b *testing.B, fresh bool) {
	entry, p := benchEntry(b)
	v := NewVerifier()
	var rd attest.Binding
	copy(rd[:], []byte{1, 2, 3, 4, 5})
	for b.Loop() {
		if fresh {
			v = NewVerifier()
		}
		r := attest.VerifyEntry(b.Context(), v, entry, crlAt, p, &rd)
		if f := r.Devices["cpu0"].FirstFailure(); f != nil {
			b.Fatalf("%+v", f)
		}
	}
}

// BenchmarkAppraiseSNP is the full appraisal of one stapled report, chain
// and CRL included, with an empty cache (cold) and with the verified chain
// and CRL cached.
func BenchmarkAppraiseSNP(b *testing.B) {
	b.Run("cold", func(b *testing.B) { benchAppraise(b, true) })
	b.Run("cached", func(b *testing.B) { benchAppraise(b, false) })
}
