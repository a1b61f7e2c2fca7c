package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/relay/directory"
	"github.com/sworn-dev/sworn/wire"
)

// Typed errors of the SDK. Each is wrapped with the details.
var (
	// ErrNoVerifiedNode: no node passed the appraisal (NoVerifiedNodeError
	// says why each failed).
	ErrNoVerifiedNode = errors.New("no node passed the appraisal")
	// ErrReceiptInvalid: the answer's receipt does not verify.
	ErrReceiptInvalid = errors.New("the answer's receipt does not verify")
)

// NoVerifiedNodeError lists why each node failed the appraisal.
type NoVerifiedNodeError struct {
	Reasons map[string]string // node URL → why
}

func (e *NoVerifiedNodeError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoVerifiedNode.Error())
	for u, why := range e.Reasons {
		fmt.Fprintf(&b, "; %s: %s", u, why)
	}
	return b.String()
}

func (e *NoVerifiedNodeError) Unwrap() error { return ErrNoVerifiedNode }

// Pool is a set of nodes that passed the client's appraisal, refetched
// when a node rotates its keys.
type Pool struct {
	c     *Client
	urls  []string // direct nodes, or the ids of the relay's nodes
	relay string   // the relay's URL, or ""
	k     int      // candidates per request

	mu      sync.Mutex
	nodes   map[string]*Node
	reasons map[string]string
}

// NewPool appraises every node of urls and keeps those that pass. It fails
// with a *NoVerifiedNodeError when none does.
func (c *Client) NewPool(ctx context.Context, urls []string) (*Pool, error) {
	p := &Pool{c: c, urls: urls, k: 1, nodes: map[string]*Node{}, reasons: map[string]string{}}
	for _, u := range urls {
		p.refresh(ctx, u)
	}
	if len(p.nodes) == 0 {
		return nil, &NoVerifiedNodeError{Reasons: p.Reasons()}
	}
	return p, nil
}

// NewRelayPool reads the directory of the relay at relayURL, appraises
// every node's bundle on this machine, and keeps those that pass. Each
// request is then encrypted to k of them at random (a multi-candidate
// request; k = 1: a plain one), sent through the relay, which hands it to
// one of them.
func (c *Client) NewRelayPool(ctx context.Context, relayURL string, k int) (*Pool, error) {
	if k < 1 || k > wire.MaxCandidates {
		return nil, fmt.Errorf("candidates: %d; use 1 to %d", k, wire.MaxCandidates)
	}
	p := &Pool{c: c, relay: strings.TrimSuffix(relayURL, "/"), k: k, nodes: map[string]*Node{}, reasons: map[string]string{}}
	if err := p.refreshRelay(ctx); err != nil {
		return nil, err
	}
	if len(p.nodes) == 0 {
		return nil, &NoVerifiedNodeError{Reasons: p.Reasons()}
	}
	return p, nil
}

// ErrRelayUnreachable: the relay's directory could not be read.
var ErrRelayUnreachable = errors.New("the relay is unreachable")

func (p *Pool) refreshRelay(ctx context.Context) error {
	d, err := directory.Fetch(ctx, p.c.http(), p.relay)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRelayUnreachable, err)
	}
	nodes, reasons := map[string]*Node{}, map[string]string{}
	var ids []string
	for _, e := range d.Nodes {
		ids = append(ids, e.ID)
		if e.Error != "" {
			reasons[e.ID] = "the relay could not fetch its bundle: " + e.Error
			continue
		}
		b, err := attest.ParseBundle(e.Bundle)
		if err == nil {
			var n *Node
			if n, err = p.c.VerifyBundle(ctx, p.relay+"/sworn/v1/nodes/"+e.ID, b); err == nil {
				n.Relay = p.relay
				nodes[e.ID] = n
				continue
			}
		}
		reasons[e.ID] = err.Error()
	}
	p.mu.Lock()
	p.urls, p.nodes, p.reasons = ids, nodes, reasons
	p.mu.Unlock()
	return nil
}

func (p *Pool) refresh(ctx context.Context, u string) {
	if p.relay != "" { // the whole directory, read again
		p.refreshRelay(ctx)
		return
	}
	n, err := p.c.Verify(ctx, u)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		delete(p.nodes, u)
		p.reasons[u] = err.Error()
		return
	}
	delete(p.reasons, u)
	p.nodes[u] = n
}

// Nodes returns the verified nodes.
func (p *Pool) Nodes() []*Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Node, 0, len(p.nodes))
	for _, u := range p.urls {
		if n, ok := p.nodes[u]; ok {
			out = append(out, n)
		}
	}
	return out
}

// Reasons says why the nodes that are not in the pool failed.
func (p *Pool) Reasons() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for u, r := range p.reasons {
		out[u] = r
	}
	return out
}

// pick returns up to k verified nodes, at random.
func (p *Pool) pick() ([]*Node, error) {
	ns := p.Nodes()
	if len(ns) == 0 {
		return nil, &NoVerifiedNodeError{Reasons: p.Reasons()}
	}
	rand.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
	return ns[:min(p.k, len(ns))], nil
}

// Do sends req to verified nodes (one, or k candidates through a relay).
// When a node no longer holds the key (it rotated), the pool refetches and
// appraises the bundles again and retries once.
func (p *Pool) Do(ctx context.Context, req *http.Request) (*Response, error) {
	ns, err := p.pick()
	if err != nil {
		return nil, err
	}
	body, err := bodyBytes(req)
	if err != nil {
		return nil, err
	}
	resp, err := p.c.DoMulti(ctx, ns, withBody(req, body))
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusUnprocessableEntity {
		for _, n := range ns {
			p.refresh(ctx, n.URL)
		}
		if ns, err = p.pick(); err != nil {
			return nil, err
		}
		resp, err = p.c.DoMulti(ctx, ns, withBody(req, body))
	}
	return resp, err
}

// Transport is an http.RoundTripper that sends each request, encrypted, to
// a verified node of the pool and verifies the answer's receipt before the
// last byte of the body is returned. The official OpenAI SDKs work through
// it unchanged (openai-go: option.WithHTTPClient(&http.Client{Transport: t})).
//
// The response carries the trailers Sworn-Receipt (the receipt id) and
// Sworn-Node once the body has been read; a receipt that does not verify
// fails the last read with ErrReceiptInvalid.
type Transport struct {
	Pool *Pool
	// Store, when set, keeps every verified receipt with its bundle.
	Store *ReceiptStore
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.Pool.Do(req.Context(), req)
	if err != nil {
		return nil, err
	}
	hr := &http.Response{
		Status: fmt.Sprintf("%d %s", resp.Status, http.StatusText(resp.Status)), StatusCode: resp.Status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: resp.Header, ContentLength: -1, Request: req,
		Trailer: http.Header{"Sworn-Receipt": nil, "Sworn-Node": nil},
	}
	resp.keep = false // the receipt is checked against the streamed digest
	hr.Body = &verifiedBody{t: t, resp: resp, hr: hr, ctx: req.Context()}
	return hr, nil
}

// verifiedBody passes the answer through as it streams, but holds back
// the bytes of the latest read until the next one arrives, so that the
// last bytes (for a stream, usually its last event) are returned only once
// the receipt verified. Reads alternate between two buffers: the one that
// holds the bytes held back, and the other.
type verifiedBody struct {
	t       *Transport
	n       *Node // the node that answered, once the receipt verified
	resp    *Response
	hr      *http.Response
	ctx     context.Context
	bufs    [2][]byte
	cur     int    // the buffer of pending
	pending []byte // held back
	out     []byte // releasable
	tail    []byte // releasable after out, at the end
	eof     bool
	err     error
}

func (v *verifiedBody) Read(p []byte) (int, error) {
	for len(v.out) == 0 {
		switch {
		case len(v.tail) > 0:
			v.out, v.tail = v.tail, nil
		case v.err != nil:
			return 0, v.err
		case v.eof:
			return 0, io.EOF
		default:
			v.fill()
		}
	}
	n := copy(p, v.out)
	v.out = v.out[n:]
	return n, nil
}

// fill reads more of the answer into the buffer that pending is not in:
// what was pending becomes releasable and the new bytes pending, or, at
// the end of an answer whose receipt verified, all of it releasable.
func (v *verifiedBody) fill() {
	if v.bufs[0] == nil {
		v.bufs = [2][]byte{make([]byte, 32<<10), make([]byte, 32<<10)}
	}
	free := v.bufs[1-v.cur]
	k, err := v.resp.Body.Read(free)
	switch {
	case err == io.EOF:
		if ferr := v.finish(); ferr != nil {
			v.err, v.pending = ferr, nil
			return
		}
		v.out, v.tail, v.pending, v.eof = v.pending, free[:k], nil, true
	case err != nil:
		v.err, v.pending = err, nil
	case k > 0:
		v.out, v.pending, v.cur = v.pending, free[:k], 1-v.cur
	}
}

// finish verifies the receipt at the end of the body.
func (v *verifiedBody) finish() error {
	n, rec, err := v.resp.answered()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	v.n = n
	// The pool appraised the node's bundle when it verified the node;
	// the receipt is checked against that same bundle, without appraising
	// it again (CheckReceipt does the whole offline verification).
	if e := n.Bundle.Freshness.Epoch; e != nil && !e.Contains(v.t.Pool.c.now()) {
		return fmt.Errorf("%w: the node's bundle expired during the answer", ErrReceiptInvalid)
	}
	rc, _ := v.resp.Receipt()
	sec := rec.Check(n.Bundle, v.t.Pool.c.now(), v.resp.exchange(), nil)
	if sec.Verdict != attest.Affirming {
		st := sec.FirstFailure()
		if st == nil {
			return fmt.Errorf("%w: %s", ErrReceiptInvalid, sec.Verdict)
		}
		return fmt.Errorf("%w: %s: %s", ErrReceiptInvalid, st.ID, st.Detail)
	}
	id := ReceiptID(rc)
	if v.t.Store != nil {
		if _, err := v.t.Store.Put(rc, v.n.Bundle); err != nil {
			return fmt.Errorf("keeping the receipt: %v", err)
		}
	}
	v.hr.Trailer.Set("Sworn-Receipt", id)
	v.hr.Trailer.Set("Sworn-Node", v.n.Describe())
	return nil
}

func (v *verifiedBody) Close() error { return v.resp.Body.Close() }

// ReceiptID names a receipt: the first 16 bytes of its SHA-256, in hex.
func ReceiptID(receipt []byte) string {
	h := sha256.Sum256(receipt)
	return hex.EncodeToString(h[:16])
}

// Describe names the node's release and launch measurement, for the
// Sworn-Node header.
func (n *Node) Describe() string {
	var parts []string
	if n.Result.Release != nil {
		if rel, ok := n.Result.Release.Claims["release"].(string); ok {
			parts = append(parts, "release="+rel)
		}
	}
	for _, name := range n.Result.DeviceNames() {
		if m, ok := n.Result.Devices[name].Claims["measurement"].(string); ok {
			parts = append(parts, "measurement="+m)
			break
		}
	}
	if n.Result.Simulated {
		parts = append(parts, "simulated")
	}
	return strings.Join(parts, "; ")
}

func bodyBytes(req *http.Request) ([]byte, error) {
	if req.Body == nil {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(io.LimitReader(req.Body, 16<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 16<<20 {
		return nil, errors.New("the request body is larger than 16 MiB")
	}
	return b, nil
}

func withBody(req *http.Request, b []byte) *http.Request {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	r.ContentLength = int64(len(b))
	return r
}
