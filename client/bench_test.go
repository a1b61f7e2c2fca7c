package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/internal/plainhop"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/relay"
)

var benchBody = `{"model":"echo","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("token ", 128) + `"}]}`

// stream posts a 256-token streamed chat completion and reads it,
// returning the time to the first byte.
func stream(b *testing.B, hc *http.Client, u string) time.Duration {
	start := time.Now()
	resp, err := hc.Post(u+"/v1/chat/completions", "application/json", strings.NewReader(benchBody))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	var ttft time.Duration
	for first := true; ; first = false {
		n, err := resp.Body.Read(buf)
		if first && n > 0 {
			ttft = time.Since(start)
		}
		if err == io.EOF {
			return ttft
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func reportStream(b *testing.B, ttft time.Duration, elapsed time.Duration) {
	b.ReportMetric(float64(ttft.Microseconds())/float64(b.N), "µs-ttft")
	b.ReportMetric(float64(256*b.N)/(elapsed-ttft).Seconds(), "tokens/s")
}

// BenchmarkProxyRelayNode: proxy → relay → node → echo, the answer's
// receipt verified by the proxy before its last byte (the bundle cached).
func BenchmarkProxyRelayNode(b *testing.B) {
	u, _ := startNode(b, 1, echo.Options{})
	r, _ := relay.New(relay.Config{Nodes: []string{u}, Logger: slog.New(slog.DiscardHandler)})
	defer r.Close()
	r.Refresh(context.Background())
	rs := httptest.NewServer(r.Handler())
	defer rs.Close()
	pool, err := (&client.Client{Policy: simPolicy(b, 0)}).NewRelayPool(context.Background(), rs.URL, 1)
	if err != nil {
		b.Fatal(err)
	}
	px := httptest.NewServer(&client.Proxy{Transport: &client.Transport{Pool: pool}})
	defer px.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var ttft time.Duration
	start := time.Now()
	for b.Loop() {
		ttft += stream(b, hc, px.URL)
	}
	reportStream(b, ttft, time.Since(start))
}

// BenchmarkThreePlaintextHops is the baseline: the same three hops as
// plaintext httputil.ReverseProxys in front of the same echo engine.
func BenchmarkThreePlaintextHops(b *testing.B) {
	eng := httptest.NewServer(echo.New(echo.Options{}))
	defer eng.Close()
	target := eng.URL
	for range 3 {
		hop, err := plainhop.New(target)
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(hop)
		defer srv.Close()
		target = srv.URL
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var ttft time.Duration
	start := time.Now()
	for b.Loop() {
		ttft += stream(b, hc, target)
	}
	reportStream(b, ttft, time.Since(start))
}

// BenchmarkColdDirectory16: the first request's setup with a cold
// directory of 16 nodes: fetch it and appraise every bundle, with a fresh
// appraiser (no cache).
func BenchmarkColdDirectory16(b *testing.B) {
	rs := startRelay(b, 16)
	pol := simPolicy(b, 0)
	for b.Loop() {
		pool, err := (&client.Client{Policy: pol}).NewRelayPool(context.Background(), rs.URL, 2)
		if err != nil || len(pool.Nodes()) != 16 {
			b.Fatalf("%v", err)
		}
	}
}
