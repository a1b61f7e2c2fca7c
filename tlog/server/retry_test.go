package server_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/server"
)

// TestPublishRetriesUntilLogIsUp: the log's port refuses connections for
// the first attempts (a log restarting), then the log comes up: Publish
// retries and gets its proof.
func TestPublishRetriesUntilLogIsUp(t *testing.T) {
	k := newKeys(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down: connections are refused
	s, err := server.New(context.Background(), server.Config{Dir: t.TempDir(), Signer: k.logS, Publishers: []note.Verifier{k.pubVer}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	up := make(chan *httptest.Server, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			up <- nil
			return
		}
		hs := &httptest.Server{Listener: l, Config: &http.Server{Handler: s.Handler()}}
		hs.Start()
		up <- hs
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leaf := record(t, k, "5.0.0")
	p, _, err := tlog.Publish(ctx, nil, "http://"+addr, leaf)
	if hs := <-up; hs != nil {
		defer hs.Close()
	}
	if err != nil {
		t.Fatalf("publish to a log that came up: %v", err)
	}
	if !bytes.Equal(p.Record, leaf) || p.Index != 0 {
		t.Fatalf("proof of entry %d", p.Index)
	}
	// A log that stays down: Publish gives up with the last error once
	// its context is done.
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if _, _, err := tlog.Publish(short, nil, "http://127.0.0.1:1", leaf); err == nil {
		t.Fatal("publish to a closed port succeeded")
	}
}

// TestPublishRetryAfterLostAnswer: the log logs the record but the
// connection drops before its answer (a log killed mid-answer, a proxy
// restart): the retry is answered 409 with the entry's index and gets the
// proof, and the record is logged once.
func TestPublishRetryAfterLostAnswer(t *testing.T) {
	k := newKeys(t, 0)
	s, ls := startLog(t, k, t.TempDir(), nil, 0, k.logS)
	var calls atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/add" && calls.Add(1) == 1 {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, r) // logged ...
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // ... but the answer is lost
			return
		}
		resp, err := http.DefaultTransport.RoundTrip(mustProxyReq(t, r, ls.URL))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for h, v := range resp.Header {
			w.Header()[h] = v
		}
		w.WriteHeader(resp.StatusCode)
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		w.Write(b.Bytes())
	}))
	defer front.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leaf := record(t, k, "6.0.0")
	p, _, err := tlog.Publish(ctx, nil, front.URL, leaf)
	if err != nil {
		t.Fatalf("publish after a lost answer: %v", err)
	}
	if calls.Load() < 2 || p.Index != 0 || !bytes.Equal(p.Record, leaf) {
		t.Fatalf("%d calls, entry %d", calls.Load(), p.Index)
	}
	if size, err := s.Reader().IntegratedSize(ctx); err != nil || size != 1 {
		t.Fatalf("log size %d (%v), want 1", size, err)
	}
}

func mustProxyReq(t *testing.T, r *http.Request, base string) *http.Request {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.Path, r.Body)
	if err != nil {
		t.Error(err)
	}
	req.Header = r.Header.Clone()
	return req
}

// TestRepublishAfterWitnessAdded: a record logged while the log had no
// witnesses, published again once the log runs with one, is reported as
// already logged and proven on a checkpoint the witness cosigned.
func TestRepublishAfterWitnessAdded(t *testing.T) {
	k := newKeys(t, 1)
	dir := t.TempDir()
	s, ls := startLog(t, k, dir, nil, 0, k.logS)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leaf := record(t, k, "7.0.0")
	first, already, err := tlog.Publish(ctx, nil, ls.URL, leaf)
	if err != nil || already {
		t.Fatalf("first publish: %v (already %v)", err, already)
	}
	if st := tlog.AppraiseRelease(first.Marshal(), k.policy(1), time.Now(), nil, nil, nil); st.Verdict == attest.Affirming {
		t.Fatal("an uncosigned proof met a quorum of 1")
	}
	ls.Close()
	s.Close(ctx)

	_, ws := startWitness(t, k, 0, t.TempDir())
	_, ls2 := startLog(t, k, dir, []string{ws.URL}, 1, k.logS)
	again, already, err := tlog.Publish(ctx, nil, ls2.URL, leaf)
	if err != nil || !already || again.Index != first.Index {
		t.Fatalf("republish: %v (already %v)", err, already)
	}
	if st := tlog.AppraiseRelease(again.Marshal(), k.policy(1), time.Now(), nil, nil, nil); st.Verdict != attest.Affirming {
		t.Fatalf("the republished proof is not witnessed: %+v", st.Steps)
	}
}
