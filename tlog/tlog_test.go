package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

var t0 = time.Now().UTC().Truncate(time.Second)

// fixture is a log, two witnesses and a publisher, all in memory.
type fixture struct {
	origin             string
	logS               note.Signer
	logV               string
	w1, w2             note.Signer
	w1V, w2V           string
	pub                note.Signer
	pubV               string
	pol                *policy.Log
	leaves             [][]byte
	releaseIdx         int
	releaseRec, revRec *Record
}

func mustKey(t testing.TB, kind KeyKind, name string) (string, string) {
	t.Helper()
	s, v, err := GenerateKey(kind, name)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{origin: "log.example/releases"}
	var sk string
	sk, f.logV = mustKey(t, KindLog, f.origin)
	f.logS, _ = note.NewSigner(sk)
	var err error
	sk, f.w1V = mustKey(t, KindWitness, "w1.example")
	if f.w1, err = newCosignerKey(sk); err != nil {
		t.Fatal(err)
	}
	sk, f.w2V = mustKey(t, KindWitness, "w2.example")
	if f.w2, err = newCosignerKey(sk); err != nil {
		t.Fatal(err)
	}
	sk, f.pubV = mustKey(t, KindPublisher, "publisher.example")
	f.pub, _ = note.NewSigner(sk)
	f.pol = &policy.Log{Origin: f.origin, Key: f.logV, Witnesses: []string{f.w1V, f.w2V}, Quorum: 2, Publishers: []string{f.pubV}}
	// Leaves: a filler, the release, and a revocation of another release.
	f.releaseRec = Template(t0.Add(-24 * time.Hour))
	f.revRec = &Record{Schema: Schema, Type: TypeRevocation, Revocation: &Revocation{ReleaseID: "sworn-node", Version: "1.0.0", Reason: "CVE-2026-0001", Created: t0}}
	other := Template(t0.Add(-48 * time.Hour))
	other.Release.Version = "0.9.0"
	f.leaves = [][]byte{f.sign(t, other), f.sign(t, f.releaseRec)}
	f.releaseIdx = 1
	return f
}

func newCosignerKey(sk string) (note.Signer, error) {
	return cosignerFromString(sk)
}

func (f *fixture) sign(t testing.TB, r *Record) []byte {
	t.Helper()
	if err := r.Sign(f.pub); err != nil {
		t.Fatal(err)
	}
	b, err := r.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rootAndPath computes an RFC 6962 root and the inclusion path of leaf i.
func rootAndPath(leaves [][]byte, i int) ([]byte, [][32]byte) {
	h := rfc6962.DefaultHasher
	var rec func(ls [][]byte, i int) ([]byte, [][32]byte)
	rec = func(ls [][]byte, i int) ([]byte, [][32]byte) {
		if len(ls) == 1 {
			return h.HashLeaf(ls[0]), nil
		}
		k := 1
		for k*2 < len(ls) {
			k *= 2
		}
		l, _ := rec(ls[:k], 0)
		r, _ := rec(ls[k:], 0)
		root := h.HashChildren(l, r)
		if i < 0 {
			return root, nil
		}
		if i < k {
			_, p := rec(ls[:k], i)
			return root, append(p, [32]byte(r))
		}
		_, p := rec(ls[k:], i-k)
		return root, append(p, [32]byte(l))
	}
	return rec(leaves, i)
}

// checkpoint signs a checkpoint over leaves with the log key and the given
// cosigners (at time ts).
func (f *fixture) checkpoint(t testing.TB, logS note.Signer, leaves [][]byte, cosigners ...note.Signer) []byte {
	t.Helper()
	root, _ := rootAndPath(leaves, -1)
	body := log.Checkpoint{Origin: f.origin, Size: uint64(len(leaves)), Hash: root}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, append([]note.Signer{logS}, cosigners...)...)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func (f *fixture) proof(t testing.TB, idx int, cp []byte) []byte {
	_, path := rootAndPath(f.leaves, idx)
	return (&Proof{Record: f.leaves[idx], Index: uint64(idx), Hashes: path, Checkpoint: cp}).Marshal()
}

func (f *fixture) goodProof(t testing.TB) []byte {
	return f.proof(t, f.releaseIdx, f.checkpoint(t, f.logS, f.leaves, f.w1, f.w2))
}

func (f *fixture) claims() *Claims {
	r := f.releaseRec.Release
	c := &Claims{SNPMeasurement: r.TEE.SNPMeasurements[0], Components: map[string]string{"uki": r.Components[0].Digest, "node": r.Components[1].Digest},
		PCRs: r.PCRs, Models: []string{r.Models[0].Digest}, GPUs: *r.GPU.Count}
	for range c.GPUs {
		c.GPUDrivers = append(c.GPUDrivers, r.GPU.DriverVersions[0])
	}
	return c
}

func TestAppraiseReleaseOK(t *testing.T) {
	f := newFixture(t)
	var l attest.Ledger
	s := AppraiseRelease(f.goodProof(t), f.pol, t0, f.claims(), &l, nil)
	if s.Verdict != attest.Affirming {
		t.Fatalf("verdict %s: %+v", s.Verdict, s.Steps)
	}
	for _, id := range []string{StepSignature, StepInclusion, StepWitnesses, StepMatch, StepRevocation} {
		if st := s.Step(id); st == nil || st.Status != attest.Pass {
			t.Errorf("step %s: %+v", id, st)
		}
	}
	if len(l.Verified) < 4 {
		t.Errorf("ledger: %+v", l)
	}
	// Without claims, match is an optional skip and the verdict stays affirming.
	s = AppraiseRelease(f.goodProof(t), f.pol, t0, nil, nil, nil)
	if s.Verdict != attest.Affirming || s.Step(StepMatch).Status != attest.Skip {
		t.Fatalf("no claims: %s %+v", s.Verdict, s.Steps)
	}
}

func TestAppraiseReleaseNegative(t *testing.T) {
	f := newFixture(t)
	good := f.goodProof(t)
	replace := func(b []byte, old, new string) []byte {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q not found", old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
	p, _ := ParseProof(good)
	otherLog, _ := note.NewSigner(func() string { s, _ := mustKey(t, KindLog, f.origin); return s }())
	otherPub, _ := note.NewSigner(func() string { s, _ := mustKey(t, KindPublisher, "mallory"); return s }())
	cpBody, _, _ := bytes.Cut(p.Checkpoint, []byte("\n\n"))
	lines := strings.Split(string(cpBody), "\n")

	tests := []struct {
		name   string
		proof  func() []byte
		pol    func(*policy.Log)
		at     time.Time
		claims *Claims
		revs   func() [][]byte
		step   string
	}{
		{name: "garbage", proof: func() []byte { return []byte("not a proof") }, step: StepSignature},
		{name: "tampered record", proof: func() []byte {
			q := *p
			q.Record = replace(q.Record, "1.0.0", "1.0.1")
			return q.Marshal()
		}, step: StepSignature},
		{name: "unknown publisher", proof: func() []byte {
			r := Template(t0.Add(-time.Hour))
			r.Sign(otherPub)
			leaf, _ := r.Canonical()
			f2 := *f
			f2.leaves = [][]byte{leaf}
			return f2.proof(t, 0, f2.checkpoint(t, f.logS, f2.leaves, f.w1, f.w2))
		}, step: StepSignature},
		{name: "tampered proof hash", proof: func() []byte {
			q := *p
			q.Hashes = append([][32]byte{}, q.Hashes...)
			q.Hashes[0][0] ^= 1
			return q.Marshal()
		}, step: StepInclusion},
		{name: "wrong index", proof: func() []byte { q := *p; q.Index = 0; return q.Marshal() }, step: StepInclusion},
		{name: "tampered checkpoint", proof: func() []byte {
			q := *p
			h := sha256.Sum256([]byte("x"))
			q.Checkpoint = replace(q.Checkpoint, lines[2], base64.StdEncoding.EncodeToString(h[:]))
			return q.Marshal()
		}, step: StepInclusion},
		{name: "checkpoint from unknown key", proof: func() []byte {
			return f.proof(t, f.releaseIdx, f.checkpoint(t, otherLog, f.leaves, f.w1, f.w2))
		}, step: StepInclusion},
		{name: "tampered cosignature", proof: func() []byte {
			// Flip a bit inside the last signature line (a witness's).
			q := *p
			cp := bytes.Clone(q.Checkpoint)
			i := bytes.LastIndex(cp[:len(cp)-1], []byte("\n")) + 1
			sig := bytes.Fields(cp[i:])[2]
			raw, err := base64.StdEncoding.DecodeString(string(sig))
			if err != nil {
				t.Fatal(err)
			}
			raw[len(raw)-1] ^= 1
			q.Checkpoint = append(cp[:i+bytes.Index(cp[i:], sig)], []byte(base64.StdEncoding.EncodeToString(raw)+"\n")...)
			return q.Marshal()
		}, step: StepWitnesses},
		{name: "one of two cosignatures", proof: func() []byte {
			return f.proof(t, f.releaseIdx, f.checkpoint(t, f.logS, f.leaves, f.w1))
		}, step: StepWitnesses},
		{name: "no cosignatures", proof: func() []byte {
			return f.proof(t, f.releaseIdx, f.checkpoint(t, f.logS, f.leaves))
		}, step: StepWitnesses},
		{name: "stale cosignatures", pol: func(l *policy.Log) { l.MaxCheckpointAge = policy.Duration(time.Hour) },
			at: time.Now().Add(2 * time.Hour), step: StepWitnesses},
		{name: "cosignatures from the future", at: time.Now().Add(-time.Hour).Truncate(time.Second), step: StepWitnesses},
		{name: "revoked by policy", pol: func(l *policy.Log) { l.Revoked = []string{"sworn-node@1.0.0"} }, step: StepRevocation},
		{name: "revoked in the log", revs: func() [][]byte {
			f2 := *f
			f2.leaves = append(append([][]byte{}, f.leaves...), f.sign(t, f.revRec))
			return [][]byte{f2.proof(t, 2, f2.checkpoint(t, f.logS, f2.leaves, f.w1, f.w2))}
		}, step: StepRevocation},
		{name: "expired", at: f.releaseRec.Release.NotAfter.Add(time.Second), step: StepRevocation},
		{name: "claims mismatch", claims: &Claims{SNPMeasurement: make([]byte, 48)}, step: StepMatch},
		{name: "claims empty", claims: &Claims{}, step: StepMatch},
		{name: "model not allowed", claims: &Claims{Models: []string{"sha256:" + strings.Repeat("0", 64)}}, step: StepMatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pb := good
			if tc.proof != nil {
				pb = tc.proof()
			}
			pol := *f.pol
			if tc.pol != nil {
				tc.pol(&pol)
			}
			at := t0
			if !tc.at.IsZero() {
				at = tc.at
				if at.After(f.releaseRec.Release.NotAfter) && tc.step != StepRevocation {
					t.Skip("clock beyond the template's validity")
				}
			}
			claims := f.claims()
			if tc.claims != nil {
				claims = tc.claims
			}
			var opts *AppraiseOptions
			if tc.revs != nil {
				opts = &AppraiseOptions{Revocations: tc.revs()}
			}
			s := AppraiseRelease(pb, &pol, at, claims, nil, opts)
			if s.Verdict != attest.Contraindicated {
				t.Errorf("verdict %s, want contraindicated", s.Verdict)
			}
			ff := s.FirstFailure()
			if ff == nil || ff.ID != tc.step {
				t.Fatalf("first failure %+v, want step %s; steps %+v", ff, tc.step, s.Steps)
			}
			t.Logf("%s: %s", ff.ID, ff.Detail)
		})
	}
}

func TestSplitView(t *testing.T) {
	f := newFixture(t)
	st, err := OpenState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := &AppraiseOptions{State: st}
	if s := AppraiseRelease(f.goodProof(t), f.pol, t0, f.claims(), nil, opts); s.Verdict != attest.Affirming {
		t.Fatalf("first: %+v", s.Steps)
	}
	// A second history of the same size, signed by the same key.
	f2 := *f
	f2.leaves = [][]byte{f.sign(t, Template(t0.Add(-time.Hour))), f.leaves[1]}
	forked := f2.proof(t, 1, f2.checkpoint(t, f.logS, f2.leaves, f.w1, f.w2))
	s := AppraiseRelease(forked, f.pol, t0, f.claims(), nil, opts)
	ff := s.FirstFailure()
	if ff == nil || ff.ID != StepConsistency || !strings.Contains(ff.Detail, "SPLIT VIEW") || !strings.Contains(ff.Detail, "previously seen checkpoint") {
		t.Fatalf("split view not detected: %+v", s.Steps)
	}
}

func TestQuorumZeroWarns(t *testing.T) {
	f := newFixture(t)
	pol := *f.pol
	pol.Quorum = 0
	var l attest.Ledger
	s := AppraiseRelease(f.proof(t, f.releaseIdx, f.checkpoint(t, f.logS, f.leaves)), &pol, t0, f.claims(), &l, nil)
	if s.Verdict != attest.Warning || s.Step(StepWitnesses).Status != attest.Warn {
		t.Fatalf("%s %+v", s.Verdict, s.Steps)
	}
	if len(l.Assumed) == 0 {
		t.Fatal("ledger should name the assumption")
	}
	if s := AppraiseRelease(f.goodProof(t), nil, t0, nil, nil, nil); s.Verdict == attest.Affirming {
		t.Fatal("no policy must not affirm")
	}
}

func TestRecordStrict(t *testing.T) {
	f := newFixture(t)
	leaf := f.leaves[1]
	if _, err := ParseLeaf(leaf); err != nil {
		t.Fatal(err)
	}
	bad := []struct{ name, data string }{
		{"unknown field", strings.Replace(string(leaf), `"schema"`, `"extra":1,"schema"`, 1)},
		{"duplicate field", strings.Replace(string(leaf), `"type":"release"`, `"type":"release","type":"release"`, 1)},
		{"case variant", strings.Replace(string(leaf), `"type"`, `"Type"`, 1)},
		{"trailing data", string(leaf) + "{}"},
		{"wrong schema", strings.Replace(string(leaf), Schema, "sworn.dev/record/v2", 1)},
		{"uppercase hex", strings.Replace(string(leaf), "a5a5", "A5A5", 1)},
		{"bad digest", strings.Replace(string(leaf), "sha256:5555", "sha256:555", 1)},
		{"unknown component", strings.Replace(string(leaf), `"uki"`, `"bootrom"`, 1)},
		{"too large", `{"schema":"` + strings.Repeat("x", MaxRecordSize) + `"}`},
		{"deep", strings.Repeat("[", 100)},
	}
	for _, tc := range bad {
		if _, err := ParseRecord([]byte(tc.data)); err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	// Pretty-printed input is accepted by ParseRecord but is not a leaf.
	var buf bytes.Buffer
	buf.WriteString(strings.Replace(string(leaf), `,"type"`, `, "type"`, 1))
	if _, err := ParseRecord(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseLeaf(buf.Bytes()); err == nil {
		t.Fatal("non-canonical leaf accepted")
	}
}

func TestProofFormat(t *testing.T) {
	f := newFixture(t)
	good := f.goodProof(t)
	if _, err := ParseProof(good); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]string{
		"no header":      strings.Replace(string(good), "c2sp.org/tlog-proof@v1\n", "", 1),
		"no extra":       strings.Join(append(strings.SplitN(string(good), "\n", 3)[:1], strings.SplitN(string(good), "\n", 3)[2]), "\n"),
		"index sign":     strings.Replace(string(good), "index 1", "index +1", 1),
		"index leading0": strings.Replace(string(good), "index 1", "index 01", 1),
		"no checkpoint":  string(good[:bytes.Index(good, []byte("\n\n"))+2]),
		"crlf":           strings.ReplaceAll(string(good), "\n", "\r\n"),
		"huge":           string(good) + strings.Repeat("x", MaxProofSize),
	} {
		if _, err := ParseProof([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKeysAndFiles(t *testing.T) {
	if _, _, err := GenerateKey("bogus", "x"); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, _, err := GenerateKey(KindLog, "a b"); err == nil {
		t.Error("bad name accepted")
	}
	s, v := mustKey(t, KindWitness, "w")
	if _, err := ParseWitnessVerifier(v); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "PRIVATE+KEY+w+") {
		t.Fatal(s[:10])
	}
}
