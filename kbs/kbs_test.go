package kbs_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/up"
	"github.com/sworn-dev/sworn/wire"
)

// stack starts sworn up (whose nodes already obtained their key through
// its broker) and returns it with what a second broker needs.
type stack struct {
	*up.Stack
	dir    string
	policy *policy.Policy
	proof  []byte // the nodes' release proof
}

func startStack(t testing.TB) *stack {
	t.Helper()
	dir := t.TempDir()
	s, err := up.Start(t.Context(), up.Config{Dir: dir, Nodes: 2, GPUs: 1, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	p, err := policy.Load(s.Policy)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := os.ReadFile(filepath.Join(dir, "release.json"))
	proof, _, err := tlog.Publish(t.Context(), nil, s.LogURL, leaf)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{Stack: s, dir: dir, policy: p, proof: proof.Marshal()}
}

// broker starts another broker on the stack's log, with the model's key.
func (st *stack) broker(t testing.TB, p *policy.Policy, logURL string) string {
	_, u := st.newBroker(t, p, logURL)
	return u
}

func (st *stack) newBroker(t testing.TB, p *policy.Policy, logURL string, opts ...func(*kbs.Config)) (*kbs.Broker, string) {
	t.Helper()
	store, err := kbs.OpenStore(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "kbs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	pub, err := tlog.NewSigner(filepath.Join(st.dir, "publisher.key"), tlog.KindPublisher)
	if err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	cfg := kbs.Config{Store: store, KEK: kek, Policy: p, LogURL: logURL, Publisher: pub, ID: "test-kbs", LogTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := kbs.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Register(t.Context(), st.Model.Name, st.Model.Digest, st.Model.Key); err != nil {
		t.Fatal(err)
	}
	// The same store under another key-encryption key: a start-up error.
	wrong := bytes.Clone(kek)
	wrong[0] ^= 1
	if _, err := kbs.New(t.Context(), kbs.Config{Store: store, KEK: wrong, Policy: p, LogURL: logURL, Publisher: pub}); err == nil || !strings.Contains(err.Error(), "wrong --kek") {
		t.Fatalf("a wrong KEK: %v", err)
	}
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(srv.Close)
	return b, srv.URL
}

func post(t testing.TB, url string, in any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(in)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// nodeBundle boots a simulated node answering nonce, with the stack's
// release proof, and returns its bundle and private keys.
func (st *stack) nodeBundle(t testing.TB, seed uint64, nonce []byte) ([]byte, *sim.Node) {
	t.Helper()
	n, err := sim.Boot(sim.Options{Seed: seed, At: timeNow(), Nonce: nonce, GPUs: 1, Release: st.proof})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := n.Bundle.Marshal()
	return b, n
}

func challenge(t testing.TB, url, model string) []byte {
	t.Helper()
	code, out := post(t, url+"/kbs/v1/challenge", map[string]any{"model": model})
	if code != 200 {
		t.Fatalf("challenge: %d %v", code, out)
	}
	var c kbs.ChallengeResponse
	b, _ := json.Marshal(out)
	json.Unmarshal(b, &c)
	return c.Nonce
}

func errMsg(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestRelease(t *testing.T) {
	st := startStack(t)
	url := st.broker(t, st.policy, st.LogURL)
	model := kbs.FormatDigest(st.Model.Digest)

	nonce := challenge(t, url, model)
	bundle, node := st.nodeBundle(t, 7, nonce)
	code, out := post(t, url+"/kbs/v1/release", kbs.ReleaseRequest{Model: model, Nonce: nonce, Bundle: bundle})
	if code != 200 {
		t.Fatalf("release: %d %v", code, out)
	}
	var rel kbs.ReleaseResponse
	b, _ := json.Marshal(out)
	json.Unmarshal(b, &rel)
	info := wire.KeyReleaseInfo(st.Model.Digest, nonce, rel.LogIndex)
	var key []byte
	for _, k := range node.RequestKeys {
		if c := k.Config(); c.ID == rel.KeyID && c.KEM == rel.KEM {
			key, _ = k.OpenSealed(wire.Suite{KDF: rel.KDF, AEAD: rel.AEAD}, info, rel.Sealed)
		}
	}
	if !bytes.Equal(key, st.Model.Key) {
		t.Fatal("the node does not open the released key")
	}
	// The release is a witnessed key_release record for this node.
	p, err := tlog.ParseProof(rel.Proof)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := tlog.NewVerifier(st.policy.Log)
	if _, err := v.VerifyProof(p, timeNow()); err != nil {
		t.Fatal(err)
	}
	rec, _ := tlog.ParseRecord(p.Record)
	if rec.KeyRelease == nil || rec.KeyRelease.Model != model || !bytes.Equal(rec.KeyRelease.Nonce, nonce) || rec.KeyRelease.Release == "" {
		t.Fatalf("key_release record %+v", rec.KeyRelease)
	}
	// Another node cannot open the key sealed to this one.
	_, other := st.nodeBundle(t, 8, bytes.Repeat([]byte{1}, 32))
	for _, k := range other.RequestKeys {
		if _, err := k.OpenSealed(wire.Suite{KDF: rel.KDF, AEAD: rel.AEAD}, info, rel.Sealed); err == nil {
			t.Fatal("another node opened the key")
		}
	}
	// The nonce was single use.
	if code, out := post(t, url+"/kbs/v1/release", kbs.ReleaseRequest{Model: model, Nonce: nonce, Bundle: bundle}); code != 403 {
		t.Fatalf("a used nonce: %d %v", code, out)
	}
}

// TestRefusals: in each case the key never leaves the broker.
func TestRefusals(t *testing.T) {
	st := startStack(t)
	br, url := st.newBroker(t, st.policy, st.LogURL)
	other := st.broker(t, st.policy, st.LogURL)
	model := kbs.FormatDigest(st.Model.Digest)
	release := func(url string, nonce, bundle []byte) (int, string) {
		code, out := post(t, url+"/kbs/v1/release", kbs.ReleaseRequest{Model: model, Nonce: nonce, Bundle: bundle})
		if _, ok := out["sealed"]; ok {
			t.Fatal("a key left the broker")
		}
		return code, errMsg(out)
	}

	// Another broker's nonce.
	n := challenge(t, other, model)
	b, _ := st.nodeBundle(t, 7, n)
	if code, why := release(url, n, b); code != 403 || !strings.Contains(why, "not an open challenge") {
		t.Fatalf("another broker's nonce: %d %s", code, why)
	}
	// A bundle that answers another nonce.
	n = challenge(t, url, model)
	b, _ = st.nodeBundle(t, 7, bytes.Repeat([]byte{9}, 32))
	if code, why := release(url, n, b); code != 403 || !strings.Contains(why, "does not answer") {
		t.Fatalf("a bundle for another nonce: %d %s", code, why)
	}
	// A simulated root under a production policy.
	prodData := bytes.Replace(mustRead(t, st.Policy), []byte("simulated"), []byte("production"), -1)
	prod, err := policy.Parse("prod", prodData)
	if err != nil {
		t.Fatal(err)
	}
	purl := st.broker(t, prod, st.LogURL)
	n = challenge(t, purl, model)
	b, _ = st.nodeBundle(t, 7, n)
	if code, why := release(purl, n, b); code != 403 || !strings.Contains(why, "contraindicated") {
		t.Fatalf("simulated root, production policy: %d %s", code, why)
	}
	// A node whose bundle staples no release.
	n = challenge(t, url, model)
	bare, err := sim.Boot(sim.Options{Seed: 7, At: timeNow(), Nonce: n, GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := bare.Bundle.Marshal()
	if code, why := release(url, n, bb); code != 403 {
		t.Fatalf("no release: %d %s", code, why)
	}
	// The log unreachable: nothing is released.
	down := st.broker(t, st.policy, "http://127.0.0.1:1")
	n = challenge(t, down, model)
	b, _ = st.nodeBundle(t, 7, n)
	if code, why := release(down, n, b); code != 503 || !strings.Contains(why, "no key is released") {
		t.Fatalf("log down: %d %s", code, why)
	}
	// A model the broker does not hold, and one the release may not serve.
	if code, out := post(t, url+"/kbs/v1/challenge", map[string]any{"model": "sha256:" + strings.Repeat("0", 64)}); code != 404 {
		t.Fatalf("unknown model: %d %v", code, out)
	}
	var m2 [32]byte
	rand.Read(m2[:])
	if err := br.Register(t.Context(), "other", m2, bytes.Repeat([]byte{2}, 32)); err != nil {
		t.Fatal(err)
	}
	n = challenge(t, url, kbs.FormatDigest(m2))
	b, _ = st.nodeBundle(t, 7, n)
	code, out := post(t, url+"/kbs/v1/release", kbs.ReleaseRequest{Model: kbs.FormatDigest(m2), Nonce: n, Bundle: b})
	if code != 403 || !strings.Contains(errMsg(out), "may not serve") || out["sealed"] != nil {
		t.Fatalf("a model the release may not serve: %d %v", code, out)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStoreReopen: models and releases survive a restart, and a wrong KEK
// is a start-up error.
func TestStoreReopen(t *testing.T) {
	path := "sqlite:" + filepath.Join(t.TempDir(), "kbs.db")
	s, err := kbs.OpenStore(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	var d [32]byte
	rand.Read(d[:])
	if err := s.PutModel(t.Context(), kbs.Model{Digest: d, Name: "m", Wrapped: []byte("wrapped-key-bytes-wrapped-key-by"), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRelease(t.Context(), kbs.Release{LogIndex: 3, Model: d, Bundle: d, NodeKey: []byte{1}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = kbs.OpenStore(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := s.Models(t.Context())
	if err != nil || len(ms) != 1 || ms[0].Digest != d {
		t.Fatalf("models after reopen: %v %v", ms, err)
	}
	rs, err := s.Releases(t.Context())
	if err != nil || len(rs) != 1 || rs[0].LogIndex != 3 || rs[0].Model != d {
		t.Fatalf("releases after reopen: %v %v", rs, err)
	}
	pol, _ := sim.StarterPolicy(0)
	pol.Log = &policy.Log{Origin: "x"}
	if _, err := kbs.New(t.Context(), kbs.Config{Store: s, KEK: make([]byte, 32), Policy: pol, LogURL: "http://127.0.0.1:1", Publisher: nil}); err == nil {
		t.Fatal("a broker without a publisher started")
	}
}

// TestLimitsMetricsCanary: a node asking again past its limit is refused
// (429) before any appraisal; the metrics count each outcome; and nothing
// the broker logged or exposed holds the model key.
func TestLimitsMetricsCanary(t *testing.T) {
	st := startStack(t)
	var logs bytes.Buffer
	_, url := st.newBroker(t, st.policy, st.LogURL, func(c *kbs.Config) {
		c.NodeLimit = kbs.Limit{Every: time.Hour, Burst: 1}
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	model := kbs.FormatDigest(st.Model.Digest)
	var bodies bytes.Buffer
	for i, want := range []int{200, 429} {
		nonce := challenge(t, url, model)
		bundle, _ := st.nodeBundle(t, 7, nonce) // the same node: the same request keys
		code, out := post(t, url+"/kbs/v1/release", kbs.ReleaseRequest{Model: model, Nonce: nonce, Bundle: bundle})
		if code != want {
			t.Fatalf("request %d: %d %v, want %d", i, code, out, want)
		}
		fmt.Fprint(&bodies, out["error"])
	}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`sworn_kbs_releases_total{outcome="released"} 1`, `sworn_kbs_releases_total{outcome="limited"} 1`,
		`sworn_kbs_challenges_total{outcome="issued"} 2`, `sworn_kbs_release_seconds_count{phase="appraisal"} 1`, `sworn_kbs_release_seconds_count{phase="log"} 1`} {
		if !bytes.Contains(m, []byte(w)) {
			t.Errorf("metrics lack %s", w)
		}
	}
	key := st.Model.Key
	for name, data := range map[string][]byte{"logs": logs.Bytes(), "metrics": m, "errors": bodies.Bytes()} {
		for _, enc := range []string{string(key), hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key)} {
			if bytes.Contains(data, []byte(enc)) {
				t.Errorf("the model key is in the broker's %s", name)
			}
		}
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"msg":"key released"`)) || !bytes.Contains(logs.Bytes(), []byte(`"msg":"key release refused"`)) {
		t.Errorf("the decisions are not logged:\n%s", logs.String())
	}
}
