package relay

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/internal/streambench"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/wire"
	"github.com/sworn-dev/sworn/wire/bhttp"
)

// verifyDirectory fetches the relay's directory and verifies every node
// in it as a client does, to be reached through the relay.
func verifyDirectory(t testing.TB, c *client.Client, relayURL string) []*client.Node {
	t.Helper()
	d, err := FetchDirectory(t.Context(), nil, relayURL)
	if err != nil {
		t.Fatal(err)
	}
	var out []*client.Node
	for _, e := range d.Nodes {
		if e.Error != "" || e.Bundle == nil {
			t.Fatalf("node %s: %q", e.ID, e.Error)
		}
		b, err := attest.ParseBundle(e.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.VerifyBundle(t.Context(), NodeURL(relayURL, e.ID), b)
		if err != nil {
			t.Fatal(err)
		}
		// The keys the relay routes by are the attested ones.
		cfgs, _ := b.Keys.Configs()
		if !bytes.Equal(wire.MarshalKeyConfigs(cfgs), e.Keys) {
			t.Fatalf("node %s: the directory's keys are not the bundle's", e.ID)
		}
		out = append(out, n)
	}
	return out
}

func chat(content string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(
		`{"model":"echo","stream":true,"messages":[{"role":"user","content":"`+content+`"}]}`))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestEndToEnd: two simulated nodes behind a relay; the client verifies
// each bundle from the relay's directory and streams a chat completion to
// each through the relay, receipt checked, both through the node's own
// path and (for the first node, which the key header routes to) through
// the relay's plain forwarding URL.
func TestEndToEnd(t *testing.T) {
	p := simPolicy(t)
	_, u1 := startSimNode(t, p, echo.Options{TokensPerSecond: 200})
	_, u2 := startSimNode(t, p, echo.Options{TokensPerSecond: 200})
	_, relayURL, _ := startRelay(t, Config{}, u1, u2)
	c := &client.Client{Policy: p}
	nodes := verifyDirectory(t, c, relayURL)
	if len(nodes) != 2 || nodes[0].URL != NodeURL(relayURL, NodeID(u1)) || nodes[1].URL != NodeURL(relayURL, NodeID(u2)) {
		t.Fatalf("directory nodes: %+v", nodes)
	}
	first := *nodes[0]
	first.URL = relayURL
	for i, n := range append(nodes, &first) {
		start := time.Now()
		resp, err := c.Do(t.Context(), n, chat("one two three four five six seven eight"))
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		firstByte, err := streambench.Drain(resp.Body, start)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		total := time.Since(start)
		content := string(resp.Content())
		if resp.Status != 200 || !strings.Contains(content, "eight") || !strings.Contains(content, "[DONE]") {
			t.Fatalf("node %d: %d %q", i, resp.Status, content)
		}
		// Paced at 200 tokens/s, the answer takes tens of ms: its first
		// bytes come well before its end (streamed, not buffered).
		if firstByte > total*3/4 {
			t.Errorf("node %d: first byte after %v of %v: not streamed", i, firstByte, total)
		}
		r, err := c.CheckReceipt(t.Context(), n, resp)
		if err != nil || r.Verdict != attest.Affirming {
			t.Fatalf("node %d: receipt %v %v", i, err, r.FirstProblem())
		}
	}
}

// multiAsk sends one multi-candidate request to all nodes' X-Wing keys
// through the relay and returns the status and the answer.
func multiAsk(t *testing.T, relayURL string, nodes []*client.Node, content string) (int, string) {
	t.Helper()
	var cands []wire.KeyConfig
	for _, n := range nodes {
		cands = append(cands, n.Key)
	}
	req := &bhttp.Request{Method: "POST", Scheme: "https", Authority: "node", Path: "/v1/chat/completions",
		Header:  bhttp.Fields{{Name: "content-type", Value: "application/json"}, {Name: "date", Value: time.Now().UTC().Format(http.TimeFormat)}},
		Content: []byte(`{"model":"echo","stream":true,"messages":[{"role":"user","content":"` + content + `"}]}`)}
	plain, err := req.Encode()
	if err != nil {
		t.Fatal(err)
	}
	msg, cc, err := wire.EncapsulateMulti(cands, nodes[0].Suite, plain)
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(http.MethodPost, relayURL+"/sworn/v1/ohttp", bytes.NewReader(msg))
	hr.Header.Set("Content-Type", wire.MediaTypeMultiReq)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	br, err := bhttp.NewReader(cc.OpenResponse(resp.Body), &bhttp.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	return br.Response().Status, string(out)
}

// nodeCount reads a node's count of answered multi-candidate requests.
func nodeCount(t *testing.T, nodeURL string) string {
	resp, err := http.Get(nodeURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, `sworn_node_requests_total{kind="multi",outcome="ok"}`) {
			return strings.Fields(l)[1]
		}
	}
	return "0"
}

// TestMultiCandidate: a request encrypted to both nodes is answered
// through the relay, which hands each to one of the candidates at random
// (over 16 requests, both are chosen); a request naming no node of the
// relay is 404.
func TestMultiCandidate(t *testing.T) {
	p := simPolicy(t)
	_, u1 := startSimNode(t, p, echo.Options{})
	_, u2 := startSimNode(t, p, echo.Options{})
	_, relayURL, _ := startRelay(t, Config{}, u1, u2)
	nodes := verifyDirectory(t, &client.Client{Policy: p}, relayURL)
	for range 16 {
		status, out := multiAsk(t, relayURL, nodes, "multi canary")
		if status != 200 || !strings.Contains(out, "canary") || !strings.Contains(out, "[DONE]") {
			t.Fatalf("%d %q", status, out)
		}
	}
	if c1, c2 := nodeCount(t, u1), nodeCount(t, u2); c1 == "0" || c2 == "0" {
		t.Errorf("the relay did not spread the requests over the candidates: %s and %s", c1, c2)
	}

	other, err := wire.NodeKeys(1)
	if err != nil {
		t.Fatal(err)
	}
	stranger := &client.Node{Key: other[0].Config(), Suite: nodes[0].Suite}
	if status, out := multiAsk(t, relayURL, []*client.Node{stranger}, "x"); status != http.StatusNotFound || !strings.Contains(out, "none of the request's 1 candidate keys") {
		t.Errorf("a request for no node: %d %q", status, out)
	}
}

// TestRouteByKeyHeader: without a node path, a plain request goes to the
// node that holds its key id and KEM, whichever it is.
func TestRouteByKeyHeader(t *testing.T) {
	var got [2]int
	stubs := [2]*stub{}
	for i := range stubs {
		stubs[i] = newStub(t, uint8(1+2*i), func(w http.ResponseWriter, r *http.Request) { got[i]++ })
	}
	_, relayURL, _ := startRelay(t, Config{}, stubs[0].url, stubs[1].url)
	for i, s := range stubs {
		for _, k := range s.keys {
			if resp, _ := post(t, nil, relayURL+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(k, []byte("x")), nil); resp.StatusCode != 200 {
				t.Fatalf("stub %d key %d: %d", i, k.Config().ID, resp.StatusCode)
			}
		}
	}
	if got != [2]int{2, 2} {
		t.Fatalf("requests per stub: %v", got)
	}
	// Through a node's own path, a key of another node is refused.
	resp, body := post(t, nil, NodeURL(relayURL, NodeID(stubs[0].url))+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(stubs[1].keys[0], nil), nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "node "+NodeID(stubs[0].url)+" does not hold key id 3") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
