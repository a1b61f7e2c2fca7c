package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/appraiser"
	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/wire"
	"github.com/sworn-dev/sworn/wire/bhttp"
)

// simPolicy is the simulated starter policy for gpus GPUs.
func simPolicy(t testing.TB, gpus int) *policy.Policy {
	t.Helper()
	p, err := sim.StarterPolicy(gpus)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type testNode struct {
	*Node
	url    string
	engine *httptest.Server
	policy *policy.Policy
}

func startNode(t testing.TB, gpus int, eo echo.Options, edit func(*Config)) *testNode {
	t.Helper()
	eng := httptest.NewServer(echo.New(eo))
	t.Cleanup(eng.Close)
	u, _ := url.Parse(eng.URL)
	cfg := Config{Platform: &SimPlatform{Seed: 1, GPUs: gpus}, Policy: simPolicy(t, gpus), Engine: u}
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return &testNode{Node: n, url: srv.URL, engine: eng, policy: cfg.Policy}
}

// fetchBundle gets and appraises the node's passport bundle, as a client.
func (tn *testNode) fetchBundle(t testing.TB) *attest.Bundle {
	t.Helper()
	resp, err := http.Get(tn.url + "/sworn/v1/bundle")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != MediaTypeBundle || resp.Header.Get("ETag") == "" {
		t.Fatalf("bundle: %d %v", resp.StatusCode, resp.Header)
	}
	b, err := attest.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	r := appraiser.New().Appraise(t.Context(), b, appraiser.Options{At: time.Now(), Policy: tn.policy})
	if r.Verdict != attest.Affirming || !r.Simulated {
		t.Fatalf("client appraisal of the node's bundle: %s", r.Verdict)
	}
	return b
}

// answer is what a client got back.
type answer struct {
	status  int
	content []byte
	receipt []byte
	request []byte
	err     error // from reading the encrypted answer
}

func chatRequest(content string, stream bool) []byte {
	body := `{"model":"echo","stream":` + map[bool]string{true: "true", false: "false"}[stream] + `,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"` + content + `"}]}`
	req := &bhttp.Request{Method: "POST", Scheme: "https", Authority: "node", Path: "/v1/chat/completions",
		Header:  bhttp.Fields{{Name: "content-type", Value: "application/json"}, {Name: "date", Value: time.Now().UTC().Format(http.TimeFormat)}},
		Content: []byte(body)}
	enc, err := req.Encode()
	if err != nil {
		panic(err)
	}
	return enc
}

// ask sends a BHTTP request of the given kind to the node, encrypted to
// the keys of bundle b, and reads the answer.
func ask(t testing.TB, nodeURL string, b *attest.Bundle, kind string, req []byte) answer {
	t.Helper()
	cfgs, err := b.Keys.Configs()
	if err != nil {
		t.Fatal(err)
	}
	c, s, err := wire.Choose(cfgs, false)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	var mt string
	var open func(io.Reader) io.Reader
	var openWhole func([]byte) ([]byte, error)
	switch kind {
	case "ohttp":
		enc, cc, err := wire.EncapsulateRequest(c, s, req)
		if err != nil {
			t.Fatal(err)
		}
		body, mt, openWhole = enc, wire.MediaTypeRequest, cc.OpenResponse
	case "chunked":
		var buf bytes.Buffer
		w, err := wire.NewChunkedRequestWriter(c, s, &buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(req)
		w.Close()
		body, mt, open = buf.Bytes(), wire.MediaTypeChunkedReq, w.OpenResponse
	case "multi":
		enc, cc, err := wire.EncapsulateMulti([]wire.KeyConfig{c}, s, req)
		if err != nil {
			t.Fatal(err)
		}
		body, mt, open = enc, wire.MediaTypeMultiReq, cc.OpenResponse
	}
	return post(t, nodeURL, mt, body, req, open, openWhole)
}

func post(t testing.TB, nodeURL, mt string, body, req []byte, open func(io.Reader) io.Reader, openWhole func([]byte) ([]byte, error)) answer {
	t.Helper()
	hr, _ := http.NewRequest(http.MethodPost, nodeURL+"/sworn/v1/ohttp", bytes.NewReader(body))
	hr.Header.Set("Content-Type", mt)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{request: req}
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		a.status, a.err = resp.StatusCode, errors.New(strings.TrimSpace(string(msg)))
		return a
	}
	var plain io.Reader
	if openWhole != nil {
		sealed, _ := io.ReadAll(resp.Body)
		pt, err := openWhole(sealed)
		if err != nil {
			a.err = err
			return a
		}
		plain = bytes.NewReader(pt)
	} else {
		plain = open(resp.Body)
	}
	r, err := bhttp.NewReader(plain, &bhttp.Options{Strict: true})
	if err != nil {
		a.err = err
		return a
	}
	a.status = r.Response().Status
	if a.content, a.err = io.ReadAll(r); a.err != nil {
		return a
	}
	tr, err := r.Trailer()
	if err != nil {
		a.err = err
		return a
	}
	if v := tr.Get(receipt.Trailer); v != "" {
		a.receipt, _ = base64.RawURLEncoding.DecodeString(v)
	}
	return a
}

// checkReceipt verifies an answer's receipt offline, as anyone the client
// shows it to would.
func checkReceipt(t testing.TB, a answer, b *attest.Bundle, p *policy.Policy) *attest.Result {
	t.Helper()
	ap := appraiser.New()
	r := receipt.Appraise(t.Context(), a.receipt, b, attest.Options{At: time.Now(), Policy: p, Verifiers: ap.Verifiers(), Release: nil},
		&receipt.Exchange{Request: a.request, Response: &receipt.Response{Status: a.status, Content: a.content}})
	return r
}

func TestEndToEnd(t *testing.T) {
	tn := startNode(t, 1, echo.Options{}, nil)
	b := tn.fetchBundle(t)
	for _, kind := range []string{"ohttp", "chunked", "multi"} {
		t.Run(kind, func(t *testing.T) {
			stream := kind != "ohttp"
			a := ask(t, tn.url, b, kind, chatRequest("hello node", stream))
			if a.err != nil || a.status != 200 {
				t.Fatalf("answer %d: %v", a.status, a.err)
			}
			if !bytes.Contains(a.content, []byte("hello")) || (stream && !bytes.Contains(a.content, []byte("data: [DONE]"))) {
				t.Fatalf("content %q", a.content)
			}
			if a.receipt == nil {
				t.Fatal("no receipt in the trailer")
			}
			r := checkReceipt(t, a, b, tn.policy)
			if r.Verdict != attest.Affirming {
				for _, s := range r.Receipt.Steps {
					t.Logf("%s %s %s", s.ID, s.Status, s.Detail)
				}
				t.Fatalf("receipt: %s", r.Verdict)
			}
			rc, _ := receipt.Parse(a.receipt)
			if rc.Payload.Tokens.Completion == 0 || rc.Payload.Suite.KEM != wire.KEMXWing {
				t.Fatalf("receipt payload %+v", rc.Payload)
			}
			// The receipt does not match another answer.
			a.content = append(a.content, ' ')
			if r := checkReceipt(t, a, b, tn.policy); r.Verdict == attest.Affirming {
				t.Fatal("a receipt matched an altered answer")
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	tn := startNode(t, 0, echo.Options{}, func(c *Config) { c.MaxRequest = 64 << 10 })
	b := tn.fetchBundle(t)

	// A path outside the allow-list: an encrypted 404.
	req := &bhttp.Request{Method: "GET", Scheme: "https", Authority: "node", Path: "/admin",
		Header: bhttp.Fields{{Name: "date", Value: time.Now().UTC().Format(http.TimeFormat)}}}
	enc, _ := req.Encode()
	if a := ask(t, tn.url, b, "ohttp", enc); a.err != nil || a.status != 404 || !bytes.Contains(a.content, []byte(`"error"`)) {
		t.Fatalf("path outside the allow-list: %d %q %v", a.status, a.content, a.err)
	}

	// A replayed request: the second copy is refused before the engine.
	cfgs, _ := b.Keys.Configs()
	c, s, _ := wire.Choose(cfgs, false)
	msg, cc, _ := wire.EncapsulateRequest(c, s, chatRequest("once", false))
	if a := post(t, tn.url, wire.MediaTypeRequest, msg, nil, nil, cc.OpenResponse); a.err != nil {
		t.Fatal(a.err)
	}
	if a := post(t, tn.url, wire.MediaTypeRequest, msg, nil, nil, cc.OpenResponse); a.status != 400 || !strings.Contains(a.err.Error(), "replay") {
		t.Fatalf("replay: %d %v", a.status, a.err)
	}

	// A request dated outside the window.
	old := &bhttp.Request{Method: "POST", Scheme: "https", Authority: "node", Path: "/v1/chat/completions",
		Header: bhttp.Fields{{Name: "date", Value: time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)}}, Content: []byte("{}")}
	enc, _ = old.Encode()
	if a := ask(t, tn.url, b, "ohttp", enc); a.status != 400 || !strings.Contains(a.err.Error(), "dated") {
		t.Fatalf("stale date: %d %v", a.status, a.err)
	}

	// An oversized request.
	big := chatRequest(strings.Repeat("x", 100<<10), false)
	if a := ask(t, tn.url, b, "ohttp", big); a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d %v", a.status, a.err)
	}

	// A request sealed to another node's keys.
	other := startNode(t, 0, echo.Options{}, nil)
	ob := other.fetchBundle(t)
	if a := ask(t, tn.url, ob, "ohttp", chatRequest("x", false)); a.status != http.StatusUnprocessableEntity && a.status != http.StatusBadRequest {
		t.Fatalf("another node's key: %d %v", a.status, a.err)
	}

	// Not OHTTP at all.
	resp, _ := http.Post(tn.url+"/sworn/v1/ohttp", "application/json", strings.NewReader("{}"))
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("plain JSON: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// TestEngineDiesMidStream: the client sees a truncation, never a shorter
// answer that looks complete.
func TestEngineDiesMidStream(t *testing.T) {
	tn := startNode(t, 0, echo.Options{FailAfterTokens: 2}, nil)
	b := tn.fetchBundle(t)
	for _, kind := range []string{"chunked", "multi"} {
		a := ask(t, tn.url, b, kind, chatRequest("one two three four five six", true))
		if a.err == nil || !errors.Is(a.err, wire.ErrTruncated) {
			t.Fatalf("%s: %q %v, want a truncation", kind, a.content, a.err)
		}
	}
	// The engine down: an encrypted 502.
	tn.engine.Close()
	a := ask(t, tn.url, b, "chunked", chatRequest("x", true))
	if a.err != nil || a.status != http.StatusBadGateway || !bytes.Contains(a.content, []byte("engine unavailable")) {
		t.Fatalf("engine down: %d %q %v", a.status, a.content, a.err)
	}
}

// TestSelfAppraisalGate: a node whose own evidence fails its policy does
// not serve, and says why.
func TestSelfAppraisalGate(t *testing.T) {
	eng := httptest.NewServer(echo.New(echo.Options{}))
	defer eng.Close()
	u, _ := url.Parse(eng.URL)
	n, err := New(Config{Platform: &SimPlatform{Seed: 1, GPUs: 1}, Policy: simPolicy(t, 2), Engine: u})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Rotate(t.Context()); err == nil || !strings.Contains(err.Error(), "policy.nvgpu.count") {
		t.Fatalf("rotate: %v", err)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	for _, path := range []string{"/healthz", "/sworn/v1/bundle"} {
		resp, _ := http.Get(srv.URL + path)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "nvgpu.count") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, _ := http.Post(srv.URL+"/sworn/v1/ohttp", wire.MediaTypeRequest, strings.NewReader("x"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("gateway of a node that failed: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// TestRotation: across an epoch boundary, a stream in flight completes,
// and the previous epoch's keys decrypt during the grace period only.
func TestRotation(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	tn := startNode(t, 0, echo.Options{TokensPerSecond: 50}, func(c *Config) { c.Now = func() time.Time { return clock() } })
	old := tn.fetchBundle(t)
	done := make(chan answer)
	go func() { done <- ask(t, tn.url, old, "chunked", chatRequest("a b c d e f g h i j", true)) }()
	time.Sleep(50 * time.Millisecond)
	if err := tn.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := <-done; a.err != nil || a.receipt == nil {
		t.Fatalf("stream across the rotation: %v", a.err)
	}
	nb := tn.fetchBundle(t)
	if bytes.Equal(nb.Keys.RequestKeys, old.Keys.RequestKeys) {
		t.Fatal("keys did not rotate")
	}
	if a := ask(t, tn.url, old, "ohttp", chatRequest("grace", false)); a.err != nil || a.status != 200 {
		t.Fatalf("previous keys within the grace period: %d %v", a.status, a.err)
	}
	later := now.Add(DefaultGrace + time.Second)
	clock = func() time.Time { return later }
	req := &bhttp.Request{Method: "POST", Scheme: "https", Authority: "node", Path: "/v1/chat/completions",
		Header: bhttp.Fields{{Name: "date", Value: later.UTC().Format(http.TimeFormat)}}, Content: []byte("{}")}
	enc, _ := req.Encode()
	if a := ask(t, tn.url, old, "ohttp", enc); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("previous keys after the grace period: %d %v", a.status, a.err)
	}
}

func TestColdStart8GPUs(t *testing.T) {
	start := time.Now()
	startNode(t, 8, echo.Options{}, nil)
	t.Logf("a simulated node with 8 GPUs serves after %v", time.Since(start))
}

// TestClientThatNeverReads: a client that stops reading a stream is cut
// off after StreamIdle, and its stream is released.
func TestClientThatNeverReads(t *testing.T) {
	tn := startNode(t, 0, echo.Options{MaxTokens: 100000}, func(c *Config) { c.StreamIdle = 300 * time.Millisecond })
	b := tn.fetchBundle(t)
	cfgs, _ := b.Keys.Configs()
	c, s, _ := wire.Choose(cfgs, false)
	var buf bytes.Buffer
	w, _ := wire.NewChunkedRequestWriter(c, s, &buf)
	w.Write(chatRequest(strings.Repeat("word ", 20000), true))
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, tn.url+"/sworn/v1/ohttp", &buf)
	req.Header.Set("Content-Type", wire.MediaTypeChunkedReq)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read
	deadline := time.Now().Add(10 * time.Second)
	for len(tn.streams) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream of a client that never reads was not cut off")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBadRequestsDoNotAffectGoodOnes: garbage, replays and oversized
// requests interleaved with good ones, concurrently; every good one is
// answered in full.
func TestBadRequestsDoNotAffectGoodOnes(t *testing.T) {
	tn := startNode(t, 0, echo.Options{}, func(c *Config) { c.MaxRequest = 64 << 10 })
	b := tn.fetchBundle(t)
	done := make(chan error, 40)
	for i := range 40 {
		go func() {
			switch i % 4 {
			case 0:
				a := ask(t, tn.url, b, "chunked", chatRequest("good", true))
				if a.err != nil || a.status != 200 || a.receipt == nil {
					done <- fmt.Errorf("good request %d: %d %v", i, a.status, a.err)
					return
				}
			case 1:
				resp, err := http.Post(tn.url+"/sworn/v1/ohttp", wire.MediaTypeChunkedReq, strings.NewReader("garbage garbage garbage"))
				if err == nil {
					resp.Body.Close()
				}
			case 2:
				ask(t, tn.url, b, "ohttp", chatRequest(strings.Repeat("x", 100<<10), false))
			case 3:
				resp, err := http.Post(tn.url+"/sworn/v1/ohttp", wire.MediaTypeRequest, io.LimitReader(neverEnding{}, 1<<20))
				if err == nil {
					resp.Body.Close()
				}
			}
			done <- nil
		}()
	}
	for range 40 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) { return len(p), nil }
