package nvgpu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
)

// BenchmarkP384Verify is the baseline: one ECDSA P-384 signature check.
func BenchmarkP384Verify(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	d := sha512.Sum384([]byte("baseline"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	b.ResetTimer()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&k.PublicKey, d[:], sig) {
			b.Fatal("verify")
		}
	}
}

func benchEntry(b *testing.B) (attest.Entry, *Verifier) {
	body := vectorEvidence(b, "nvtrust-initial-hopper-545", "attestationReport.txt", "gpuAkCertChain.txt", rim545Driver, rim545VBIOS)
	n, _ := hex.DecodeString(nonce545)
	return attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, NewVerifier(nil).WithNonce(n)
}

// BenchmarkVerifyGPUCachedOCSP is a simulated GPU with both RIMs and
// OCSP responses stapled for its device and RIM chains (nine certificates),
// everything cached but the report's own signature and the time checks.
func BenchmarkVerifyGPUCachedOCSP(b *testing.B) {
	var binding attest.Binding
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	es, err := NewSimulator([]byte("bench")).Entries(binding, 1, at)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(NewCache(0))
	pol := mustPolicy(b, "roots:\n  nvidia: simulated\n")
	verify := func() {
		if r := attest.VerifyEntry(context.Background(), v, es[0], at, pol, &binding); r.Verdict != attest.Affirming {
			b.Fatalf("verdict %s", r.Verdict)
		}
	}
	verify() // warm
	b.ResetTimer()
	for b.Loop() {
		verify()
	}
}

func benchVerify(b *testing.B, v *Verifier, e attest.Entry) {
	pol := mustPolicy(b, "nvgpu:\n  skip_revocation: true\n")
	for b.Loop() {
		r := attest.VerifyEntry(context.Background(), v, e, at2024, pol, nil)
		if r.Verdict != attest.Affirming {
			b.Fatalf("verdict %s", r.Verdict)
		}
	}
}

// BenchmarkVerifyGPUCold is one GPU's full local verification with both
// RIMs and nothing cached: report signature, device chain, FWID, nonce,
// two RIM XML signatures and chains, measurement matching, policy.
func BenchmarkVerifyGPUCold(b *testing.B) {
	e, v := benchEntry(b)
	benchVerify(b, v, e)
}

// BenchmarkVerifyGPUCached is the same with verified chains and RIMs
// cached: the report's own signature is the only public-key check left.
func BenchmarkVerifyGPUCached(b *testing.B) {
	e, v := benchEntry(b)
	v.cache = NewCache(0)
	pol := mustPolicy(b, "nvgpu:\n  skip_revocation: true\n")
	attest.VerifyEntry(context.Background(), v, e, at2024, pol, nil) // warm
	b.ResetTimer()
	benchVerify(b, v, e)
}

// BenchmarkVerifyGPUCachedRatio interleaves the baseline and the cached
// verification, one of each per iteration, timing each, and reports the
// ratio of their medians (x-baseline): both see the same load, and a
// preemption on a shared machine moves a median little, where the
// separate benchmarks above run seconds apart and drift with the load.
// Its ns/op is the sum of the two.
func BenchmarkVerifyGPUCachedRatio(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	d := sha512.Sum384([]byte("baseline"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	e, v := benchEntry(b)
	v.cache = NewCache(0)
	pol := mustPolicy(b, "nvgpu:\n  skip_revocation: true\n")
	attest.VerifyEntry(context.Background(), v, e, at2024, pol, nil) // warm
	var base, cached []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if !ecdsa.VerifyASN1(&k.PublicKey, d[:], sig) {
			b.Fatal("verify")
		}
		t1 := time.Now()
		if r := attest.VerifyEntry(context.Background(), v, e, at2024, pol, nil); r.Verdict != attest.Affirming {
			b.Fatalf("verdict %s", r.Verdict)
		}
		t2 := time.Now()
		base = append(base, t1.Sub(t0))
		cached = append(cached, t2.Sub(t1))
	}
	b.StopTimer()
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2])
	}
	mb, mc := median(base), median(cached)
	b.ReportMetric(mc/mb, "x-baseline")
	b.ReportMetric(mb, "baseline-median-ns")
	b.ReportMetric(mc, "cached-median-ns")
}
