package tlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// benchProof returns a proof of depth 20 (a log of about a million
// entries) with a checkpoint signed by the log and both witnesses.
func benchProof(b *testing.B) (*fixture, *Proof) {
	f := newFixture(b)
	leaf := f.leaves[1]
	const size = 1<<20 + 12345
	idx := uint64(777777)
	var hashes [][32]byte
	var hs [][]byte
	n, _ := proof.Inclusion(idx, size)
	for i := range n.IDs {
		h := sha256.Sum256([]byte{byte(i)})
		hs = append(hs, h[:])
	}
	hs, err := n.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range hs {
		hashes = append(hashes, [32]byte(h))
	}
	root, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, idx, size, rfc6962.DefaultHasher.HashLeaf(leaf), hs)
	if err != nil {
		b.Fatal(err)
	}
	body := log.Checkpoint{Origin: f.origin, Size: size, Hash: root}.Marshal()
	cp, err := note.Sign(&note.Note{Text: string(body)}, f.logS, f.w1, f.w2)
	if err != nil {
		b.Fatal(err)
	}
	return f, &Proof{Record: leaf, Index: idx, Hashes: hashes, Checkpoint: cp}
}

// BenchmarkEd25519Verify3 is the baseline: three Ed25519 verifications of a
// checkpoint-sized message.
func BenchmarkEd25519Verify3(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 120)
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		for range 3 {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("bad")
			}
		}
	}
}

// BenchmarkVerifyProofNewCheckpoint verifies a proof against a checkpoint
// not seen before: log signature, two cosignatures, quorum, inclusion.
func BenchmarkVerifyProofNewCheckpoint(b *testing.B) {
	f, p := benchProof(b)
	v, err := NewVerifier(f.pol)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now()
	for b.Loop() {
		clear(v.cache)
		if _, err := v.VerifyProof(p, at); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyProofCachedCheckpoint verifies inclusion proofs against
// a checkpoint already verified; it reports proofs/s on one core.
func BenchmarkVerifyProofCachedCheckpoint(b *testing.B) {
	f, p := benchProof(b)
	v, _ := NewVerifier(f.pol)
	at := time.Now()
	if _, err := v.VerifyProof(p, at); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for b.Loop() {
		if _, err := v.VerifyProof(p, at); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "proofs/s")
}
