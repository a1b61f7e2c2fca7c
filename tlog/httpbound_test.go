package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hostileLog answers POST /add with 409 naming entry 0 (or with endless
// bytes), and serves a two-entry log whose resource under endless is an
// endless stream.
func hostileLog(t *testing.T, leaf []byte, endless string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, endless) {
			buf := bytes.Repeat([]byte("A"), 64<<10)
			for {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}
		switch {
		case r.URL.Path == "/add":
			w.Header().Set(EntryIndexHeader, "0")
			http.Error(w, "duplicate", http.StatusConflict)
		case r.URL.Path == "/checkpoint":
			fmt.Fprintf(w, "hostile.test\n2\n%s\n\n— hostile.test AAAA\n", strings.Repeat("A", 43)+"=")
		case strings.HasPrefix(r.URL.Path, "/tile/entries/"):
			e := append([]byte{byte(len(leaf) >> 8), byte(len(leaf))}, leaf...)
			w.Write(append(e, e...))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPublishEndlessAnswers: every answer Publish reads from the log (the
// append's answer, and in 409 recovery the checkpoint, the entry bundle
// and the hash tiles) is bounded by its format: an endless stream fails
// fast with an error naming the URL and the limit.
func TestPublishEndlessAnswers(t *testing.T) {
	leaf := []byte(`{"a record":"its bytes do not matter here"}`)
	for _, c := range []struct {
		path  string
		limit int64
	}{
		{"/add", MaxProofSize},
		{"/checkpoint", MaxCheckpointSize},
		{"/tile/entries/", MaxEntryBundleSize},
		{"/tile/0/", MaxHashTileSize},
	} {
		t.Run(c.path, func(t *testing.T) {
			srv := hostileLog(t, leaf, c.path)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			_, _, err := Publish(ctx, nil, srv.URL, leaf)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), srv.URL+c.path) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d bytes", c.limit)) {
				t.Fatalf("endless %s: %v", c.path, err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(c.limit)+32<<20 {
				t.Errorf("allocated %d MiB reading an endless %s", alloc>>20, c.path)
			}
		})
	}
}

// TestBoundedBody: a body of exactly the limit reads whole; one byte more
// fails with a *ResponseTooLargeError, also when the length is declared.
func TestBoundedBody(t *testing.T) {
	for _, n := range []int{MaxCheckpointSize, MaxCheckpointSize + 1} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Has("chunked") {
				w.(http.Flusher).Flush()
			}
			w.Write(bytes.Repeat([]byte("x"), n))
		}))
		for _, q := range []string{"", "?chunked"} {
			resp, err := BoundedClient(nil).Get(srv.URL + "/checkpoint" + q)
			var body []byte
			if err == nil {
				var b bytes.Buffer
				_, err = b.ReadFrom(resp.Body)
				body = b.Bytes()
				resp.Body.Close()
			}
			var tooLarge *ResponseTooLargeError
			if n <= MaxCheckpointSize && (err != nil || len(body) != n) {
				t.Errorf("%d bytes%s: %v, %d read", n, q, err, len(body))
			}
			if n > MaxCheckpointSize && !errors.As(err, &tooLarge) {
				t.Errorf("%d bytes%s: %v", n, q, err)
			}
		}
		srv.Close()
	}
}
