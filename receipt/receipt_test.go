package receipt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/tlog"
)

var (
	bootAt   = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	signedAt = bootAt.Add(time.Hour)
	verifyAt = bootAt.Add(30 * 24 * time.Hour) // receipts verify long after the bundle's epoch
	request  = []byte("\x00\x04POST\x05https\x09localhost\x14/v1/chat/completions")
	content  = []byte(`{"choices":[{"message":{"content":"hello"}}]}`)
	model    = sha256.Sum256([]byte("model manifest"))
)

// node boots a simulated node: SEV-SNP with its vTPM, no GPU.
func node(t testing.TB, seed uint64, at time.Time, release []byte) *sim.Node {
	t.Helper()
	n, err := sim.Boot(sim.Options{Seed: seed, At: at, Release: release})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// simPolicy is the simulated starter policy (SEV-SNP and vTPM, the
// simulated node's UKI), pinning log when it is set.
func simPolicy(t testing.TB, log *policy.StarterLog) *policy.Policy {
	t.Helper()
	ref, err := sim.Reference()
	if err != nil {
		t.Fatal(err)
	}
	data := policy.Starter(policy.StarterOptions{
		Simulated: true, SNPMeasurements: []string{hex.EncodeToString(snp.SimMeasurement[:])}, Log: log,
		UKI: &policy.StarterUKI{
			Name: "sim", Cmdline: ref.Cmdline, Digest: hex.EncodeToString(ref.UKIDigest[tpm.SHA384]),
			PCR11: hex.EncodeToString(ref.PCR11[tpm.SHA384]), NodeSoftware: hex.EncodeToString(ref.NodeSoftware),
		},
	})
	p, err := policy.Parse("sim", data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func options(p *policy.Policy, at time.Time) attest.Options {
	return attest.Options{At: at, Policy: p, Verifiers: []attest.Verifier{snp.NewVerifier(), tpm.NewVerifier(), nvgpu.NewVerifier(nil)}, Release: tlog.BundleVerifier{}}
}

// payload returns the payload a node signs for the test's exchange.
func payload(t testing.TB, n *sim.Node, at time.Time) *Payload {
	t.Helper()
	p := &Payload{
		Version: Version, Request: RequestDigest(request), Response: ResponseDigest(200, content), Model: model,
		Nonce: []byte("client nonce"), Time: at.Unix(), Tokens: Tokens{Prompt: 12, Completion: 5},
		Suite: Suite{KEM: 0x647a, KDF: 1, AEAD: 1, Candidates: 1}, Status: 200,
	}
	if err := p.SetBundle(n.Bundle); err != nil {
		t.Fatal(err)
	}
	return p
}

func sign(t testing.TB, key ed25519.PrivateKey, p *Payload) []byte {
	t.Helper()
	b, err := Sign(key, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exchange() *Exchange {
	return &Exchange{Request: request, Response: &Response{Status: 200, Content: content}}
}

// step returns the status of a receipt step.
func step(t *testing.T, r *attest.Result, id string) attest.Status {
	t.Helper()
	if r.Receipt == nil {
		t.Fatalf("no receipt section")
	}
	st := r.Receipt.Step(id)
	if st == nil {
		t.Fatalf("no step %s in %+v", id, r.Receipt.Steps)
	}
	return st.Status
}

func TestRoundTrip(t *testing.T) {
	n := node(t, 1, bootAt, nil)
	p := payload(t, n, signedAt)
	data := sign(t, n.ReceiptKey, p)
	if len(data) > 400 {
		t.Errorf("receipt is %d bytes", len(data))
	}
	r, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Payload.Nonce == nil || !bytes.Equal(r.Payload.Nonce, p.Nonce) || r.Payload.Tokens != p.Tokens || r.Payload.Suite != p.Suite || r.Payload.Bundle != p.Bundle {
		t.Fatalf("payload changed: %+v", r.Payload)
	}
	if err := r.Verify(n.ReceiptKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	res := Appraise(t.Context(), data, n.Bundle, options(simPolicy(t, nil), verifyAt), exchange())
	if res.Verdict != attest.Affirming {
		var b strings.Builder
		res.WriteText(&b)
		t.Fatalf("verdict %s\n%s", res.Verdict, b.String())
	}
	for _, id := range []string{StepParse, StepSignature, StepTime, StepBundle, StepRequest, StepResponse} {
		if st := step(t, res, id); st != attest.Pass {
			t.Errorf("%s: %s", id, st)
		}
	}
	if !res.At.Equal(signedAt) || res.Receipt.Claims["verified_at"] != attest.FormatAt(verifyAt) {
		t.Errorf("appraised at %s, claims %v: the bundle is appraised at the receipt's time", res.At, res.Receipt.Claims)
	}
	if st := step(t, res, StepRelease); st != attest.Skip {
		t.Errorf("release without a proof: %s", st)
	}
	for _, id := range []string{"receipt.node", "receipt.request", "receipt.response"} {
		if !hasEntry(res.Ledger.Verified, id) {
			t.Errorf("ledger does not verify %s: %+v", id, res.Ledger.Verified)
		}
	}
	for _, id := range []string{"receipt.code", "receipt.client", "receipt.model"} {
		if !hasEntry(res.Ledger.Assumed, id) {
			t.Errorf("ledger does not assume %s: %+v", id, res.Ledger.Assumed)
		}
	}

	// Without the plaintexts, the receipt still affirms and says what it
	// could not check.
	res = Appraise(t.Context(), data, n.Bundle, options(simPolicy(t, nil), verifyAt), nil)
	if res.Verdict != attest.Affirming || step(t, res, StepRequest) != attest.Skip || !hasEntry(res.Ledger.Assumed, "receipt.response.unchecked") {
		t.Fatalf("without plaintexts: %s %+v", res.Verdict, res.Receipt.Steps)
	}
}

func hasEntry(es []attest.LedgerEntry, id string) bool {
	for _, e := range es {
		if e.ID == id {
			return true
		}
	}
	return false
}

func TestStreamingDigest(t *testing.T) {
	h := NewResponseHasher(200)
	for _, c := range bytes.SplitAfter(content, []byte(",")) {
		h.Write(c)
	}
	if h.Sum() != ResponseDigest(200, content) {
		t.Fatal("streamed digest differs")
	}
	if ResponseDigest(201, content) == ResponseDigest(200, content) {
		t.Fatal("status not in the digest")
	}
	want := sha256.Sum256(append([]byte("sworn-response-v1\x00\xc8"), content...))
	if ResponseDigest(200, content) != want {
		t.Fatal("response digest is not SHA-256(domain ‖ uint16 status ‖ content)")
	}
	if RequestDigest(request) != sha256.Sum256(request) {
		t.Fatal("request digest")
	}
}

// TestFlippedByte flips every bit of every byte: the receipt never verifies.
func TestFlippedByte(t *testing.T) {
	n := node(t, 1, bootAt, nil)
	data := sign(t, n.ReceiptKey, payload(t, n, signedAt))
	pub := n.ReceiptKey.Public().(ed25519.PublicKey)
	for i := range data {
		for bit := range 8 {
			bad := bytes.Clone(data)
			bad[i] ^= 1 << bit
			r, err := Parse(bad)
			if err == nil {
				err = r.Verify(pub)
			}
			if err == nil {
				t.Fatalf("byte %d bit %d flipped: the receipt still verifies", i, bit)
			}
		}
	}
	// Through Appraise too (one flip in the payload, one in the signature).
	for _, i := range []int{len(data) / 2, len(data) - 1} {
		bad := bytes.Clone(data)
		bad[i] ^= 1
		res := Appraise(t.Context(), bad, n.Bundle, options(simPolicy(t, nil), verifyAt), exchange())
		if res.Verdict != attest.Contraindicated {
			t.Fatalf("byte %d flipped: %s", i, res.Verdict)
		}
	}
}

func TestNegative(t *testing.T) {
	n := node(t, 1, bootAt, nil)
	other := node(t, 2, bootAt, nil)
	pol := simPolicy(t, nil)
	good := sign(t, n.ReceiptKey, payload(t, n, signedAt))
	otherKey := payload(t, other, signedAt)

	// The same node (same keys) after a reboot: another bundle.
	rebooted := node(t, 1, bootAt.Add(-30*time.Minute), nil)

	for _, c := range []struct {
		name    string
		receipt []byte
		bundle  *attest.Bundle
		ex      *Exchange
		at      time.Time
		step    string
	}{
		{"signed by another node's key", sign(t, other.ReceiptKey, otherKey), n.Bundle, exchange(), verifyAt, StepSignature},
		{"bundle with another receipt key", good, other.Bundle, exchange(), verifyAt, StepSignature},
		{"another bundle of the same node", good, rebooted.Bundle, exchange(), verifyAt, StepBundle},
		{"response altered", good, n.Bundle, &Exchange{Request: request, Response: &Response{Status: 200, Content: append(bytes.Clone(content), ' ')}}, verifyAt, StepResponse},
		{"response status differs", good, n.Bundle, &Exchange{Request: request, Response: &Response{Status: 500, Content: content}}, verifyAt, StepResponse},
		{"another request", good, n.Bundle, &Exchange{Request: []byte("another request"), Response: &Response{Status: 200, Content: content}}, verifyAt, StepRequest},
		{"receipt from the future", good, n.Bundle, exchange(), signedAt.Add(-time.Hour), StepTime},
		{"no verification time", good, n.Bundle, exchange(), time.Time{}, StepTime},
		{"no bundle", good, nil, exchange(), verifyAt, StepParse},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := Appraise(t.Context(), c.receipt, c.bundle, options(pol, c.at), c.ex)
			if res.Verdict != attest.Contraindicated || step(t, res, c.step) != attest.Fail {
				t.Fatalf("verdict %s, %s: %+v", res.Verdict, c.step, res.Receipt.Steps)
			}
			if f := res.Receipt.FirstFailure(); f == nil || f.ID != c.step {
				t.Fatalf("first failure %+v, want %s", f, c.step)
			}
		})
	}

	// A receipt signed after the bundle's epoch: the bundle, appraised at
	// the receipt's time, is not fresh.
	late := sign(t, n.ReceiptKey, payload(t, n, bootAt.Add(sim.DefaultEpoch+time.Hour)))
	res := Appraise(t.Context(), late, n.Bundle, options(pol, verifyAt), exchange())
	if res.Verdict != attest.Contraindicated || res.Bundle.Step("bundle.freshness").Status != attest.Fail {
		t.Fatalf("receipt after the epoch: %s %+v", res.Verdict, res.Bundle.Steps)
	}
}

// encode signs an arbitrary payload encoding with the node's key, as Sign
// would, so the strict parsing of the payload can be tested.
func encode(t *testing.T, key ed25519.PrivateKey, payload []byte) []byte {
	t.Helper()
	p := &Payload{}
	// Sign a valid payload, then swap its bytes: the signature no longer
	// matters, Parse refuses before.
	data := sign(t, key, fill(t, key, p))
	var msg [4]cbor.RawMessage
	var tag cbor.RawTag
	if err := cbor.Unmarshal(data, &tag); err != nil {
		t.Fatal(err)
	}
	if err := cbor.Unmarshal(tag.Content, &msg); err != nil {
		t.Fatal(err)
	}
	pl, _ := cbor.Marshal(payload)
	msg[2] = pl
	out, err := cbor.Marshal(cbor.Tag{Number: 18, Content: msg})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fill(t *testing.T, key ed25519.PrivateKey, p *Payload) *Payload {
	*p = Payload{Version: Version, NodeKey: KeyID(key.Public().(ed25519.PublicKey)), Time: signedAt.Unix(), Status: 200, Suite: Suite{KEM: 0x20, KDF: 1, AEAD: 1, Candidates: 1}}
	return p
}

func TestStrictParse(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	var p Payload
	valid, err := attest.MarshalCBOR(fill(t, key, &p))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(encode(t, key, valid)); err != nil {
		t.Fatalf("the test's re-encoding is itself refused: %v", err)
	}
	mapOf := func(edit func(m map[uint]any)) []byte {
		var m map[uint]any
		if err := cbor.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := attest.MarshalCBOR(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A non-deterministic encoding of the valid payload: version 1 as a
	// two-byte integer (0x18 0x01) instead of 0x01.
	long := bytes.Clone(valid)
	if long[1] != 0x01 || long[2] != 0x01 {
		t.Fatalf("payload does not start with key 1, version 1: %x", long[:3])
	}
	long = append([]byte{long[0], 0x01, 0x18, 0x01}, long[3:]...)

	for _, c := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"wrong version", mapOf(func(m map[uint]any) { m[1] = 2 }), "version 2 is not supported"},
		{"unknown field", mapOf(func(m map[uint]any) { m[99] = 1 }), "malformed"},
		{"non-deterministic CBOR", long, "deterministic"},
		{"short digest", mapOf(func(m map[uint]any) { m[2] = []byte{1, 2, 3} }), "32-byte CBOR byte string"},
		{"status out of range", mapOf(func(m map[uint]any) { m[12] = 99 }), "status"},
		{"empty nonce", mapOf(func(m map[uint]any) { m[8] = []byte{} }), "deterministic"},
		{"no candidates", mapOf(func(m map[uint]any) { m[11] = map[uint]any{1: 0x20, 2: 1, 3: 1, 4: 0} }), "candidate"},
		{"another kid in the payload", mapOf(func(m map[uint]any) { m[7] = make([]byte, 32) }), "kid"},
		{"not a map", []byte{0x01}, "not a CBOR map"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(encode(t, key, c.payload))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}

	good := sign(t, key, fill(t, key, &p))
	big := append(bytes.Clone(good), make([]byte, MaxSize)...)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"oversized", big, "the limit is 4096"},
		{"trailing bytes", append(bytes.Clone(good), 0), "well-formed"},
		{"untagged", good[1:], "tagged COSE_Sign1"},
		{"empty", nil, "tagged COSE_Sign1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.data); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := Sign(key, &Payload{Version: 2}); err == nil {
		t.Fatal("Sign accepted version 2")
	}
	other := fill(t, key, &Payload{})
	other.NodeKey[0] ^= 1
	if _, err := Sign(key, other); err == nil {
		t.Fatal("Sign accepted a payload naming another key")
	}
}

// TestHeaders refuses every protected header but the one Sign writes, and
// any unprotected header.
func TestHeaders(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	good := sign(t, key, fill(t, key, &Payload{}))
	var tag cbor.RawTag
	cbor.Unmarshal(good, &tag)
	var msg [4]cbor.RawMessage
	cbor.Unmarshal(tag.Content, &msg)
	var kid []byte
	var hdr map[int]any
	var raw []byte
	cbor.Unmarshal(msg[0], &raw)
	cbor.Unmarshal(raw, &hdr)
	kid = hdr[4].([]byte)
	with := func(i int, v any) []byte {
		m := msg
		b, _ := attest.MarshalCBOR(v)
		if i == 0 {
			b, _ = cbor.Marshal(b)
		}
		m[i] = b
		out, _ := cbor.Marshal(cbor.Tag{Number: 18, Content: m})
		return out
	}
	for name, data := range map[string][]byte{
		"alg ES256":           with(0, map[int]any{1: -7, 3: ContentType, 4: kid}),
		"other content type":  with(0, map[int]any{1: -8, 3: "application/cbor", 4: kid}),
		"extra header":        with(0, map[int]any{1: -8, 3: ContentType, 4: kid, 99: 1}),
		"short kid":           with(0, map[int]any{1: -8, 3: ContentType, 4: kid[:16]}),
		"unprotected header":  with(1, map[int]any{4: kid}),
		"short signature":     with(3, make([]byte, 63)),
		"protected not bytes": with(0, 7),
	} {
		if _, err := Parse(data); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// testLog is a release log with one witness, in memory.
type testLog struct {
	origin      string
	logS, witS  note.Signer
	pubS        note.Signer
	starter     *policy.StarterLog
	proof, leaf []byte
}

func newTestLog(t *testing.T, models ...tlog.Component) *testLog {
	t.Helper()
	l := &testLog{origin: "log.receipt.test"}
	gen := func(kind tlog.KeyKind, name string) (string, string) {
		s, v, err := tlog.GenerateKey(kind, name)
		if err != nil {
			t.Fatal(err)
		}
		return s, v
	}
	ls, lv := gen(tlog.KindLog, l.origin)
	ws, wv := gen(tlog.KindWitness, "w.receipt.test")
	ps, pv := gen(tlog.KindPublisher, "ci.receipt.test")
	l.logS, _ = note.NewSigner(ls)
	l.pubS, _ = note.NewSigner(ps)
	var err error
	if l.witS, err = tlog.NewCosignerFromKey(ws); err != nil {
		t.Fatal(err)
	}
	l.starter = &policy.StarterLog{Origin: l.origin, Key: lv, Witnesses: []string{wv}, Quorum: 1, Publishers: []string{pv}}
	rec, err := sim.ReleaseRecord("1.0.0", time.Now().Add(-48*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	rec.Release.Models = models
	if err := rec.Sign(l.pubS); err != nil {
		t.Fatal(err)
	}
	if l.leaf, err = rec.Canonical(); err != nil {
		t.Fatal(err)
	}
	lh := LeafHash(l.leaf)
	body := log.Checkpoint{Origin: l.origin, Size: 1, Hash: lh[:]}.Marshal()
	cp, err := note.Sign(&note.Note{Text: string(body)}, l.logS, l.witS)
	if err != nil {
		t.Fatal(err)
	}
	l.proof = (&tlog.Proof{Record: l.leaf, Index: 0, Checkpoint: cp}).Marshal()
	return l
}

func TestRelease(t *testing.T) {
	// Cosignatures carry the wall-clock time: boot and sign around now.
	now := time.Now().UTC().Truncate(time.Second)
	lg := newTestLog(t, tlog.Component{Name: "test-model", Digest: "sha256:" + hex.EncodeToString(model[:])})
	n := node(t, 1, now.Add(-time.Hour), lg.proof)
	pol := simPolicy(t, lg.starter)
	p := payload(t, n, now)
	if p.Release == nil || p.Release.Origin != lg.origin || p.Release.Index != 0 || p.Release.LeafHash != LeafHash(lg.leaf) {
		t.Fatalf("release %+v", p.Release)
	}
	res := Appraise(t.Context(), sign(t, n.ReceiptKey, p), n.Bundle, options(pol, now.Add(time.Minute)), exchange())
	if res.Verdict != attest.Affirming {
		var b strings.Builder
		res.WriteText(&b)
		t.Fatalf("verdict %s\n%s", res.Verdict, b.String())
	}
	if step(t, res, StepRelease) != attest.Pass || step(t, res, StepModel) != attest.Pass || !hasEntry(res.Ledger.Verified, "receipt.model") {
		t.Fatalf("%+v", res.Receipt.Steps)
	}

	for name, edit := range map[string]func(p *Payload){
		"another entry":   func(p *Payload) { p.Release.Index = 7 },
		"another leaf":    func(p *Payload) { p.Release.LeafHash[0] ^= 1 },
		"another log":     func(p *Payload) { p.Release.Origin = "log.elsewhere" },
		"no release":      func(p *Payload) { p.Release = nil },
		"unlisted model":  func(p *Payload) { p.Model[0] ^= 1 },
		"release, no log": nil,
	} {
		t.Run(name, func(t *testing.T) {
			q := payload(t, n, now)
			b, want := n.Bundle, StepRelease
			if edit != nil {
				edit(q)
			} else {
				b = node(t, 1, now.Add(-time.Hour), nil).Bundle
				q.Bundle, _ = b.Digest()
			}
			if name == "unlisted model" {
				want = StepModel
			}
			res := Appraise(t.Context(), sign(t, n.ReceiptKey, q), b, options(pol, now.Add(time.Minute)), exchange())
			if res.Verdict != attest.Contraindicated || step(t, res, want) != attest.Fail {
				t.Fatalf("verdict %s: %+v", res.Verdict, res.Receipt.Steps)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	p := &Payload{Version: Version, NodeKey: KeyID(key.Public().(ed25519.PublicKey)), Time: 1, Status: 200, Nonce: []byte{1},
		Release: &Release{Origin: "log.test", Index: 3}, Suite: Suite{KEM: 0x20, KDF: 1, AEAD: 1, Candidates: 2}}
	good, err := Sign(key, p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		// What parses is canonical: signing its payload again gives the
		// same payload bytes, and it is within bounds.
		enc, err := attest.MarshalCBOR(&r.Payload)
		if err != nil || !bytes.Equal(enc, r.payload) || len(data) > MaxSize {
			t.Fatalf("parsed receipt is not canonical")
		}
		r.Verify(key.Public().(ed25519.PublicKey))
	})
}

// TestVector pins the encoding byte for byte: Ed25519 is deterministic, so
// the receipt of a fixed key and payload never changes (docs/receipt.md).
func TestVector(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	p := &Payload{Version: 1, NodeKey: KeyID(key.Public().(ed25519.PublicKey)), Time: 1795740000, Status: 200,
		Release: &Release{Origin: "log.example", Index: 5}, Nonce: []byte{0xab}, Tokens: Tokens{12, 5}, Suite: Suite{0x647a, 1, 1, 1}}
	got := sign(t, key, p)
	const want = "d2845847a3012703781e6170706c69636174696f6e2f73776f726e2d726563656970742b63626f72045820139e3940e64b5491722088d9a0d741628fc826e09475d341a780acde3c4b8070a0590104ac010102582000000000000000000000000000000000000000000000000000000000000000000358200000000000000000000000000000000000000000000000000000000000000000045820000000000000000000000000000000000000000000000000000000000000000005a3016b6c6f672e6578616d706c65020503582000000000000000000000000000000000000000000000000000000000000000000658200000000000000000000000000000000000000000000000000000000000000000075820139e3940e64b5491722088d9a0d741628fc826e09475d341a780acde3c4b80700841ab091a6b08d1600aa2010c02050ba40119647a0201030104010c18c8"
	const sig = "5840791ca30c3bc1f783bb55dc226cf62fc9b853819455aaf9040ee64c33429989ffb8a8f22906bd610f239d5cf12a432c955e8bf4003ee8d452a91d08a430549d0f"
	if h := hex.EncodeToString(got); h != want+sig {
		t.Fatalf("receipt encoding changed:\n%s", h)
	}
}
