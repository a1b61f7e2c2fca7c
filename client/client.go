// Package client is sworn's client SDK: it verifies a node's evidence
// bundle on the user's own machine with the one appraiser, encrypts each
// request to the node's attested keys (chunked OHTTP, X-Wing unless the
// policy allows classical suites), streams the answer back, and checks its
// receipt offline.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sworn-dev/sworn/appraiser"
	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/wire"
	"github.com/sworn-dev/sworn/wire/bhttp"
)

// MaxBundle bounds a fetched bundle.
const MaxBundle = attest.MaxBundleSize

// Client verifies nodes and sends them encrypted requests.
type Client struct {
	// Policy is what a node's bundle must pass. Required.
	Policy *policy.Policy
	// AllowClassical permits a node key without post-quantum protection
	// (as the policy's wire.allow_classical does).
	AllowClassical bool
	// HTTP sends requests (http.DefaultClient if nil).
	HTTP *http.Client
	// Appraiser appraises bundles (appraiser.New() if nil).
	Appraiser *appraiser.Appraiser
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Node is a node that passed the client's appraisal.
type Node struct {
	// URL is the node's base URL: the node itself, or its path through a
	// relay (which reaches this node only).
	URL string
	// Relay is the relay's base URL when the node is reached through one:
	// multi-candidate requests go there, and the relay picks the node.
	Relay string
	// Bundle is the node's evidence; Result its appraisal.
	Bundle *attest.Bundle
	Result *attest.Result
	// Key and Suite are what requests are encrypted to.
	Key   wire.KeyConfig
	Suite wire.Suite
}

// StatusError is a node's refusal before decryption (docs/node.md): 422
// means the node no longer holds the key (it rotated).
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("the node refused the request (%d %s): %s", e.Status, http.StatusText(e.Status), e.Message)
}

// ErrNotVerified is returned (wrapped) when a node's bundle does not pass.
var ErrNotVerified = errors.New("the node's evidence does not pass the policy")

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) appraiser() *appraiser.Appraiser {
	if c.Appraiser == nil {
		c.Appraiser = appraiser.New()
	}
	return c.Appraiser
}

// Verify fetches a node's passport bundle from nodeURL and appraises it.
// It returns the node only when the verdict is affirming.
func (c *Client) Verify(ctx context.Context, nodeURL string) (*Node, error) {
	nodeURL = strings.TrimSuffix(nodeURL, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, nodeURL+"/sworn/v1/bundle", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the bundle of %s: %v", nodeURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBundle+1))
	if err != nil {
		return nil, fmt.Errorf("fetching the bundle of %s: %v", nodeURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the node %s does not serve its bundle (%s): %s", nodeURL, resp.Status, firstLine(data))
	}
	b, err := attest.ParseBundle(data)
	if err != nil {
		return nil, fmt.Errorf("the bundle of %s: %v", nodeURL, err)
	}
	return c.VerifyBundle(ctx, nodeURL, b)
}

// VerifyBundle appraises a bundle obtained otherwise (from a relay's
// directory) for the node at nodeURL.
func (c *Client) VerifyBundle(ctx context.Context, nodeURL string, b *attest.Bundle) (*Node, error) {
	if c.Policy == nil {
		return nil, errors.New("client: no policy")
	}
	r := c.appraiser().Appraise(ctx, b, appraiser.Options{At: c.now(), Policy: c.Policy})
	if r.Verdict != attest.Affirming {
		return nil, fmt.Errorf("%w: %s is %s: %s", ErrNotVerified, nodeURL, r.Verdict, r.FirstProblem())
	}
	cfgs, err := b.Keys.Configs()
	if err != nil {
		return nil, err
	}
	k, s, err := wire.Choose(cfgs, c.AllowClassical || c.Policy.Wire.AllowClassical)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", nodeURL, err)
	}
	return &Node{URL: strings.TrimSuffix(nodeURL, "/"), Bundle: b, Result: r, Key: k, Suite: s}, nil
}

// Response is a node's answer. Its Body streams the decrypted content;
// once Body returned io.EOF, Receipt holds the answer's receipt.
type Response struct {
	Status int
	Header http.Header
	Body   io.ReadCloser
	// Request is the binary HTTP request as encrypted (for the receipt).
	Request []byte
	// Candidates are the nodes the request was encrypted to.
	Candidates []*Node

	hasher  *receipt.ResponseHasher
	keep    bool // keep the content for Content (not through Transport)
	content bytes.Buffer
	receipt []byte
	done    bool
}

// Receipt returns the receipt once the body has been read to its end.
func (r *Response) Receipt() ([]byte, error) {
	if !r.done {
		return nil, errors.New("the answer has not been read to its end")
	}
	if r.receipt == nil {
		return nil, errors.New("the node's answer carried no receipt")
	}
	return r.receipt, nil
}

// Content returns the content read so far. An answer read through
// Transport is not kept: its receipt is checked against a digest made as
// it streamed.
func (r *Response) Content() []byte { return r.content.Bytes() }

// exchange is what the receipt is checked against: the request as
// encrypted, and the answer's status and content digest.
func (r *Response) exchange() *receipt.Exchange {
	d := r.hasher.Sum()
	return &receipt.Exchange{Request: r.Request, Response: &receipt.Response{Status: r.Status, Digest: &d}}
}

// Do sends req to the node, encrypted as a chunked OHTTP request, and
// returns the answer as it streams. req's URL path must be one the node
// serves (/v1/chat/completions, …); its host is not sent.
func (c *Client) Do(ctx context.Context, n *Node, req *http.Request) (*Response, error) {
	return c.DoMulti(ctx, []*Node{n}, req)
}

// DoMulti sends req encrypted to every node of ns (one content key, wrapped
// to each: docs/protocol.md, "Multi-candidate requests") through the relay
// they share (their URL), which hands it to one of them; with one node it
// is a plain chunked OHTTP request. The answer's receipt says which node
// answered.
func (c *Client) DoMulti(ctx context.Context, ns []*Node, req *http.Request) (*Response, error) {
	if len(ns) == 0 || len(ns) > wire.MaxCandidates {
		return nil, fmt.Errorf("a request goes to 1 to %d candidate nodes, not %d", wire.MaxCandidates, len(ns))
	}
	b, err := bhttp.FromHTTPRequest(req)
	if err != nil {
		return nil, err
	}
	b.Scheme, b.Authority = "https", "node"
	b.Header = keep(b.Header, "content-type", "accept")
	b.Header = append(b.Header, bhttp.Field{Name: "date", Value: c.now().UTC().Format(http.TimeFormat)})
	plain, err := b.Encode()
	if err != nil {
		return nil, err
	}
	var sealed bytes.Buffer
	var mt string
	var open func(io.Reader) io.Reader
	if len(ns) == 1 {
		w, err := wire.NewChunkedRequestWriter(ns[0].Key, ns[0].Suite, &sealed)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(plain); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		mt, open = wire.MediaTypeChunkedReq, w.OpenResponse
	} else {
		keys := make([]wire.KeyConfig, len(ns))
		for i, n := range ns {
			if n.Suite != ns[0].Suite {
				return nil, fmt.Errorf("the candidates do not share a suite (%s, %s)", ns[0].Suite, n.Suite)
			}
			keys[i] = n.Key
		}
		msg, mc, err := wire.EncapsulateMulti(keys, ns[0].Suite, plain)
		if err != nil {
			return nil, err
		}
		sealed.Write(msg)
		mt, open = wire.MediaTypeMultiReq, mc.OpenResponse
	}
	target := ns[0].URL
	if len(ns) > 1 {
		if target = ns[0].Relay; target == "" {
			return nil, errors.New("a multi-candidate request goes through a relay, and these nodes are reached directly")
		}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/sworn/v1/ohttp", &sealed)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", mt)
	hr.Header.Set("Incremental", "?1")
	resp, err := c.http().Do(hr)
	if err != nil {
		return nil, fmt.Errorf("sending to %s: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return nil, &StatusError{Status: resp.StatusCode, Message: firstLine(msg)}
	}
	br, err := bhttp.NewReader(open(resp.Body), &bhttp.Options{Strict: true})
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("the node's answer: %v", err)
	}
	out := &Response{Status: br.Response().Status, Header: br.Response().Header.Header(), Request: plain, Candidates: ns, keep: true}
	out.hasher = receipt.NewResponseHasher(uint16(out.Status))
	if out.Header == nil {
		out.Header = http.Header{}
	}
	out.Body = &body{r: br, resp: out, raw: resp.Body}
	return out, nil
}

// Answered returns the candidate whose receipt key signed the answer's
// receipt (the node that answered), once the body was read to its end.
func (r *Response) Answered() (*Node, error) {
	n, _, err := r.answered()
	return n, err
}

// answered is Answered, with the receipt it parsed.
func (r *Response) answered() (*Node, *receipt.Receipt, error) {
	rc, err := r.Receipt()
	if err != nil {
		return nil, nil, err
	}
	p, err := receipt.Parse(rc)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range r.Candidates {
		if receipt.KeyID(n.Bundle.Keys.ReceiptKey) == p.Payload.NodeKey {
			return n, p, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: it is signed by none of the %d candidates the request was encrypted to", ErrReceiptInvalid, len(r.Candidates))
}

// body reads the decrypted content; at its end it reads the trailer.
type body struct {
	r    *bhttp.Reader
	resp *Response
	raw  io.ReadCloser
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.resp.hasher.Write(p[:n])
	if b.resp.keep {
		b.resp.content.Write(p[:n])
	}
	if err == io.EOF {
		tr, terr := b.r.Trailer()
		if terr != nil {
			return n, terr
		}
		if v := tr.Get(receipt.Trailer); v != "" {
			b.resp.receipt, _ = base64.RawURLEncoding.DecodeString(v)
		}
		b.resp.done = true
		// Read the HTTP body to its end, so the connection is reused.
		io.Copy(io.Discard, io.LimitReader(b.raw, 64<<10))
	}
	return n, err
}

func (b *body) Close() error { return b.raw.Close() }

// CheckReceipt verifies an answer's receipt offline against the bundle of
// the node that answered (n, or when n is nil the candidate whose key
// signed it) and what the client sent and received.
func (c *Client) CheckReceipt(ctx context.Context, n *Node, r *Response) (*attest.Result, error) {
	rc, err := r.Receipt()
	if err != nil {
		return nil, err
	}
	if n == nil {
		if n, err = r.Answered(); err != nil {
			return nil, err
		}
	}
	res := receipt.Appraise(ctx, rc, n.Bundle, attest.Options{At: c.now(), Policy: c.Policy, Verifiers: c.appraiser().Verifiers(), Release: c.appraiser().Release()}, r.exchange())
	return res, nil
}

func keep(fs bhttp.Fields, names ...string) bhttp.Fields {
	var out bhttp.Fields
	for _, f := range fs {
		for _, n := range names {
			if f.Name == n {
				out = append(out, f)
			}
		}
	}
	return out
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
