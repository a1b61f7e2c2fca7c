package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/server"
	"github.com/sworn-dev/sworn/tlog/witness"
)

type keys struct {
	origin         string
	logS, pubS     note.Signer
	logV, pubV     string
	wS             []note.Signer
	wV             []string
	logVer, pubVer note.Verifier
}

func newKeys(t testing.TB, witnesses int) *keys {
	t.Helper()
	k := &keys{origin: "log.test/releases"}
	gen := func(kind tlog.KeyKind, name string) (string, string) {
		s, v, err := tlog.GenerateKey(kind, name)
		if err != nil {
			t.Fatal(err)
		}
		return s, v
	}
	s, v := gen(tlog.KindLog, k.origin)
	k.logS, _ = note.NewSigner(s)
	k.logV = v
	k.logVer, _ = note.NewVerifier(v)
	s, v = gen(tlog.KindPublisher, "ci.test")
	k.pubS, _ = note.NewSigner(s)
	k.pubV = v
	k.pubVer, _ = note.NewVerifier(v)
	for i := range witnesses {
		s, v := gen(tlog.KindWitness, fmt.Sprintf("w%d.test", i+1))
		cs, err := tlog.NewCosignerFromKey(s)
		if err != nil {
			t.Fatal(err)
		}
		k.wS = append(k.wS, cs)
		k.wV = append(k.wV, v)
	}
	return k
}

func (k *keys) policy(quorum int) *policy.Log {
	return &policy.Log{Origin: k.origin, Key: k.logV, Witnesses: k.wV, Quorum: quorum, Publishers: []string{k.pubV}}
}

func startWitness(t testing.TB, k *keys, i int, dir string) (*witness.Witness, *httptest.Server) {
	t.Helper()
	w, err := witness.New(witness.Config{Dir: dir, Signer: k.wS[i], Logs: []note.Verifier{k.logVer}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return w, srv
}

func startLog(t testing.TB, k *keys, dir string, wurls []string, quorum int, logS note.Signer) (*server.Server, *httptest.Server) {
	t.Helper()
	cfg := server.Config{Dir: dir, Signer: logS, Publishers: []note.Verifier{k.pubVer}}
	if len(wurls) > 0 {
		var pol strings.Builder
		var names []string
		for i, u := range wurls {
			fmt.Fprintf(&pol, "witness w%d %s %s\n", i, k.wV[i], u)
			names = append(names, fmt.Sprintf("w%d", i))
		}
		fmt.Fprintf(&pol, "group g %d %s\nquorum g\n", quorum, strings.Join(names, " "))
		g, err := tessera.NewWitnessGroupFromPolicy([]byte(pol.String()))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Witnesses = &g
	}
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close(context.Background())
	})
	return s, hs
}

func record(t testing.TB, k *keys, version string) []byte {
	t.Helper()
	r := tlog.Template(time.Now().Add(-time.Minute))
	r.Release.Version = version
	if err := r.Sign(k.pubS); err != nil {
		t.Fatal(err)
	}
	b, err := r.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEndToEnd: a log and two witnesses with quorum 2; publish; verify the
// proof offline.
func TestEndToEnd(t *testing.T) {
	k := newKeys(t, 2)
	_, w1 := startWitness(t, k, 0, t.TempDir())
	_, w2 := startWitness(t, k, 1, t.TempDir())
	_, ls := startLog(t, k, t.TempDir(), []string{w1.URL, w2.URL}, 2, k.logS)

	ctx := context.Background()
	var leaves [][]byte
	for i := range 3 {
		leaf := record(t, k, fmt.Sprintf("1.0.%d", i))
		leaves = append(leaves, leaf)
		p, _, err := tlog.Publish(ctx, nil, ls.URL, leaf)
		if err != nil {
			t.Fatal(err)
		}
		s := tlog.AppraiseRelease(p.Marshal(), k.policy(2), time.Now(), nil, nil, nil)
		if s.Verdict != attest.Affirming {
			t.Fatalf("entry %d: %+v", i, s.Steps)
		}
		t.Log(s.Step(tlog.StepWitnesses).Detail)
	}
	// A record that conflicts with a logged one (same release, other
	// bytes) is refused with 409.
	conflict := tlog.Template(time.Now().Add(-2 * time.Hour))
	conflict.Release.Version = "1.0.0"
	if err := conflict.Sign(k.pubS); err != nil {
		t.Fatal(err)
	}
	cb, _ := conflict.Canonical()
	_, _, err := tlog.Publish(ctx, nil, ls.URL, cb)
	if err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "other content") {
		t.Fatalf("duplicate: %v", err)
	}
	// Re-sending exactly a logged record (a retry after a lost answer)
	// adds nothing and yields that entry's proof, built from the tiles.
	again, already, err := tlog.Publish(ctx, nil, ls.URL, leaves[0])
	if err != nil || again.Index != 0 || !already {
		t.Fatalf("retry of entry 0: %v %+v", err, again)
	}
	if s := tlog.AppraiseRelease(again.Marshal(), k.policy(2), time.Now(), nil, nil, nil); s.Verdict != attest.Affirming {
		t.Fatalf("proof rebuilt from tiles: %+v", s.Steps)
	}
	// Records from an unknown publisher are refused with 403.
	r := tlog.Template(time.Now())
	other, _, _ := tlog.GenerateKey(tlog.KindPublisher, "mallory")
	os, _ := note.NewSigner(other)
	r.Sign(os)
	leaf, _ := r.Canonical()
	if _, _, err := tlog.Publish(ctx, nil, ls.URL, leaf); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("unknown publisher: %v", err)
	}
	// Non-canonical records are refused with 400.
	if _, _, err := tlog.Publish(ctx, nil, ls.URL, append([]byte(" "), record(t, k, "9")...)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad record: %v", err)
	}
	// The read API serves the checkpoint uncached and tiles immutable.
	resp, err := http.Get(ls.URL + "/checkpoint")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("checkpoint: %v %v", err, resp)
	}
	resp, err = http.Get(ls.URL + "/tile/0/000.p/3")
	if err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("tile: %v %v", err, resp)
	}
}

// TestSplitViewRefused: a second log with the same key and different
// entries is detected by a client and refused by the witness with 409.
func TestSplitViewRefused(t *testing.T) {
	k := newKeys(t, 1)
	wit, ws := startWitness(t, k, 0, t.TempDir())
	_, logA := startLog(t, k, t.TempDir(), []string{ws.URL}, 1, k.logS)
	ctx := context.Background()
	pa, _, err := tlog.Publish(ctx, nil, logA.URL, record(t, k, "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	// Log B: same key, no witness, different entry.
	_, logB := startLog(t, k, t.TempDir(), nil, 0, k.logS)
	pb, _, err := tlog.Publish(ctx, nil, logB.URL, record(t, k, "6.6.6"))
	if err != nil {
		t.Fatal(err)
	}
	// The witness refuses B's checkpoint with 409.
	for _, old := range []uint64{0, 1} {
		body := fmt.Sprintf("old %d\n\n%s", old, pb.Checkpoint)
		resp, err := http.Post(ws.URL+"/add-checkpoint", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		// old 0 is a stale view (answered with the witness's size); old 1
		// is a fork at the same size (answered as plain text, so that the
		// log does not retry from a size).
		wantType := "text/x.tlog.size"
		if old == 1 {
			wantType = "text/plain; charset=utf-8"
		}
		if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != wantType {
			t.Fatalf("old %d: witness answered %s (%s)", old, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
	if size, _ := wit.Latest(k.origin); size != 1 {
		t.Fatalf("witness size %d", size)
	}
	// A client that saw A's checkpoint detects the split view.
	st, _ := tlog.OpenState(t.TempDir())
	pol := k.policy(0)
	opts := &tlog.AppraiseOptions{State: st}
	if s := tlog.AppraiseRelease(pa.Marshal(), pol, time.Now(), nil, nil, opts); s.Step(tlog.StepConsistency).Status != attest.Pass {
		t.Fatalf("A: %+v", s.Steps)
	}
	s := tlog.AppraiseRelease(pb.Marshal(), pol, time.Now(), nil, nil, opts)
	if st := s.Step(tlog.StepConsistency); st == nil || st.Status != attest.Fail || !bytes.Contains([]byte(st.Detail), []byte("SPLIT VIEW")) {
		t.Fatalf("B: %+v", s.Steps)
	}
}

// TestWitnessRestart: a restarted witness keeps its state.
func TestWitnessRestart(t *testing.T) {
	k := newKeys(t, 1)
	dir := t.TempDir()
	w1, ws := startWitness(t, k, 0, dir)
	_, ls := startLog(t, k, t.TempDir(), []string{ws.URL}, 1, k.logS)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := tlog.Publish(ctx, nil, ls.URL, record(t, k, fmt.Sprintf("2.0.%d", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// A second instance on the same directory is refused while the first runs.
	if _, err := witness.New(witness.Config{Dir: dir, Signer: k.wS[0], Logs: []note.Verifier{k.logVer}}); err == nil {
		t.Fatal("a second witness on the same state directory started")
	}
	ws.Close()
	w1.Close()
	w2, err := witness.New(witness.Config{Dir: dir, Signer: k.wS[0], Logs: []note.Verifier{k.logVer}})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if size, _ := w2.Latest(k.origin); size != 5 {
		t.Fatalf("restarted witness has size %d, want 5", size)
	}
}

// TestOneLogPerDirectory: a second log on the same directory is refused
// while the first runs, and allowed once it is closed.
func TestOneLogPerDirectory(t *testing.T) {
	k := newKeys(t, 0)
	dir := t.TempDir()
	cfg := server.Config{Dir: dir, Signer: k.logS, Publishers: []note.Verifier{k.pubVer}}
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second log on one directory: %v", err)
	}
	s.Close(context.Background())
	s2, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	s2.Close(context.Background())
}

// TestTilesServedOnlyWhenPublished: tiles are immutable to caches, so only
// what the published checkpoint covers is served, and a partial path gets
// exactly the entries it names.
func TestTilesServedOnlyWhenPublished(t *testing.T) {
	k := newKeys(t, 0)
	_, ls := startLog(t, k, t.TempDir(), nil, 0, k.logS)
	for i := range 3 {
		if _, _, err := tlog.Publish(context.Background(), nil, ls.URL, record(t, k, fmt.Sprintf("3.0.%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path string) (int, []byte) {
		resp, err := http.Get(ls.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, tc := range []struct {
		path    string
		status  int
		hashes  int // for hash tiles
		entries int // for entry bundles
	}{
		{"/tile/0/000.p/3", 200, 3, 0},
		{"/tile/0/000.p/2", 200, 2, 0},
		{"/tile/0/000.p/4", 404, 0, 0},
		{"/tile/0/000", 404, 0, 0},
		{"/tile/0/001.p/1", 404, 0, 0},
		{"/tile/1/000.p/1", 404, 0, 0},
		{"/tile/entries/000.p/3", 200, 0, 3},
		{"/tile/entries/000.p/2", 200, 0, 2},
		{"/tile/entries/000.p/4", 404, 0, 0},
		{"/tile/entries/000", 404, 0, 0},
	} {
		status, body := get(tc.path)
		if status != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, status, tc.status)
			continue
		}
		if tc.hashes > 0 && len(body) != tc.hashes*32 {
			t.Errorf("%s: %d bytes, want %d hashes", tc.path, len(body), tc.hashes)
		}
		if tc.entries > 0 {
			var b api.EntryBundle
			if err := b.UnmarshalText(body); err != nil || len(b.Entries) != tc.entries {
				t.Errorf("%s: %v, %d entries, want %d", tc.path, err, len(b.Entries), tc.entries)
			}
		}
	}
}

// TestAppendRefusals: what the append endpoint refuses, and with which status.
func TestAppendRefusals(t *testing.T) {
	k := newKeys(t, 0)
	_, ls := startLog(t, k, t.TempDir(), nil, 0, k.logS)
	post := func(url string, body []byte) int {
		resp, err := http.Post(url+"/add", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := record(t, k, "4.0.0")
	if code := post(ls.URL, good); code != http.StatusOK {
		t.Fatalf("good record: %d", code)
	}
	// An allowed publisher's key id with a signature over other bytes.
	forged := bytes.Replace(good, []byte(`"4.0.0"`), []byte(`"4.0.1"`), 1)
	if bytes.Equal(forged, good) {
		t.Fatal("the record does not hold its version")
	}
	if code := post(ls.URL, forged); code != http.StatusForbidden {
		t.Errorf("tampered record from an allowed publisher: %d, want 403", code)
	}
	if code := post(ls.URL, bytes.Repeat([]byte("x"), tlog.MaxRecordSize+1)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", code)
	}
	if code := post(ls.URL, []byte("{")); code != http.StatusBadRequest {
		t.Errorf("malformed record: %d, want 400", code)
	}
	// A log started without publishers is read-only.
	roDir, err := os.MkdirTemp("", "sworn-ro-log-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(roDir)
	ro, err := server.New(context.Background(), server.Config{Dir: roDir, Signer: k.logS})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close(context.Background())
	rs := httptest.NewServer(ro.Handler())
	defer rs.Close()
	if code := post(rs.URL, good); code != http.StatusForbidden {
		t.Errorf("read-only log: %d, want 403", code)
	}
}
