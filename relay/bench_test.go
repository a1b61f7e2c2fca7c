package relay

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/internal/plainhop"
	"github.com/sworn-dev/sworn/node/echo"
)

// benchPrompt makes the echo engine answer with about 256 tokens (as in
// node's benchmarks).
var benchPrompt = strings.Repeat("token ", 128)

func benchBody() string {
	return `{"model":"echo","stream":true,"messages":[{"role":"user","content":"` + benchPrompt + `"}]}`
}

// streamOnce reads one streamed answer and returns the time to its first
// byte.
func streamOnce(b *testing.B, do func() (io.ReadCloser, error)) time.Duration {
	start := time.Now()
	body, err := do()
	if err != nil {
		b.Fatal(err)
	}
	defer body.Close()
	buf := make([]byte, 32<<10)
	var ttft time.Duration
	for {
		n, err := body.Read(buf)
		if n > 0 && ttft == 0 {
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

// report gives the mean time to first token and the streaming rate after
// it, as node's benchmarks do.
func report(b *testing.B, ttft time.Duration, tokens int, elapsed time.Duration) {
	b.ReportMetric(float64(ttft.Microseconds())/float64(b.N), "µs-ttft")
	b.ReportMetric(float64(tokens)/(elapsed-ttft).Seconds(), "tokens/s")
}

func benchSworn(b *testing.B, viaRelay bool) {
	p := simPolicy(b)
	_, nodeURL := startSimNode(b, p, echo.Options{})
	c := &client.Client{Policy: p}
	var n *client.Node
	var err error
	if viaRelay {
		_, relayURL, _ := startRelay(b, Config{}, nodeURL)
		n = verifyDirectory(b, c, relayURL)[0]
	} else {
		n, err = c.Verify(context.Background(), nodeURL)
		if err != nil {
			b.Fatal(err)
		}
	}
	var ttft time.Duration
	tokens := 0
	start := time.Now()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(benchBody()))
		req.Header.Set("Content-Type", "application/json")
		ttft += streamOnce(b, func() (io.ReadCloser, error) {
			r, err := c.Do(context.Background(), n, req)
			if err != nil {
				return nil, err
			}
			return r.Body, nil
		})
		tokens += 256
	}
	report(b, ttft, tokens, time.Since(start))
}

// BenchmarkStreamRelay: a 256-token streamed chat completion, client →
// relay → node → echo: encrypted, forwarded, decrypted, each token sealed
// as a chunk and streamed back through the relay.
func BenchmarkStreamRelay(b *testing.B) { benchSworn(b, true) }

// BenchmarkStreamNodeDirect: the same, client → node, without the relay.
func BenchmarkStreamNodeDirect(b *testing.B) { benchSworn(b, false) }

// BenchmarkStreamTwoProxies is the baseline: the same request in
// plaintext through two httputil.ReverseProxy hops (as relay and node) to
// the same echo engine.
func BenchmarkStreamTwoProxies(b *testing.B) {
	eng := httptest.NewServer(echo.New(echo.Options{}))
	defer eng.Close()
	hop := func(to string) *httptest.Server {
		rp, err := plainhop.New(to)
		if err != nil {
			b.Fatal(err)
		}
		return httptest.NewServer(rp)
	}
	inner := hop(eng.URL)
	defer inner.Close()
	outer := hop(inner.URL)
	defer outer.Close()
	var ttft time.Duration
	tokens := 0
	start := time.Now()
	for b.Loop() {
		ttft += streamOnce(b, func() (io.ReadCloser, error) {
			resp, err := http.Post(outer.URL+"/v1/chat/completions", "application/json", strings.NewReader(benchBody()))
			if err != nil {
				return nil, err
			}
			return resp.Body, nil
		})
		tokens += 256
	}
	report(b, ttft, tokens, time.Since(start))
}
