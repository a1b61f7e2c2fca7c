package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/wire"
)

func getDirectory(t *testing.T, relayURL, etag string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, relayURL+"/sworn/v1/directory", nil)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestDirectory: the directory lists each node's bundle and keys as the
// node served them, with the node's ETag and expiry, under an ETag of its
// own; a refresh asks the node with If-None-Match; a node that fails is
// listed with its error and no bundle, and is not routed to; a node that
// rotated keeps routing its previous keys until their bundle expires.
func TestDirectory(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }
	a, b := newStub(t, 1, ok), newStub(t, 1, ok)
	r, relayURL, logs := startRelay(t, Config{}, a.url, b.url)

	resp, raw := getDirectory(t, relayURL, "")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	d, err := ParseDirectory(raw)
	if err != nil || len(d.Nodes) != 2 {
		t.Fatalf("%v %s", err, raw)
	}
	for i, s := range []*stub{a, b} {
		e := d.Nodes[i]
		if e.ID != NodeID(s.url) || string(e.Bundle) != `bundle "e1"` || !bytes.Equal(e.Keys, s.keyList()) || e.ETag != `"e1"` || e.Error != "" ||
			e.Expires.Before(time.Now().Add(50*time.Second)) || e.Expires.After(time.Now().Add(61*time.Second)) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	if len(NodeID(a.url)) != 16 || NodeID(a.url) == NodeID(b.url) {
		t.Fatalf("ids %s %s", NodeID(a.url), NodeID(b.url))
	}
	// The JSON carries base64 and the field names of docs/protocol.md.
	var generic map[string]any
	json.Unmarshal(raw, &generic)
	node0 := generic["nodes"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "bundle", "keys", "etag", "expires"} {
		if _, ok := node0[k]; !ok {
			t.Errorf("entry lacks %q: %v", k, node0)
		}
	}
	if resp, body := getDirectory(t, relayURL, etag); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}

	// Unchanged nodes answer 304; the directory keeps its ETag.
	r.Refresh(t.Context())
	if a.notMod.Load() != 1 || b.notMod.Load() != 1 {
		t.Fatalf("304s: %d %d", a.notMod.Load(), b.notMod.Load())
	}
	if resp, _ := getDirectory(t, relayURL, etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("the directory changed on 304s: %d", resp.StatusCode)
	}

	// b fails: listed with its error, no bundle, not routed to.
	b.down.Store(true)
	r.Refresh(t.Context())
	resp, raw = getDirectory(t, relayURL, etag)
	d, _ = ParseDirectory(raw)
	if resp.StatusCode != 200 || d.Nodes[1].Bundle != nil || d.Nodes[1].Keys != nil || !strings.Contains(d.Nodes[1].Error, "503") || d.Nodes[0].Bundle == nil {
		t.Fatalf("after b failed: %s", raw)
	}
	if resp, _ := post(t, nil, NodeURL(relayURL, NodeID(b.url))+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(b.keys[0], nil), nil); resp.StatusCode != 404 {
		t.Errorf("a failing node was routed to: %d", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), `"node not refreshed","node":"`+NodeID(b.url)) {
		t.Errorf("logs: %s", logs)
	}
	health := func() (int, string) {
		resp, err := http.Get(relayURL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if st, body := health(); st != 200 || !strings.Contains(body, `"serving":1`) || !strings.Contains(body, `"nodes":2`) {
		t.Errorf("healthz %d %s", st, body)
	}
	a.down.Store(true)
	r.Refresh(t.Context())
	if st, body := health(); st != 503 || !strings.Contains(body, `"ready":false`) {
		t.Errorf("healthz with no node %d %s", st, body)
	}
	a.down.Store(false)
	r.Refresh(t.Context())

	// A node that does not answer at all: the directory says so without
	// its address.
	c := newStub(t, 1, ok)
	c.srv.Close()
	rc, _, _ := startRelay(t, Config{}, c.url)
	if e := rc.directory().Nodes[0]; e.Error != "bundle: the node did not answer" {
		t.Errorf("a node down: %q", e.Error)
	}

	// a rotates: new keys and ETag. Its old keys still route until the
	// old bundle's expiry, then no longer.
	old := a.keys
	a.keys, _ = wire.NodeKeys(3)
	a.etag.Store(`"e2"`)
	r.Refresh(t.Context())
	for _, k := range append(old, a.keys...) {
		if resp, _ := post(t, nil, NodeURL(relayURL, NodeID(a.url))+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(k, nil), nil); resp.StatusCode != 200 {
			t.Errorf("key %d after the rotation: %d", k.Config().ID, resp.StatusCode)
		}
	}
	r.mu.Lock()
	r.nodes[0].prevUntil = time.Now().Add(-time.Second)
	r.mu.Unlock()
	r.Refresh(t.Context())
	if resp, _ := post(t, nil, relayURL+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(old[0], nil), nil); resp.StatusCode != 404 {
		t.Errorf("an expired previous key still routes: %d", resp.StatusCode)
	}
}

// TestRunRefreshesAtExpiry: with a node's max-age of 1 s, Run fetches it
// again within a few seconds although Refresh is an hour.
func TestRunRefreshesAtExpiry(t *testing.T) {
	s := newStub(t, 1, func(http.ResponseWriter, *http.Request) {})
	s.maxAge.Store("1")
	r, _, _ := startRelay(t, Config{Refresh: time.Hour}, s.url)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for s.bundles.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches in 5 s", s.bundles.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		nodes []string
		want  string
	}{
		{nil, "1 to 64 nodes"},
		{make([]string, MaxNodes+1), "1 to 64 nodes"},
		{[]string{"ftp://node"}, "base URL"},
		{[]string{"http://node/?q=1"}, "base URL"},
		{[]string{"node:8080"}, "base URL"},
		{[]string{"http://node/", "http://node"}, "given twice"},
	} {
		if _, err := New(Config{Nodes: c.nodes}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v", c.nodes, err)
		}
	}
}

func TestBundleBound(t *testing.T) {
	if _, err := New(Config{Nodes: []string{"http://node"}, MaxBundle: DefaultMaxBundle + 1}); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("%v", err)
	}
	// A bundle over the bound is an error entry, not a truncated one.
	s := newStub(t, 1, func(http.ResponseWriter, *http.Request) {})
	r, _, _ := startRelay(t, Config{MaxBundle: 4}, s.url)
	if e := r.directory().Nodes[0]; e.Bundle != nil || !strings.Contains(e.Error, "more than 4 bytes") {
		t.Errorf("%+v", e)
	}
}

func TestParseDirectory(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"version":2,"nodes":[]}`, "version 2"},
		{`{"nodes":`, "not valid JSON"},
		{`{"version":1,"nodes":[{"id":"x","bundle":"!!"}]}`, "not valid JSON"},
		{`{"version":1,"nodes":[` + strings.Repeat(`{},`, MaxNodes) + `{}]}`, "65 nodes"},
	} {
		if _, err := ParseDirectory([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.in, err)
		}
	}
	if _, err := ParseDirectory(make([]byte, MaxDirectory+1)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("oversized: %v", err)
	}
}
