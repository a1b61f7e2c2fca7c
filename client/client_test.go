package client_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/node"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/relay"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/up"
	"github.com/sworn-dev/sworn/wire"
)

func simPolicy(t testing.TB, gpus int) *policy.Policy {
	t.Helper()
	p, err := sim.StarterPolicy(gpus)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startNode runs a simulated node in front of an echo engine.
func startNode(t testing.TB, seed uint64, eo echo.Options) (string, *node.Node) {
	t.Helper()
	eng := httptest.NewServer(echo.New(eo))
	t.Cleanup(eng.Close)
	u, _ := url.Parse(eng.URL)
	n, err := node.New(node.Config{Platform: &node.SimPlatform{Seed: seed}, Policy: simPolicy(t, 0), Engine: u})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return srv.URL, n
}

// startRelay runs n simulated nodes behind a relay.
func startRelay(t testing.TB, n int) *httptest.Server {
	t.Helper()
	var urls []string
	for seed := uint64(1); seed <= uint64(n); seed++ {
		u, _ := startNode(t, seed, echo.Options{})
		urls = append(urls, u)
	}
	r, err := relay.New(relay.Config{Nodes: urls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := httptest.NewServer(r.Handler())
	t.Cleanup(rs.Close)
	return rs
}

func TestTransportAndProxy(t *testing.T) {
	a, _ := startNode(t, 1, echo.Options{})
	b, _ := startNode(t, 2, echo.Options{})
	c := &client.Client{Policy: simPolicy(t, 0)}
	pool, err := c.NewPool(t.Context(), []string{a, b, "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pool.Nodes()) != 2 || !strings.Contains(pool.Reasons()["http://127.0.0.1:1"], "fetching the bundle") {
		t.Fatalf("pool %d nodes, reasons %v", len(pool.Nodes()), pool.Reasons())
	}
	store := &client.ReceiptStore{Dir: t.TempDir()}
	tr := &client.Transport{Pool: pool, Store: store}

	// The Transport as any http.Client's.
	hc := &http.Client{Transport: tr}
	resp, err := hc.Post("https://api.example/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"hi there"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), "echo: hi there") {
		t.Fatalf("answer %d %q %v", resp.StatusCode, body, err)
	}
	id := resp.Trailer.Get("Sworn-Receipt")
	if len(id) != 32 || !strings.Contains(resp.Trailer.Get("Sworn-Node"), "simulated") {
		t.Fatalf("trailers %v", resp.Trailer)
	}
	if ids, _ := store.List(); len(ids) != 1 || ids[0] != id {
		t.Fatalf("store %v, want %s", ids, id)
	}
	if _, _, err := store.Get(id[:8]); err != nil {
		t.Fatal(err)
	}

	// The proxy, streaming.
	px := httptest.NewServer(&client.Proxy{Transport: tr})
	defer px.Close()
	resp, err = http.Post(px.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"echo","stream":true,"messages":[{"role":"user","content":"a b c"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data: ") {
			events = append(events, line)
		}
	}
	resp.Body.Close()
	if len(events) < 4 || events[len(events)-1] != "data: [DONE]" || len(resp.Trailer.Get("Sworn-Receipt")) != 32 || resp.Trailer.Get("Sworn-Node") == "" {
		t.Fatalf("stream: %d events, last %q, trailer %v, header %v", len(events), events[len(events)-1], resp.Trailer, resp.Header)
	}
	// Whole answers carry the receipt id as a header.
	resp, _ = http.Post(px.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"x"}]}`))
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Header.Get("Sworn-Receipt")) != 32 {
		t.Fatalf("whole answer: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = http.Get(px.URL + "/admin")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("a path the proxy does not serve: %d", resp.StatusCode)
	}
}

// TestEngineDiesThroughProxy: a stream cut mid-way reaches the SDK as an
// error, and the proxy's client as an SSE error event, never a clean end.
func TestEngineDiesThroughProxy(t *testing.T) {
	a, _ := startNode(t, 1, echo.Options{FailAfterTokens: 2})
	c := &client.Client{Policy: simPolicy(t, 0)}
	pool, err := c.NewPool(t.Context(), []string{a})
	if err != nil {
		t.Fatal(err)
	}
	tr := &client.Transport{Pool: pool}
	hc := &http.Client{Transport: tr}
	resp, err := hc.Post("https://api.example/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"echo","stream":true,"messages":[{"role":"user","content":"one two three four"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a truncated stream read to a clean end")
	}
	px := httptest.NewServer(&client.Proxy{Transport: tr})
	defer px.Close()
	resp, _ = http.Post(px.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"echo","stream":true,"messages":[{"role":"user","content":"one two three four"}]}`))
	all, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(all), "event: error") || strings.Contains(string(all), "[DONE]") {
		t.Fatalf("proxy stream: %q", all)
	}
}

// TestRotationRefetch: a node that rotated its keys is refetched and
// appraised again, transparently.
func TestRotationRefetch(t *testing.T) {
	a, n := startNode(t, 1, echo.Options{})
	c := &client.Client{Policy: simPolicy(t, 0)}
	pool, err := c.NewPool(t.Context(), []string{a})
	if err != nil {
		t.Fatal(err)
	}
	// Two rotations: the keys the pool holds are past their grace.
	for range 2 {
		if err := n.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	hc := &http.Client{Transport: &client.Transport{Pool: pool}}
	resp, err := hc.Post("https://api.example/v1/chat/completions", "application/json", strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after rotation: %d", resp.StatusCode)
	}
}

func TestNoVerifiedNode(t *testing.T) {
	a, _ := startNode(t, 1, echo.Options{})
	prod, _ := policy.Parse("prod", policy.Starter(policy.StarterOptions{}))
	c := &client.Client{Policy: prod}
	_, err := c.NewPool(t.Context(), []string{a})
	var nv *client.NoVerifiedNodeError
	if !errors.As(err, &nv) || !errors.Is(err, client.ErrNoVerifiedNode) || !strings.Contains(nv.Reasons[a], "simulated") && !strings.Contains(nv.Reasons[a], "SIMULATED") && !strings.Contains(nv.Reasons[a], "root") {
		t.Fatalf("a simulated node under a production policy: %v", err)
	}
}

// TestRelayMultiCandidate: the directory of a relay is appraised on the
// client's machine; each request is encrypted to three candidates and the
// relay hands it to one; the receipt says which, and verifies. Nodes that
// fail the policy (here: another GPU count) are never candidates.
func TestRelayMultiCandidate(t *testing.T) {
	rs := startRelay(t, 3)
	c := &client.Client{Policy: simPolicy(t, 0)}
	pool, err := c.NewRelayPool(t.Context(), rs.URL, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(pool.Nodes()) != 3 {
		t.Fatalf("%d verified nodes: %v", len(pool.Nodes()), pool.Reasons())
	}
	hc := &http.Client{Transport: &client.Transport{Pool: pool}}
	for range 12 {
		resp, err := hc.Post("https://api.example/v1/chat/completions", "application/json", strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"k of n"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(body), "echo: k of n") || len(resp.Trailer.Get("Sworn-Receipt")) != 32 {
			t.Fatalf("answer %q %v %v", body, err, resp.Trailer)
		}
	}
	// Under a policy the nodes fail, none is a candidate.
	strict := simPolicy(t, 2)
	if _, err := (&client.Client{Policy: strict}).NewRelayPool(t.Context(), rs.URL, 3); !errors.Is(err, client.ErrNoVerifiedNode) {
		t.Fatalf("nodes that fail the policy: %v", err)
	}
	if _, err := c.NewRelayPool(t.Context(), "http://127.0.0.1:1", 3); !errors.Is(err, client.ErrRelayUnreachable) {
		t.Fatalf("relay down: %v", err)
	}
}

// TestRelaySingleCandidate: with k = 1 each request goes through the
// relay's path to the one node it is encrypted to.
func TestRelaySingleCandidate(t *testing.T) {
	rs := startRelay(t, 3)
	pool, err := (&client.Client{Policy: simPolicy(t, 0)}).NewRelayPool(t.Context(), rs.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &client.Transport{Pool: pool}}
	for range 9 {
		resp, err := hc.Post("https://api.example/v1/chat/completions", "application/json", strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"one"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(body), "echo: one") {
			t.Fatalf("answer %q %v", body, err)
		}
	}
}

// counting wraps a node's handler and counts its gateway requests.
type counting struct {
	h http.Handler
	n atomic.Int64
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/sworn/v1/ohttp" {
		c.n.Add(1)
	}
	c.h.ServeHTTP(w, r)
}

// TestFailingNodesNeverGetAPrompt: beside a node of sworn up that passes,
// a node that staples no release, one of another machine shape, one whose
// release proof lacks its witness quorum, and one under simulated roots
// appraised by a production policy are not candidates, each refused for
// its reason, and — asserted at the nodes — receive no request at all.
func TestFailingNodesNeverGetAPrompt(t *testing.T) {
	s, err := up.Start(t.Context(), up.Config{Dir: t.TempDir(), Nodes: 1, GPUs: 1, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pol, err := policy.Load(s.Policy)
	if err != nil {
		t.Fatal(err)
	}
	o, err := sim.StarterOptions(1)
	if err != nil {
		t.Fatal(err)
	}
	o.Simulated = false
	production, err := policy.Parse("production", policy.Starter(o))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		plat    *node.SimPlatform
		release []byte
		policy  *policy.Policy
		reason  string
	}{
		{"unpublished release", &node.SimPlatform{Seed: 9, GPUs: 1}, nil, pol, "release"},
		{"GPU missing", &node.SimPlatform{Seed: 10, GPUs: 0}, s.Release, pol, "GPU"},
		{"witness quorum missing", &node.SimPlatform{Seed: 11, GPUs: 1}, withoutCosignatures(t, s.Release), pol, "witness"},
		{"simulated root, production policy", &node.SimPlatform{Seed: 12, GPUs: 1}, s.Release, production, "root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := httptest.NewServer(echo.New(echo.Options{}))
			defer eng.Close()
			u, _ := url.Parse(eng.URL)
			own, _ := sim.StarterPolicy(tc.plat.GPUs) // the node passes its own policy, not the client's
			n, err := node.New(node.Config{Platform: tc.plat, Policy: own, AllowWarning: true, Release: tc.release, Engine: u})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Rotate(t.Context()); err != nil {
				t.Fatal(err)
			}
			bad := &counting{h: n.Handler()}
			srv := httptest.NewServer(bad)
			defer srv.Close()

			urls := []string{srv.URL}
			if tc.policy == pol {
				urls = append(urls, s.NodeURLs...)
			}
			pool, err := (&client.Client{Policy: tc.policy}).NewPool(t.Context(), urls)
			var none *client.NoVerifiedNodeError
			switch {
			case errors.As(err, &none):
				if tc.policy == pol {
					t.Fatalf("the good node did not verify: %v", err)
				}
				t.Log(none.Reasons[srv.URL])
				if !strings.Contains(none.Reasons[srv.URL], tc.reason) {
					t.Fatalf("reason %q does not name %q", none.Reasons[srv.URL], tc.reason)
				}
			case err != nil:
				t.Fatal(err)
			default:
				t.Log(pool.Reasons()[srv.URL])
				if r := pool.Reasons()[srv.URL]; len(pool.Nodes()) != 1 || !strings.Contains(r, tc.reason) {
					t.Fatalf("%d verified; the failing node's reason %q does not name %q", len(pool.Nodes()), r, tc.reason)
				}
				hc := &http.Client{Transport: &client.Transport{Pool: pool}}
				for range 10 {
					resp, err := hc.Post("https://api.example/v1/chat/completions", "application/json", strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"x"}]}`))
					if err != nil {
						t.Fatal(err)
					}
					io.ReadAll(resp.Body)
					resp.Body.Close()
				}
			}
			if bad.n.Load() != 0 {
				t.Errorf("the failing node received %d requests", bad.n.Load())
			}
		})
	}
}

// withoutCosignatures returns the release proof with its checkpoint's
// witness cosignatures removed: the log's own signature remains.
func withoutCosignatures(t *testing.T, release []byte) []byte {
	t.Helper()
	p, err := tlog.ParseProof(release)
	if err != nil {
		t.Fatal(err)
	}
	text, sigs, ok := strings.Cut(string(p.Checkpoint), "\n\n")
	if !ok {
		t.Fatal("checkpoint without signatures")
	}
	var kept []string
	for _, l := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		if strings.HasPrefix(l, "\u2014 sworn-up.log ") {
			kept = append(kept, l)
		}
	}
	if len(kept) != 1 {
		t.Fatalf("%d log signatures in the checkpoint", len(kept))
	}
	p.Checkpoint = []byte(text + "\n\n" + kept[0] + "\n")
	return p.Marshal()
}

// TestHostileRelay: a relay that sends a multi-candidate request to a node
// outside the candidate set, rewrites the ciphertext, or cuts the stream is
// detected: the SDK gets an error, the proxy's client an SSE error event.
func TestHostileRelay(t *testing.T) {
	var urls []string
	for seed := uint64(1); seed <= 3; seed++ {
		u, _ := startNode(t, seed, echo.Options{})
		urls = append(urls, u)
	}
	r, _ := relay.New(relay.Config{Nodes: urls[:2]})
	defer r.Close()
	r.Refresh(t.Context())
	honest := httptest.NewServer(r.Handler())
	defer honest.Close()
	for name, evil := range map[string]http.HandlerFunc{
		"outside the candidate set": func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/sworn/v1/ohttp" {
				req.URL.Path = "/sworn/v1/ohttp"
				out, _ := http.NewRequest(req.Method, urls[2]+"/sworn/v1/ohttp", req.Body)
				out.Header.Set("Content-Type", req.Header.Get("Content-Type"))
				resp, err := http.DefaultClient.Do(out)
				if err != nil {
					w.WriteHeader(502)
					return
				}
				w.WriteHeader(resp.StatusCode)
				io.Copy(w, resp.Body)
				return
			}
			r.Handler().ServeHTTP(w, req)
		},
		"rewrites the ciphertext": func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/sworn/v1/ohttp" {
				b, _ := io.ReadAll(req.Body)
				b[len(b)-5] ^= 1
				req.Body = io.NopCloser(strings.NewReader(string(b)))
				req.ContentLength = int64(len(b))
			}
			r.Handler().ServeHTTP(w, req)
		},
		"cuts the stream": func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path != "/sworn/v1/ohttp" {
				r.Handler().ServeHTTP(w, req)
				return
			}
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, req)
			w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes()[:rec.Body.Len()-20])
		},
	} {
		t.Run(name, func(t *testing.T) {
			hostile := httptest.NewServer(evil)
			defer hostile.Close()
			pool, err := (&client.Client{Policy: simPolicy(t, 0)}).NewRelayPool(t.Context(), hostile.URL, 2)
			if err != nil {
				t.Fatal(err)
			}
			tr := &client.Transport{Pool: pool}
			resp, err := (&http.Client{Transport: tr}).Post("https://api.example/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"echo","stream":true,"messages":[{"role":"user","content":"a b c d"}]}`))
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				t.Fatal("a hostile relay went unnoticed")
			}
			px := httptest.NewServer(&client.Proxy{Transport: tr})
			defer px.Close()
			presp, err := http.Post(px.URL+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"echo","stream":true,"messages":[{"role":"user","content":"a b c d"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			all, _ := io.ReadAll(presp.Body)
			presp.Body.Close()
			if presp.StatusCode == 200 && (!strings.Contains(string(all), "event: error") || strings.Contains(string(all), "[DONE]")) {
				t.Fatalf("proxy: %d %q", presp.StatusCode, all)
			}
		})
	}
}

// TestClassicalOnlyUnderPolicy: a node that offers only a classical key is
// refused unless the policy's wire.allow_classical says otherwise.
func TestClassicalOnlyUnderPolicy(t *testing.T) {
	a, _ := startNode(t, 1, echo.Options{})
	c := &client.Client{Policy: simPolicy(t, 0)}
	n, err := c.Verify(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	cfgs, _ := n.Bundle.Keys.Configs()
	var classical []wire.KeyConfig
	for _, k := range cfgs {
		if !wire.IsPostQuantum(k.KEM) {
			classical = append(classical, k)
		}
	}
	if _, _, err := wire.Choose(classical, c.Policy.Wire.AllowClassical); err == nil {
		t.Fatal("a classical-only key list chosen under the starter policy")
	}
	p := simPolicy(t, 0)
	p.Wire.AllowClassical = true
	if k, _, err := wire.Choose(classical, p.Wire.AllowClassical); err != nil || k.KEM != wire.KEMX25519 {
		t.Fatalf("allowed classical: %v", err)
	}
}
