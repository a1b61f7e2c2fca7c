package relay

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sworn-dev/sworn/node"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/wire"
)

// simPolicy is the simulated starter policy for a node without GPUs.
func simPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	o, err := sim.StarterOptions(0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("sim", policy.Starter(o))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startSimNode runs a sworn node on simulated hardware with the echo
// engine, as node's own tests do.
func startSimNode(t testing.TB, p *policy.Policy, eo echo.Options) (*node.Node, string) {
	t.Helper()
	eng := httptest.NewServer(echo.New(eo))
	t.Cleanup(eng.Close)
	u, _ := url.Parse(eng.URL)
	n, err := node.New(node.Config{Platform: &node.SimPlatform{Seed: 1}, Policy: p, Engine: u, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return n, srv.URL
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRelay runs a relay in front of nodes, refreshed once; its logs go
// to the returned buffer (debug level).
func startRelay(t testing.TB, cfg Config, nodes ...string) (*Relay, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Nodes = nodes
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Refresh(t.Context())
	srv := httptest.NewUnstartedServer(r.Handler())
	srv.Config.ErrorLog = ServerErrorLog(cfg.Logger)
	srv.Start()
	t.Cleanup(func() { srv.Close(); r.Close() })
	return r, srv.URL, logs
}

// stub is a node stand-in: it serves a bundle (any bytes: the relay does
// not parse it) and a real key configuration list, and answers
// /sworn/v1/ohttp with serve.
type stub struct {
	url     string
	keys    []*wire.PrivateKey
	bundles atomic.Int32 // bundle requests
	notMod  atomic.Int32 // of which answered 304
	etag    atomic.Value // string
	maxAge  atomic.Value // string
	down    atomic.Bool
	srv     *httptest.Server
}

func newStub(t testing.TB, firstID uint8, serve http.HandlerFunc) *stub {
	t.Helper()
	keys, err := wire.NodeKeys(firstID)
	if err != nil {
		t.Fatal(err)
	}
	s := &stub{keys: keys}
	s.etag.Store(`"e1"`)
	s.maxAge.Store("60")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sworn/v1/bundle", func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "epoch ended", http.StatusServiceUnavailable)
			return
		}
		s.bundles.Add(1)
		etag := s.etag.Load().(string)
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "public, max-age="+s.maxAge.Load().(string))
		if r.Header.Get("If-None-Match") == etag {
			s.notMod.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("bundle " + etag))
	})
	mux.HandleFunc("GET /.well-known/ohttp-keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", s.etag.Load().(string))
		w.Write(s.keyList())
	})
	mux.HandleFunc("POST /sworn/v1/ohttp", serve)
	s.srv = httptest.NewServer(mux)
	s.url = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stub) keyList() []byte {
	var cfgs []wire.KeyConfig
	for _, k := range s.keys {
		cfgs = append(cfgs, k.Config())
	}
	return wire.MarshalKeyConfigs(cfgs)
}

// plainBody is a body that routes to key k: its 7-byte OHTTP header, then
// rest (not a valid ciphertext: the relay never opens it).
func plainBody(k *wire.PrivateKey, rest []byte) []byte {
	c := k.Config()
	hdr := []byte{c.ID, byte(c.KEM >> 8), byte(c.KEM), 0, 1, 0, 2}
	return append(hdr, rest...)
}

func post(t testing.TB, hc *http.Client, u, mt string, body []byte, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", mt)
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// directory decodes the directory as the relay serves it now.
func (r *Relay) directory() *Directory {
	d, err := ParseDirectory(r.snap.Load().json)
	if err != nil {
		panic(err)
	}
	return d
}
