package monitor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/monitor"
	"github.com/sworn-dev/sworn/tlog/server"
)

// testLog is a log with three releases, served through a proxy that can
// rewrite what the log serves.
type testLog struct {
	verifier *tlog.Verifier
	url      string
	leaves   [][]byte
	// rewrite, when set, changes a response body for a path.
	rewrite func(path string, body []byte) []byte
	// endless, when set, picks paths answered with an endless stream.
	endless func(path string) bool
}

// streamEndless writes bytes until the client goes away.
func streamEndless(w http.ResponseWriter) {
	buf := bytes.Repeat([]byte("A"), 64<<10)
	for {
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}

func newTestLog(t *testing.T) *testLog {
	t.Helper()
	gen := func(kind tlog.KeyKind, name string) (note.Signer, string) {
		s, v, err := tlog.GenerateKey(kind, name)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := note.NewSigner(s)
		if err != nil {
			t.Fatal(err)
		}
		return signer, v
	}
	logS, logV := gen(tlog.KindLog, "log.monitor.test")
	pubS, pubV := gen(tlog.KindPublisher, "ci.monitor.test")
	pubVer, _ := note.NewVerifier(pubV)
	s, err := server.New(context.Background(), server.Config{Dir: t.TempDir(), Signer: logS, Publishers: []note.Verifier{pubVer}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	tl := &testLog{}
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
		r := tlog.Template(time.Now().Add(-time.Minute))
		r.Release.Version = v
		if err := r.Sign(pubS); err != nil {
			t.Fatal(err)
		}
		leaf, err := r.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), leaf); err != nil {
			t.Fatal(err)
		}
		tl.leaves = append(tl.leaves, leaf)
	}
	backend := httptest.NewServer(s.Handler())
	t.Cleanup(backend.Close)
	u, _ := url.Parse(backend.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if tl.rewrite == nil {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body.Close()
		body = tl.rewrite(resp.Request.URL.Path, body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
		return nil
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tl.endless != nil && tl.endless(r.URL.Path) {
			streamEndless(w)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	tl.url = front.URL + "/"
	if tl.verifier, err = tlog.NewVerifier(&policy.Log{Origin: "log.monitor.test", Key: logV, Publishers: []string{pubV}}); err != nil {
		t.Fatal(err)
	}
	return tl
}

func (tl *testLog) poll(t *testing.T) (string, error) {
	t.Helper()
	var out strings.Builder
	m, err := monitor.New(tl.url, tl.verifier, t.TempDir(), &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Poll(context.Background())
	return out.String(), err
}

func bundleOf(leaves [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range leaves {
		b.Write([]byte{byte(len(l) >> 8), byte(len(l))})
		b.Write(l)
	}
	return b.Bytes()
}

func TestMonitorHonestLog(t *testing.T) {
	tl := newTestLog(t)
	out, err := tl.poll(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
		if !strings.Contains(out, "release sworn-node@"+v) {
			t.Errorf("release %s not reported:\n%s", v, out)
		}
	}
}

// TestMonitorTamperedEntries: the log serves an entry bundle (and leaf
// tile to match) that its signed checkpoint does not commit to.
func TestMonitorTamperedEntries(t *testing.T) {
	tl := newTestLog(t)
	// Swap entry 1's record for entry 0's, everywhere the monitor looks.
	forged := [][]byte{tl.leaves[0], tl.leaves[0], tl.leaves[2]}
	tl.rewrite = func(path string, body []byte) []byte {
		switch {
		case strings.HasPrefix(path, "/tile/entries/"):
			var b api.EntryBundle
			if b.UnmarshalText(body) == nil && len(b.Entries) == 3 {
				return bundleOf(forged)
			}
		case strings.HasPrefix(path, "/tile/0/"):
			var tile []byte
			for _, l := range forged {
				tile = append(tile, rfc6962.DefaultHasher.HashLeaf(l)...)
			}
			return tile
		}
		return body
	}
	out, err := tl.poll(t)
	if !errors.Is(err, monitor.ErrInconsistent) {
		t.Fatalf("tampered entries: %v\n%s", err, out)
	}
	if strings.Contains(out, "sworn-node@1.0.0") && strings.Count(out, "sworn-node@1.0.0") > 1 {
		t.Fatalf("the forged entry was reported:\n%s", out)
	}
}

// TestMonitorShortBundle: a log that serves fewer entries than its
// checkpoint holds is inconsistent; the monitor does not loop on it.
func TestMonitorShortBundle(t *testing.T) {
	tl := newTestLog(t)
	tl.rewrite = func(path string, body []byte) []byte {
		if strings.HasPrefix(path, "/tile/entries/") {
			return bundleOf(tl.leaves[:2])
		}
		return body
	}
	done := make(chan error, 1)
	go func() { _, err := tl.poll(t); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, monitor.ErrInconsistent) {
			t.Fatalf("short bundle: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the monitor loops on a short entry bundle")
	}
}

// TestMonitorEndlessAnswers: a log that streams endless bytes for its
// checkpoint, a hash tile or an entry bundle fails the poll fast with an
// error naming the URL and the limit, and the monitor's memory stays small.
func TestMonitorEndlessAnswers(t *testing.T) {
	for _, c := range []struct {
		path  string
		limit int64
	}{
		{"/checkpoint", tlog.MaxCheckpointSize},
		{"/tile/0/", tlog.MaxHashTileSize},
		{"/tile/entries/", tlog.MaxEntryBundleSize},
	} {
		t.Run(c.path, func(t *testing.T) {
			tl := newTestLog(t)
			tl.endless = func(path string) bool { return strings.HasPrefix(path, c.path) }
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := tl.poll(t)
			runtime.ReadMemStats(&after)
			var tooLarge *tlog.ResponseTooLargeError
			if !errors.As(err, &tooLarge) && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d bytes", c.limit))) {
				t.Fatalf("endless %s: %v", c.path, err)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), fmt.Sprint(c.limit)) {
				t.Errorf("the error names neither the URL nor the limit: %v", err)
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
