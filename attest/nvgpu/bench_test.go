package nvgpu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"testing"

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
