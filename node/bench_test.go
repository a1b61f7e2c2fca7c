package node

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/internal/plainhop"
	"github.com/sworn-dev/sworn/node/echo"
)

// benchPrompt makes the echo engine answer with about 256 tokens.
var benchPrompt = strings.Repeat("token ", 128)

func chatBody() string {
	return `{"model":"echo","stream":true,"messages":[{"role":"user","content":"` + benchPrompt + `"}]}`
}

// streamOnce reads one streamed answer and returns the time to its first
// byte and the number of reads (about one per token).
func streamOnce(b *testing.B, do func() (io.ReadCloser, error)) (time.Duration, int) {
	start := time.Now()
	body, err := do()
	if err != nil {
		b.Fatal(err)
	}
	defer body.Close()
	buf := make([]byte, 32<<10)
	var ttft time.Duration
	reads := 0
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if reads == 0 {
				ttft = time.Since(start)
			}
			reads++
		}
		if err == io.EOF {
			return ttft, reads
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// report gives the mean time to first token, and the streaming rate:
// tokens over the time after each stream's first token (the setup of a
// request — its encryption, the engine's start — is in the TTFT).
func report(b *testing.B, ttft time.Duration, tokens int, elapsed time.Duration) {
	b.ReportMetric(float64(ttft.Microseconds())/float64(b.N), "µs-ttft")
	b.ReportMetric(float64(tokens)/(elapsed-ttft).Seconds(), "tokens/s")
}

// BenchmarkStreamNode: a 256-token streamed chat completion through the
// node: client encryption, decryption, the echo engine, each token sealed
// as a chunk, the client's decryption and the receipt.
func BenchmarkStreamNode(b *testing.B) {
	tn := startNode(b, 0, echo.Options{}, nil)
	c := &client.Client{Policy: tn.policy}
	n, err := c.Verify(context.Background(), tn.url)
	if err != nil {
		b.Fatal(err)
	}
	var ttft time.Duration
	tokens := 0
	start := time.Now()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(chatBody()))
		req.Header.Set("Content-Type", "application/json")
		t, _ := streamOnce(b, func() (io.ReadCloser, error) {
			r, err := c.Do(context.Background(), n, req)
			if err != nil {
				return nil, err
			}
			return r.Body, nil
		})
		ttft += t
		tokens += 256
	}
	report(b, ttft, tokens, time.Since(start))
}

// BenchmarkStreamReverseProxy is the baseline: the same request to the
// same echo engine behind a plaintext httputil.ReverseProxy.
func BenchmarkStreamReverseProxy(b *testing.B) {
	eng := httptest.NewServer(echo.New(echo.Options{}))
	defer eng.Close()
	rp, err := plainhop.New(eng.URL)
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	var ttft time.Duration
	tokens := 0
	start := time.Now()
	for b.Loop() {
		t, _ := streamOnce(b, func() (io.ReadCloser, error) {
			resp, err := hc.Post(proxy.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody()))
			if err != nil {
				return nil, err
			}
			return resp.Body, nil
		})
		ttft += t
		tokens += 256
	}
	report(b, ttft, tokens, time.Since(start))
}

// BenchmarkStreamRatio interleaves BenchmarkStreamNode's request and
// BenchmarkStreamReverseProxy's in each iteration and reports, from the
// medians, the node's streaming rate as a fraction of the plaintext
// proxy's and the time to first token it adds: both see the same load,
// which separate benchmarks on a shared machine do not.
func BenchmarkStreamRatio(b *testing.B) {
	tn := startNode(b, 0, echo.Options{}, nil)
	c := &client.Client{Policy: tn.policy}
	n, err := c.Verify(context.Background(), tn.url)
	if err != nil {
		b.Fatal(err)
	}
	eng := httptest.NewServer(echo.New(echo.Options{}))
	defer eng.Close()
	rp, err := plainhop.New(eng.URL)
	if err != nil {
		b.Fatal(err)
	}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var swornTTFT, plainTTFT, swornRest, plainRest []time.Duration
	timed := func(ttfts, rests *[]time.Duration, do func() (io.ReadCloser, error)) {
		t0 := time.Now()
		t, _ := streamOnce(b, do)
		*ttfts, *rests = append(*ttfts, t), append(*rests, time.Since(t0)-t)
	}
	for b.Loop() {
		timed(&swornTTFT, &swornRest, func() (io.ReadCloser, error) {
			req, _ := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(chatBody()))
			req.Header.Set("Content-Type", "application/json")
			r, err := c.Do(context.Background(), n, req)
			if err != nil {
				return nil, err
			}
			return r.Body, nil
		})
		timed(&plainTTFT, &plainRest, func() (io.ReadCloser, error) {
			resp, err := hc.Post(proxy.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody()))
			if err != nil {
				return nil, err
			}
			return resp.Body, nil
		})
	}
	b.StopTimer()
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2])
	}
	b.ReportMetric(median(swornRest)/1e3, "µs-stream-node")
	b.ReportMetric(median(plainRest)/1e3, "µs-stream-proxy")
	b.ReportMetric(median(plainRest)/median(swornRest), "rate-vs-proxy")
	b.ReportMetric((median(swornTTFT)-median(plainTTFT))/1e3, "µs-added-ttft")
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
			req, _ := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(chatBody()))
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
