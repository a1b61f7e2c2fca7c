package node

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/internal/streambench"
	"github.com/sworn-dev/sworn/node/echo"
)

// paces are the engine's paces of the streaming benchmarks.
var paces = []struct {
	name string
	eo   echo.Options
}{{"paced", echo.Options{TokensPerSecond: streambench.Pace}}, {"unpaced", echo.Options{}}}

// BenchmarkStreamRatio: a 256-token streamed chat completion through the
// node — the client's encryption, the node's decryption, the echo engine,
// each token sealed as a chunk, the client's decryption and the receipt —
// beside the same request to the same engine behind a plaintext
// httputil.ReverseProxy, with the engine paced and unpaced
// (internal/streambench).
func BenchmarkStreamRatio(b *testing.B) {
	for _, pc := range paces {
		eo := pc.eo
		b.Run(pc.name, func(b *testing.B) {
			tn := startNode(b, 0, eo, nil)
			c := &client.Client{Policy: tn.policy}
			n, err := c.Verify(context.Background(), tn.url)
			if err != nil {
				b.Fatal(err)
			}
			eng := httptest.NewServer(echo.New(eo))
			defer eng.Close()
			streambench.Compare(b, streambench.Sworn(c, n), streambench.Plain(b, eng.URL, 1))
		})
	}
}

// BenchmarkColdStart8GPUs: from nothing to a node that serves, with 8
// simulated GPUs (keys, evidence, self-appraisal).
func BenchmarkColdStart8GPUs(b *testing.B) {
	u, _ := url.Parse("http://127.0.0.1:1")
	p := simPolicy(b, 8)
	for b.Loop() {
		n, err := New(Config{Platform: &SimPlatform{Seed: 1, GPUs: 8}, Policy: p, Engine: u})
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Rotate(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleStreamMemory: the heap held per open stream that waits on
// a slow engine (paced at one token a minute).
func BenchmarkIdleStreamMemory(b *testing.B) {
	tn := startNode(b, 0, echo.Options{TokensPerSecond: 1.0 / 60}, nil)
	c := &client.Client{Policy: tn.policy}
	n, err := c.Verify(context.Background(), tn.url)
	if err != nil {
		b.Fatal(err)
	}
	const streams = 50
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ctx, cancel := context.WithCancel(context.Background())
		var open []io.ReadCloser
		for range streams {
			req, _ := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(streambench.Body))
			req.Header.Set("Content-Type", "application/json")
			r, err := c.Do(ctx, n, req)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 256)
			r.Body.Read(buf) // the role chunk
			open = append(open, r.Body)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/streams/1024, "KiB/stream")
		cancel()
		for _, o := range open {
			o.Close()
		}
	}
}
