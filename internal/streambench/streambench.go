// Package streambench measures streamed answers for sworn's benchmarks:
// a path through sworn beside its plaintext baseline (Hop), in the same
// run, interleaved, so that both see the same load.
//
// An answer is a streamed chat completion of Tokens tokens from the echo
// engine. Its time to first token (TTFT) is from the request to the first
// byte of the answer; its rate is the tokens over the time after that.
// Benchmarks run the engine two ways: paced at Pace tokens per second,
// the rate a user of a stream sees (sworn must keep up with the engine),
// and unpaced, where the answer takes what the CPUs allow. Unpaced, the
// rate after the first byte says little: a plaintext hop that has read
// the whole answer by then hands it over in one read, and whether it has
// swings from run to run; the whole answer's time is the steadier figure.
package streambench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/client"
)

// Tokens is the length of the benchmark answer; Body asks for it.
const Tokens = 256

// Pace is the engine's pace in the paced benchmarks, in tokens per second
// of one stream: fifty times a fast engine's, so that any per-token cost
// of sworn's above a few microseconds shows in the rate.
const Pace = 10000

// Body is the request body of the benchmark answer: the echo engine
// answers with its prompt, about Tokens tokens.
var Body = `{"model":"echo","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("token ", Tokens/2) + `"}]}`

// Open sends the benchmark request on one path and returns the answer's
// body.
type Open func() (io.ReadCloser, error)

// Compare sends the request through sworn and then through plain in every
// iteration of b, reads each answer to its end, and reports, from the
// medians over the iterations: each path's TTFT, rate and whole answer
// time, the TTFT sworn adds, and sworn's rate as a fraction of plain's.
func Compare(b *testing.B, sworn, plain Open) {
	var s, p times
	for b.Loop() {
		s.add(b, sworn)
		p.add(b, plain)
	}
	b.StopTimer()
	ttftS, restS := s.medians()
	ttftP, restP := p.medians()
	b.ReportMetric(ttftS/1e3, "sworn-ttft-µs")
	b.ReportMetric(ttftP/1e3, "plain-ttft-µs")
	b.ReportMetric((ttftS-ttftP)/1e3, "added-ttft-µs")
	b.ReportMetric(Tokens/(restS/1e9), "sworn-tokens/s")
	b.ReportMetric(Tokens/(restP/1e9), "plain-tokens/s")
	b.ReportMetric(restP/restS, "rate-vs-plain")
	b.ReportMetric(s.answer()/1e3, "sworn-answer-µs")
	b.ReportMetric(p.answer()/1e3, "plain-answer-µs")
}

// times are the TTFTs of the answers on one path and the times after them.
type times struct{ ttft, rest []time.Duration }

func (t *times) add(b *testing.B, open Open) {
	start := time.Now()
	body, err := open()
	if err != nil {
		b.Fatal(err)
	}
	defer body.Close()
	first, err := Drain(body, start)
	if err != nil {
		b.Fatal(err)
	}
	t.ttft, t.rest = append(t.ttft, first), append(t.rest, time.Since(start)-first)
}

// Drain reads r to its end and returns how long after start its first
// bytes came.
func Drain(r io.Reader, start time.Time) (first time.Duration, err error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 && first == 0 {
			first = time.Since(start)
		}
		if err == io.EOF {
			return first, nil
		}
		if err != nil {
			return first, err
		}
	}
}

func (t *times) medians() (ttft, rest float64) { return median(t.ttft), median(t.rest) }

// answer is the median time from request to the answer's last byte.
func (t *times) answer() float64 {
	all := make([]time.Duration, len(t.ttft))
	for i := range all {
		all[i] = t.ttft[i] + t.rest[i]
	}
	return median(all)
}

func median(ds []time.Duration) float64 {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return float64(ds[len(ds)/2])
}

// Post sends the benchmark request to the OpenAI-compatible server at
// base (a proxy, a hop or an engine) with hc.
func Post(hc *http.Client, base string) Open {
	return func() (io.ReadCloser, error) {
		resp, err := hc.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(Body))
		if err != nil {
			return nil, err
		}
		return resp.Body, nil
	}
}

// Plain starts hops plaintext hops (Hop) in front of the engine at
// engine, closed when tb ends, and returns the path through them.
func Plain(tb testing.TB, engine string, hops int) Open {
	tb.Helper()
	target := engine
	for range hops {
		h, err := Hop(target)
		if err != nil {
			tb.Fatal(err)
		}
		srv := httptest.NewServer(h)
		tb.Cleanup(srv.Close)
		target = srv.URL
	}
	return Post(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}, target)
}

// Sworn sends the benchmark request with the Go client to node n, which
// c has verified.
func Sworn(c *client.Client, n *client.Node) Open {
	return func() (io.ReadCloser, error) {
		req, err := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(Body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		r, err := c.Do(context.Background(), n, req)
		if err != nil {
			return nil, err
		}
		return r.Body, nil
	}
}
