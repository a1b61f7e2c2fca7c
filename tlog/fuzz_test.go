package tlog

import (
	"bytes"
	"testing"
	"time"
)

func FuzzParseRecord(f *testing.F) {
	fx := newFixture(f)
	for _, l := range fx.leaves {
		f.Add(l)
	}
	f.Add([]byte(`{"schema":"sworn.dev/record/v1","type":"revocation","revocation":{"release_id":"a","version":"1","reason":"","created":"2026-01-01T00:00:00Z"},"publisher":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			return
		}
		c, err := r.Canonical()
		if err != nil {
			return
		}
		r2, err := ParseLeaf(c)
		if err != nil && len(r.Signature) > 0 {
			t.Fatalf("canonical form of a valid record does not parse: %v", err)
		}
		if r2 != nil {
			c2, _ := r2.Canonical()
			if !bytes.Equal(c, c2) {
				t.Fatal("canonical encoding is not stable")
			}
		}
	})
}

func FuzzParseProof(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.goodProof(f))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nextra eA==\nindex 0\n\nx\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProof(data)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Marshal(), data) {
			t.Fatal("accepted a non-canonical proof")
		}
	})
}

func FuzzVerifyCheckpoint(f *testing.F) {
	fx := newFixture(f)
	v, err := NewVerifier(fx.pol)
	if err != nil {
		f.Fatal(err)
	}
	good := fx.checkpoint(f, fx.logS, fx.leaves, fx.w1, fx.w2)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("\n2\n"), []byte("\n3\n"), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := v.VerifyCheckpoint(data)
		if err != nil {
			return
		}
		v.CheckQuorum(cp, time.Now())
		if cp.Origin != fx.origin {
			t.Fatalf("accepted a checkpoint of origin %q", cp.Origin)
		}
	})
}

// FuzzAppraiseRelease feeds arbitrary bytes to the whole release appraisal:
// it must never panic nor affirm.
func FuzzAppraiseRelease(f *testing.F) {
	fx := newFixture(f)
	good := fx.goodProof(f)
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		s := AppraiseRelease(data, fx.pol, t0, fx.claims(), nil, nil)
		if s.Verdict != "affirming" {
			return
		}
		// Only the good record at its index may be affirmed (the checkpoint
		// may carry extra, unknown signature lines).
		p, err := ParseProof(data)
		if err != nil || !bytes.Equal(p.Record, fx.leaves[fx.releaseIdx]) || p.Index != uint64(fx.releaseIdx) {
			t.Fatalf("affirmed a modified proof")
		}
	})
}
