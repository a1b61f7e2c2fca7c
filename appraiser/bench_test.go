package appraiser

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/internal/interleave"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/tlog"
)

// wholeNode is a simulated node with SEV-SNP, a vTPM and 8 GPUs whose
// bundle staples a release proof from a log with two witnesses (quorum 2),
// the policy that pins them, and the public keys of the log and witnesses.
type wholeNode struct {
	bundle *attest.Bundle
	pol    *policy.Policy
	at     time.Time
	// noteKeys are the Ed25519 keys of the log and witnesses, by name.
	noteKeys map[string]ed25519.PublicKey
}

func newWholeNode(b *testing.B) *wholeNode {
	b.Helper()
	// Cosignatures carry the wall-clock time: boot and appraise around now.
	now := time.Now().UTC().Truncate(time.Second)
	w := &wholeNode{at: now, noteKeys: map[string]ed25519.PublicKey{}}
	key := func(kind tlog.KeyKind, name string) (note.Signer, string) {
		sk, vk, err := tlog.GenerateKey(kind, name)
		if err != nil {
			b.Fatal(err)
		}
		var s note.Signer
		if kind == tlog.KindWitness {
			s, err = tlog.NewCosignerFromKey(sk)
		} else {
			s, err = note.NewSigner(sk)
		}
		if err != nil {
			b.Fatal(err)
		}
		f := strings.SplitN(vk, "+", 3)
		raw, err := base64.StdEncoding.DecodeString(f[len(f)-1])
		if err != nil || len(raw) != 1+ed25519.PublicKeySize {
			b.Fatalf("verifier key %q", vk)
		}
		w.noteKeys[name] = raw[1:]
		return s, vk
	}
	const origin = "log.bench.example"
	logS, logV := key(tlog.KindLog, origin)
	w1S, w1V := key(tlog.KindWitness, "w1.bench.example")
	w2S, w2V := key(tlog.KindWitness, "w2.bench.example")
	pubS, pubV := key(tlog.KindPublisher, "ci.bench.example")
	rec, err := sim.ReleaseRecord("1.0.0", now.Add(-48*time.Hour), 8)
	if err != nil {
		b.Fatal(err)
	}
	if err := rec.Sign(pubS); err != nil {
		b.Fatal(err)
	}
	leaf, err := rec.Canonical()
	if err != nil {
		b.Fatal(err)
	}
	body := log.Checkpoint{Origin: origin, Size: 1, Hash: rfc6962.DefaultHasher.HashLeaf(leaf)}.Marshal()
	cp, err := note.Sign(&note.Note{Text: string(body)}, logS, w1S, w2S)
	if err != nil {
		b.Fatal(err)
	}
	proof := (&tlog.Proof{Record: leaf, Index: 0, Checkpoint: cp}).Marshal()
	n, err := sim.Boot(sim.Options{Seed: 8, At: now.Add(-time.Hour), GPUs: 8, Release: proof})
	if err != nil {
		b.Fatal(err)
	}
	w.bundle = n.Bundle
	so, err := sim.StarterOptions(8)
	if err != nil {
		b.Fatal(err)
	}
	so.Log = &policy.StarterLog{Origin: origin, Key: logV, Witnesses: []string{w1V, w2V}, Quorum: 2, Publishers: []string{pubV}}
	if w.pol, err = policy.Parse("bench", policy.Starter(so)); err != nil {
		b.Fatal(err)
	}
	r := New().Appraise(b.Context(), w.bundle, Options{At: w.at, Policy: w.pol})
	if r.Verdict != attest.Affirming || r.Release == nil {
		var s strings.Builder
		r.WriteText(&s)
		b.Fatalf("the whole node does not affirm:\n%s", s.String())
	}
	return w
}

func (w *wholeNode) appraise(b *testing.B, a *Appraiser) {
	if r := a.Appraise(b.Context(), w.bundle, Options{At: w.at, Policy: w.pol}); r.Verdict != attest.Affirming {
		b.Fatalf("verdict %s", r.Verdict)
	}
}

// floor returns the signature checks no cache can skip, done with the
// standard library on the bundle's own inputs: the SEV-SNP report's
// ECDSA P-384 signature, the vTPM quotes' signatures, each GPU report's
// ECDSA P-384 signature, and the checkpoint's Ed25519 log signature and
// witness cosignatures. It checks them once before returning.
func (w *wholeNode) floor(b *testing.B) func() bool {
	b.Helper()
	var checks []func() bool
	for _, e := range w.bundle.Evidence {
		switch e.Kind {
		case attest.KindSNP:
			a, err := snp.ParseEvidence(e.Body)
			if err != nil {
				b.Fatal(err)
			}
			d := sha512.Sum384(a.Raw[:0x2a0])
			le := func(x []byte) *big.Int { y := slices.Clone(x); slices.Reverse(y); return new(big.Int).SetBytes(y) }
			r, s := le(a.Raw[0x2a0:0x2a0+48]), le(a.Raw[0x2e8:0x2e8+48])
			var vcek *ecdsa.PublicKey
			for _, c := range a.Certs {
				if k, ok := c.PublicKey.(*ecdsa.PublicKey); ok && ecdsa.Verify(k, d[:], r, s) {
					vcek = k
				}
			}
			if vcek == nil {
				b.Fatal("no certificate of the SEV-SNP evidence verifies its report")
			}
			checks = append(checks, func() bool { return ecdsa.Verify(vcek, d[:], r, s) })
		case attest.KindTPM:
			ev, err := tpm.ParseEvidence(e.Body)
			if err != nil {
				b.Fatal(err)
			}
			ak, err := tpm.ParseAK(ev.AK)
			if err != nil {
				b.Fatal(err)
			}
			for _, q := range ev.Quotes {
				pq, err := tpm.ParseQuote(q)
				if err != nil {
					b.Fatal(err)
				}
				// A hash of the quote and one crypto/ecdsa or crypto/rsa call.
				checks = append(checks, func() bool { return pq.VerifySignature(q.Attest, ak) == nil })
			}
		case attest.KindNVGPU:
			ev, err := nvgpu.ParseEvidence(e.Body)
			if err != nil {
				b.Fatal(err)
			}
			rep, err := nvgpu.ParseReport(ev.Report)
			if err != nil {
				b.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(ev.Certs[0])
			if err != nil {
				b.Fatal(err)
			}
			pub := leaf.PublicKey.(*ecdsa.PublicKey)
			sig := rep.Response.Signature
			r, s := new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])
			signed := rep.Signed()
			checks = append(checks, func() bool { d := sha512.Sum384(signed); return ecdsa.Verify(pub, d[:], r, s) })
		}
	}
	p, err := tlog.ParseProof(w.bundle.Release)
	if err != nil {
		b.Fatal(err)
	}
	text, sigs, ok := bytes.Cut(p.Checkpoint, []byte("\n\n"))
	if !ok {
		b.Fatal("checkpoint has no signatures")
	}
	text = append(text, '\n')
	for _, line := range strings.Split(strings.TrimSpace(string(sigs)), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "— "))
		raw, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(raw) < 4+ed25519.SignatureSize {
			b.Fatalf("signature line %q", line)
		}
		pub, msg, sig := w.noteKeys[f[0]], text, raw[4:]
		if len(sig) == 8+ed25519.SignatureSize { // cosignature/v1: time, then signature
			msg = fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", binary.BigEndian.Uint64(sig), text)
			sig = sig[8:]
		}
		checks = append(checks, func() bool { return ed25519.Verify(pub, msg, sig) })
	}
	if len(checks) != 1+2+8+3 {
		b.Fatalf("%d floor checks, want 14 (SNP, 2 TPM quotes, 8 GPUs, log + 2 witnesses)", len(checks))
	}
	all := func() bool {
		for _, c := range checks {
			if !c() {
				return false
			}
		}
		return true
	}
	if !all() {
		b.Fatal("a floor signature does not verify")
	}
	return all
}

// BenchmarkSignatureFloor is the sum of the signature checks that no cache
// can skip, on the whole node's own inputs (see floor).
func BenchmarkSignatureFloor(b *testing.B) {
	f := newWholeNode(b).floor(b)
	for b.Loop() {
		if !f() {
			b.Fatal("verify")
		}
	}
}

// BenchmarkWholeNodeCold appraises the whole node (SEV-SNP, vTPM, 8 GPUs,
// release proof) with a new Appraiser each time: nothing cached.
func BenchmarkWholeNodeCold(b *testing.B) {
	w := newWholeNode(b)
	for b.Loop() {
		w.appraise(b, New())
	}
}

// BenchmarkWholeNodeCached appraises the whole node with the verifiers'
// caches warm (chains, CRLs, RIMs, OCSP, checkpoint) but no appraisal
// cache: what a node's next bundle costs.
func BenchmarkWholeNodeCached(b *testing.B) {
	w := newWholeNode(b)
	a := New()
	a.cache = nil
	w.appraise(b, a)
	for b.Loop() {
		w.appraise(b, a)
	}
}

// BenchmarkWholeNodeHit answers the same appraisal from the appraisal cache.
func BenchmarkWholeNodeHit(b *testing.B) {
	w := newWholeNode(b)
	a := New()
	w.appraise(b, a)
	for b.Loop() {
		w.appraise(b, a)
	}
}

// BenchmarkWholeNodeRatios interleaves the floor, a cold, a cached and a
// hit appraisal in each iteration, timing each, and reports the ratios of
// their medians to the floor's: all four see the same load.
func BenchmarkWholeNodeRatios(b *testing.B) {
	w := newWholeNode(b)
	f := w.floor(b)
	warm := New()
	warm.cache = nil
	w.appraise(b, warm)
	hit := New()
	w.appraise(b, hit)
	var t interleave.Timings
	for b.Loop() {
		t.Time("floor", func() {
			if !f() {
				b.Fatal("verify")
			}
		})
		fresh := New()
		t.Time("cold", func() { w.appraise(b, fresh) })
		t.Time("cached", func() { w.appraise(b, warm) })
		t.Time("hit", func() { w.appraise(b, hit) })
	}
	t.Report(b, "floor")
}
