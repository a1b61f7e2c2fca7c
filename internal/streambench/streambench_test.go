package streambench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// slow is an answer whose first byte comes after wait and its rest after
// a further wait.
type slow struct {
	wait time.Duration
	n    int
}

func (s *slow) Read(p []byte) (int, error) {
	if s.n == 2 {
		return 0, io.EOF
	}
	time.Sleep(s.wait)
	s.n++
	return copy(p, "x"), nil
}

func (s *slow) Close() error { return nil }

func TestCompare(t *testing.T) {
	r := testing.Benchmark(func(b *testing.B) {
		Compare(b,
			func() (io.ReadCloser, error) { return &slow{wait: 4 * time.Millisecond}, nil },
			func() (io.ReadCloser, error) { return &slow{wait: 1 * time.Millisecond}, nil })
	})
	if r.N == 0 {
		t.Fatal("the benchmark did not run")
	}
	x := r.Extra
	// sworn's answer is about 4× slower in each phase.
	if x["rate-vs-plain"] <= 0 || x["rate-vs-plain"] > 0.6 || x["added-ttft-µs"] < 2000 || x["sworn-answer-µs"] < 2*x["plain-answer-µs"] {
		t.Fatalf("metrics %v", x)
	}
}

func TestHop(t *testing.T) {
	eng := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from the engine") }))
	defer eng.Close()
	h, err := Hop(eng.URL)
	if err != nil {
		t.Fatal(err)
	}
	hop := httptest.NewServer(h)
	defer hop.Close()
	resp, err := http.Post(hop.URL, "text/plain", strings.NewReader(Body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "from the engine" {
		t.Fatalf("through the hop: %q", b)
	}
}
