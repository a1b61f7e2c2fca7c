package tlog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// leafVariants are canonical leaves and near misses of them.
func leafVariants(t testing.TB, f *fixture) [][]byte {
	t.Helper()
	kr := &Record{Schema: Schema, Type: TypeKeyRelease, KeyRelease: &KeyRelease{Model: "sha256:" + strings.Repeat("1", 64),
		BundleDigest: "sha256:" + strings.Repeat("2", 64), NodeKey: HexBytes{1, 2, 3}, Broker: "kb.example", Created: t0}}
	tdx := Template(t0)
	tdx.Release.TEE.TDX = []TDX{{MRTD: make(HexBytes, 48), RTMRs: []HexBytes{make(HexBytes, 48), nil}}}
	leaves := [][]byte{f.leaves[0], f.leaves[1], f.sign(t, f.revRec), f.sign(t, kr), f.sign(t, tdx)}
	var out [][]byte
	for _, l := range leaves {
		s := string(l)
		out = append(out, l,
			[]byte(strings.Replace(s, `"schema"`, `"extra":1,"schema"`, 1)),
			[]byte(strings.Replace(s, `"type":`, `"type":"release","type":`, 1)),
			[]byte(strings.Replace(s, `"type"`, `"Type"`, 1)),
			[]byte(strings.Replace(s, `"type"`, `"typ\u0065"`, 1)),
			[]byte(s+"{}"), []byte(s+" "), []byte(" "+s), []byte(s+"\n"),
			[]byte(strings.Replace(s, `,"type"`, `, "type"`, 1)),
			[]byte(strings.Replace(s, "a5a5", "A5A5", 1)),
			[]byte(strings.Replace(s, Schema, "sworn.dev/record/v2", 1)),
			[]byte(strings.Replace(s, `"publisher"`, `"signature":"","publisher"`, 1)),
			[]byte(s[:strings.Index(s, `,"signature"`)]+"}"),
			[]byte(strings.Replace(s, `"sworn-node"`, `"sworn-nod\u0065"`, 1)),
			[]byte(strings.Replace(s, `:00Z"`, `:00+00:00"`, 1)),
			[]byte(s[:len(s)-1]),
		)
	}
	return out
}

// ParseLeaf's fast path accepts exactly what the strict path accepts, and
// returns the same record.
func TestParseLeafMatchesStrict(t *testing.T) {
	f := newFixture(t)
	for i, l := range leafVariants(t, f) {
		checkLeafEquivalence(t, fmt.Sprint(i), l, []note.Verifier{mustVerifier(t, f.pubV)})
	}
}

func mustVerifier(t testing.TB, v string) note.Verifier {
	t.Helper()
	nv, err := note.NewVerifier(v)
	if err != nil {
		t.Fatal(err)
	}
	return nv
}

func checkLeafEquivalence(t *testing.T, name string, data []byte, pubs []note.Verifier) {
	r1, err1 := ParseLeaf(data)
	r2, err2 := parseLeafStrict(data)
	if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
		t.Fatalf("%s: ParseLeaf: %v; strict: %v", name, err1, err2)
	}
	if _, fast := parseCanonicalLeaf(data); fast && err2 != nil {
		t.Fatalf("%s: fast path accepted what the strict path refuses: %v", name, err2)
	}
	if err1 != nil {
		if _, err := ParseSignedLeaf(data); err == nil || err.Error() != err1.Error() {
			t.Fatalf("%s: ParseSignedLeaf: %v; ParseLeaf: %v", name, err, err1)
		}
		return
	}
	c1, _ := r1.Canonical()
	c2, _ := r2.Canonical()
	if !bytes.Equal(c1, c2) || !bytes.Equal(c1, data) {
		t.Fatalf("%s: records differ", name)
	}
	if err := checkJSON(data); err != nil {
		t.Fatalf("%s: an accepted leaf fails checkJSON: %v", name, err)
	}
	l, err := ParseSignedLeaf(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r1.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.signed, want) {
		t.Fatalf("%s: signed bytes cut from the leaf differ from SignedBytes:\n%s\n%s", name, l.signed, want)
	}
	_, e1 := l.VerifySignature(pubs)
	_, e2 := r1.VerifySignature(pubs)
	if (e1 == nil) != (e2 == nil) {
		t.Fatalf("%s: SignedLeaf.VerifySignature: %v; Record.VerifySignature: %v", name, e1, e2)
	}
}

func TestSignedLeafVerify(t *testing.T) {
	f := newFixture(t)
	pubs := []note.Verifier{mustVerifier(t, f.pubV)}
	l, err := ParseSignedLeaf(f.leaves[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.VerifySignature(pubs); err != nil {
		t.Fatal(err)
	}
	// Another publisher's key: unknown.
	_, ov := mustKey(t, KindPublisher, "other.example")
	if _, err := l.VerifySignature([]note.Verifier{mustVerifier(t, ov)}); err == nil {
		t.Fatal("unknown publisher accepted")
	}
	// Same name, another key: unknown (key hash differs).
	_, sv := mustKey(t, KindPublisher, "publisher.example")
	if _, err := l.VerifySignature([]note.Verifier{mustVerifier(t, sv)}); err == nil {
		t.Fatal("another key of the same name accepted")
	}
	// A re-signed, altered record: the signature must not verify.
	r := Template(t0)
	r.Release.Version = "9.9.9"
	good := f.sign(t, r)
	bad := bytes.Replace(good, []byte(`"9.9.9"`), []byte(`"9.9.8"`), 1)
	lb, err := ParseSignedLeaf(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lb.VerifySignature(pubs); err == nil {
		t.Fatal("altered record verified")
	}
	// A signature of the right length that is not the publisher's.
	r.Signature = bytes.Repeat([]byte{7}, 64)
	forged, err := r.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ParseSignedLeaf(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lf.VerifySignature(pubs); err == nil {
		t.Fatal("forged signature verified")
	}
}

func TestIsKeyID(t *testing.T) {
	f := newFixture(t)
	v := mustVerifier(t, f.pubV)
	id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
	if !isKeyID(id, v) {
		t.Fatal(id)
	}
	for _, bad := range []string{"", v.Name(), id + "0", id[:len(id)-1], strings.ToUpper(id[len(id)-8:]), v.Name() + "-" + id[len(v.Name())+1:],
		"x" + id, strings.Replace(id, "+", "++", 1), v.Name() + "+" + strings.ToUpper(id[len(v.Name())+1:])} {
		if isKeyID(bad, v) && bad != id {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseLeafFastPath(f *testing.F) {
	fx := newFixture(f)
	for _, l := range leafVariants(f, fx) {
		f.Add(l)
	}
	pubs := []note.Verifier{mustVerifier(f, fx.pubV)}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLeafEquivalence(t, "fuzz", data, pubs)
	})
}

func BenchmarkParseAndVerifyLeaf(b *testing.B) {
	f := newFixture(b)
	pubs := []note.Verifier{mustVerifier(b, f.pubV)}
	leaf := f.sign(b, Template(time.Now()))
	b.Run("strict+Record.VerifySignature", func(b *testing.B) {
		for b.Loop() {
			r, err := parseLeafStrict(leaf)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.VerifySignature(pubs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseSignedLeaf+VerifySignature", func(b *testing.B) {
		for b.Loop() {
			l, err := ParseSignedLeaf(leaf)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.VerifySignature(pubs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
