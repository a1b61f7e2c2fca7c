package receipt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"

	"github.com/sworn-dev/sworn/internal/interleave"
)

// benchPayload is a full receipt payload for node key pub.
func benchPayload(pub ed25519.PublicKey) *Payload {
	return &Payload{
		Version: Version, Request: sha256.Sum256([]byte("q")), Response: sha256.Sum256([]byte("a")), Model: sha256.Sum256([]byte("m")),
		Release: &Release{Origin: "log.example/releases", Index: 1234, LeafHash: sha256.Sum256(nil)}, Bundle: sha256.Sum256([]byte("b")),
		NodeKey: KeyID(pub), Nonce: make([]byte, 32), Time: 1795000000, Tokens: Tokens{Prompt: 812, Completion: 4096},
		Suite: Suite{KEM: 0x647a, KDF: 1, AEAD: 1, Candidates: 3}, Status: 200,
	}
}

// BenchmarkSignVerify compares a receipt's whole life — Sign, Parse and
// Verify — with a bare Ed25519 sign and verify of a message of the
// receipt's size, in the same run.
func BenchmarkSignVerify(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	p := benchPayload(pub)
	data, err := Sign(key, p)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("receipt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := Sign(key, p)
			if err != nil {
				b.Fatal(err)
			}
			r, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Verify(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The receipt's parts, to see where its time goes.
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			Sign(key, p)
		}
	})
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			Parse(data)
		}
	})
	r, _ := Parse(data)
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			r.Verify(pub)
		}
	})
	msg := make([]byte, len(data))
	b.Run("ed25519", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sig := ed25519.Sign(key, msg)
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("verify")
			}
		}
	})
	sig := ed25519.Sign(key, msg)
	b.Run("ed25519-sign", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(key, msg)
		}
	})
	b.Run("ed25519-verify", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub, msg, sig)
		}
	})
	b.Logf("receipt: %d bytes", len(data))
}

// BenchmarkSignVerifyRatio interleaves a receipt's sign, parse and verify
// with a bare Ed25519 sign and verify of a message of the receipt's size,
// timing each in every iteration, and reports the ratio of their medians
// (receipt/ed25519).
func BenchmarkSignVerifyRatio(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	p := benchPayload(pub)
	data, _ := Sign(key, p)
	msg := make([]byte, len(data))
	var t interleave.Timings
	for b.Loop() {
		t.Time("receipt", func() {
			data, err := Sign(key, p)
			if err != nil {
				b.Fatal(err)
			}
			r, err := Parse(data)
			if err != nil || r.Verify(pub) != nil {
				b.Fatal("the receipt does not verify")
			}
		})
		t.Time("ed25519", func() {
			if !ed25519.Verify(pub, msg, ed25519.Sign(key, msg)) {
				b.Fatal("verify")
			}
		})
	}
	t.Report(b, "ed25519")
}
