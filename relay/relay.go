// Package relay is sworn's relay (docs/protocol.md, "The relay"): it serves
// a directory of its nodes' evidence bundles and key configurations,
// refreshed from the nodes, and forwards encrypted requests to one node and
// streams the encrypted answers back. It never decrypts and never appraises
// (clients do both); it strips everything that identifies the client, and
// it logs no body and no client address.
package relay

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sworn-dev/sworn/relay/directory"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultRefresh       = 30 * time.Second
	DefaultMaxRequest    = 16 << 20
	DefaultMaxForwards   = 1024
	DefaultDialTimeout   = 5 * time.Second
	DefaultHeaderTimeout = 2 * time.Minute
	DefaultIdleTimeout   = 5 * time.Minute
	DefaultFetchTimeout  = 10 * time.Second
	DefaultMaxBundle     = directory.MaxBundle
)

// MaxNodes bounds the nodes of one relay; MaxKeys a node's encoded key
// configuration list (16 configurations of the largest key).
const (
	MaxNodes = directory.MaxNodes
	MaxKeys  = directory.MaxKeys
)

// Config configures a relay.
type Config struct {
	// Nodes are the nodes' base URLs (http or https), 1 to MaxNodes.
	Nodes []string
	// Refresh is the longest time between two fetches of a node's bundle
	// (DefaultRefresh if 0); a node's entry is also refreshed when its
	// Cache-Control max-age runs out.
	Refresh time.Duration
	// MaxRequest bounds a forwarded request body (DefaultMaxRequest).
	MaxRequest int64
	// MaxForwards bounds the requests forwarded at once; more are answered
	// 503 (DefaultMaxForwards).
	MaxForwards int
	// DialTimeout bounds connecting to a node, HeaderTimeout the wait for
	// its response header, IdleTimeout the wait for the next byte of a
	// streamed answer (or for the client to take it). A stream has no total
	// time limit.
	DialTimeout, HeaderTimeout, IdleTimeout time.Duration
	// FetchTimeout bounds one directory fetch from a node; MaxBundle the
	// bundle it may serve (DefaultMaxBundle, also the most it may be, so
	// that clients can read the directory: MaxDirectory).
	FetchTimeout time.Duration
	MaxBundle    int64
	// Logger receives one line per request: request id, node id, kind,
	// status, outcome, byte counts and duration; never a body, a header
	// or an address (slog.Default if nil).
	Logger *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Relay is a running relay. Serve Handler; call Refresh once and Run in
// the background to keep the directory current.
type Relay struct {
	cfg     Config
	log     *slog.Logger
	fetcher *http.Client
	fwd     *http.Transport
	slots   chan struct{}
	metrics *metrics

	mu    sync.Mutex // serializes refreshes; guards nodes
	nodes []*nodeState
	snap  atomic.Pointer[snapshot]
}

// NodeID names a node in the directory, the logs and the metrics: the
// first 16 hex digits of SHA-256 of its base URL.
func NodeID(nodeURL string) string { return shortHash([]byte(nodeURL)) }

// NodeURL is the base URL through which a client reaches the node with
// the given id via the relay at relayURL: client.Node.URL for that node.
// Its requests go to that node only, which matters when several nodes hold
// keys with the same key id and KEM (the default: every node's first
// epoch uses ids 1 and 2).
func NodeURL(relayURL, id string) string {
	return strings.TrimSuffix(relayURL, "/") + "/sworn/v1/nodes/" + id
}

// New checks the configuration and returns a relay whose directory lists
// every node as not yet fetched.
func New(cfg Config) (*Relay, error) {
	if len(cfg.Nodes) == 0 || len(cfg.Nodes) > MaxNodes {
		return nil, fmt.Errorf("a relay needs 1 to %d nodes, not %d", MaxNodes, len(cfg.Nodes))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Refresh, DefaultRefresh)
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.HeaderTimeout, DefaultHeaderTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.FetchTimeout, DefaultFetchTimeout)
	if cfg.MaxRequest <= 0 {
		cfg.MaxRequest = DefaultMaxRequest
	}
	if cfg.MaxForwards <= 0 {
		cfg.MaxForwards = DefaultMaxForwards
	}
	if cfg.MaxBundle <= 0 {
		cfg.MaxBundle = DefaultMaxBundle
	}
	if cfg.MaxBundle > DefaultMaxBundle {
		return nil, fmt.Errorf("the bundle bound is %d bytes; at most %d, so that clients can read the directory", cfg.MaxBundle, DefaultMaxBundle)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Relay{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxForwards), metrics: newMetrics()}
	if r.log == nil {
		r.log = slog.Default()
	}
	seen := map[string]bool{}
	for _, raw := range cfg.Nodes {
		u, err := normalizeURL(raw)
		if err != nil {
			return nil, err
		}
		if seen[u] {
			return nil, fmt.Errorf("node URL %s is given twice", u)
		}
		seen[u] = true
		r.nodes = append(r.nodes, &nodeState{url: u, id: NodeID(u), err: "not fetched yet"})
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	// No proxy from the environment, no compression (the bytes pass as
	// they are), no redirects (RoundTrip follows none).
	r.fwd = &http.Transport{DialContext: dialer.DialContext, ResponseHeaderTimeout: cfg.HeaderTimeout,
		DisableCompression: true, MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: cfg.DialTimeout, MaxResponseHeaderBytes: 64 << 10}
	r.fetcher = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true,
		TLSHandshakeTimeout: cfg.DialTimeout, MaxResponseHeaderBytes: 64 << 10},
		Timeout:       cfg.FetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r.publish()
	return r, nil
}

func normalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("node URL %q: give the node's base URL, http(s)://host[:port][/path], with no query, fragment or user", excerpt(raw))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Handler serves the relay's endpoints: GET /sworn/v1/directory, POST
// /sworn/v1/ohttp (routed by the request's key header), POST
// /sworn/v1/nodes/{id}/sworn/v1/ohttp (to that node only; NodeURL), GET
// /healthz and GET /metrics.
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sworn/v1/directory", r.handleDirectory)
	mux.HandleFunc("POST /sworn/v1/ohttp", r.handleForward)
	mux.HandleFunc("POST /sworn/v1/nodes/{node}/sworn/v1/ohttp", r.handleForward)
	mux.HandleFunc("GET /healthz", r.handleHealth)
	mux.Handle("GET /metrics", r.metrics.handler())
	return mux
}

// Close closes idle connections to the nodes.
func (r *Relay) Close() {
	r.fwd.CloseIdleConnections()
	r.fetcher.CloseIdleConnections()
}

func requestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// excerpt bounds an untrusted string quoted in a message.
func excerpt(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func plainError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

var errTooLarge = errors.New("request body too large")
