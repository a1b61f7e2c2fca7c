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
	"testing"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/node"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/relay"
	"github.com/sworn-dev/sworn/sim"
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
	var urls []string
	for seed := uint64(1); seed <= 3; seed++ {
		u, _ := startNode(t, seed, echo.Options{})
		urls = append(urls, u)
	}
	r, err := relay.New(relay.Config{Nodes: urls})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := httptest.NewServer(r.Handler())
	defer rs.Close()
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
	var urls []string
	for seed := uint64(1); seed <= 3; seed++ {
		u, _ := startNode(t, seed, echo.Options{})
		urls = append(urls, u)
	}
	r, err := relay.New(relay.Config{Nodes: urls})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Refresh(t.Context())
	rs := httptest.NewServer(r.Handler())
	defer rs.Close()
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
