package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/tlog"
)

var (
	buildOnce sync.Once
	swornBin  string
	buildErr  error
)

// binary builds the real sworn binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the sworn binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sworn-bin")
		if err != nil {
			buildErr = err
			return
		}
		swornBin = filepath.Join(dir, "sworn")
		out, err := exec.Command("go", "build", "-o", swornBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return swornBin
}

// swornBinary runs the built sworn binary (for tests that need real
// processes: servers, kill -9) and returns its output and exit code.
func swornBinary(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

var listenRE = regexp.MustCompile(`listening on (http://\S+)`)

// daemon starts a sworn server and returns its URL and process.
func daemon(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	urlc := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	select {
	case u := <-urlc:
		return u, cmd
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not start", args)
	}
	return "", nil
}

func keygen(t *testing.T, dir, kind, name string) string {
	t.Helper()
	prefix := filepath.Join(dir, name)
	if out, code := swornBinary(t, "keygen", "--kind", kind, "--name", name, "--out", prefix); code != 0 {
		t.Fatalf("keygen: %s", out)
	}
	return prefix
}

func TestReleaseCLIEndToEnd(t *testing.T) {
	dir := t.TempDir()
	logK := keygen(t, dir, "log", "log.test")
	w1K := keygen(t, dir, "witness", "w1.test")
	w2K := keygen(t, dir, "witness", "w2.test")
	pubK := keygen(t, dir, "publisher", "ci.test")
	if fi, _ := os.Stat(logK + ".key"); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	if _, code := swornBinary(t, "keygen", "--kind", "log", "--name", "x", "--out", logK); code != 2 {
		t.Fatal("keygen overwrote a key")
	}
	w1URL, w1 := daemon(t, "witness", "serve", "--dir", filepath.Join(dir, "w1"), "--listen", "127.0.0.1:0", "--key", w1K+".key", "--log-key", logK+".pub")
	w2URL, _ := daemon(t, "witness", "serve", "--dir", filepath.Join(dir, "w2"), "--listen", "127.0.0.1:0", "--key", w2K+".key", "--log-key", logK+".pub")
	pub := func(p string) string { b, _ := os.ReadFile(p + ".pub"); return strings.TrimSpace(string(b)) }
	wpol := fmt.Sprintf("witness w1 %s %s\nwitness w2 %s %s\ngroup g 2 w1 w2\nquorum g\n", pub(w1K), w1URL, pub(w2K), w2URL)
	os.WriteFile(filepath.Join(dir, "witnesses.policy"), []byte(wpol), 0o644)
	os.WriteFile(filepath.Join(dir, "publishers"), []byte(pub(pubK)+"\n"), 0o644)
	logURL, _ := daemon(t, "log", "serve", "--dir", filepath.Join(dir, "log"), "--listen", "127.0.0.1:0", "--key", logK+".key",
		"--publishers", filepath.Join(dir, "publishers"), "--witness-policy", filepath.Join(dir, "witnesses.policy"))

	tmpl, code := swornBinary(t, "release", "template")
	if code != 0 {
		t.Fatal(tmpl)
	}
	rec := filepath.Join(dir, "rec.json")
	os.WriteFile(rec, []byte(tmpl), 0o644)
	proof := filepath.Join(dir, "rec.tlog-proof")
	if out, code := swornBinary(t, "release", "publish", "--log", logURL, "--key", pubK+".key", rec, "--out", proof); code != 0 {
		t.Fatalf("publish: %s", out)
	}
	if out, code := swornBinary(t, "release", "show", proof); code != 0 || !strings.Contains(out, "sworn-node@1.0.0") {
		t.Fatalf("show: %d %s", code, out)
	}
	verify := []string{"verify", "release", proof, "--log-key", logK + ".pub", "--witness", w1K + ".pub", "--witness", w2K + ".pub", "--quorum", "2", "--publisher", pubK + ".pub"}
	out, code := swornBinary(t, verify...)
	if code != 0 || !strings.Contains(out, "AFFIRMING") {
		t.Fatalf("verify: %d %s", code, out)
	}
	if out, code := swornBinary(t, append(verify, "--json")...); code != 0 || !strings.Contains(out, `"release.witnesses"`) {
		t.Fatalf("verify --json: %d %s", code, out)
	}
	// Only one witness pinned with quorum 2: usage error. Quorum 1 of w1: OK.
	if _, code := swornBinary(t, "verify", "release", proof, "--log-key", logK+".pub", "--witness", w1K+".pub", "--quorum", "2"); code != 2 {
		t.Fatalf("quorum > witnesses: exit %d", code)
	}
	// A tampered proof: exit 1; garbage: exit 2.
	pb, _ := os.ReadFile(proof)
	p, _ := tlog.ParseProof(pb)
	p.Index = 1
	bad := filepath.Join(dir, "bad.tlog-proof")
	os.WriteFile(bad, p.Marshal(), 0o644)
	verify[2] = bad
	if out, code := swornBinary(t, verify...); code != 1 || !strings.Contains(out, "release.inclusion") {
		t.Fatalf("tampered: %d %s", code, out)
	}
	os.WriteFile(bad, []byte("garbage"), 0o644)
	if _, code := swornBinary(t, verify...); code != 2 {
		t.Fatalf("garbage: exit %d", code)
	}
	// Monitor prints the release.
	polFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polFile, []byte(fmt.Sprintf("version: 1\nlog:\n  origin: log.test\n  key: %q\n  witnesses: [%q, %q]\n  quorum: 2\n  publishers: [%q]\n", pub(logK), pub(w1K), pub(w2K), pub(pubK))), 0o644)
	if out, code := swornBinary(t, "monitor", "--log", logURL, "--policy", polFile, "--state", filepath.Join(dir, "mon"), "--once"); code != 0 || !strings.Contains(out, "entry 0: release sworn-node@1.0.0") {
		t.Fatalf("monitor: %d %s", code, out)
	}
	if out, code := swornBinary(t, "verify", "release", proof, "--policy", polFile); code != 0 {
		t.Fatalf("verify --policy: %d %s", code, out)
	}

	// kill -9 the witness, restart it: it keeps its state (409 for old 0).
	w1.Process.Signal(syscall.SIGKILL)
	w1.Wait()
	w1URL2, _ := daemon(t, "witness", "serve", "--dir", filepath.Join(dir, "w1"), "--listen", "127.0.0.1:0", "--key", w1K+".key", "--log-key", logK+".pub")
	resp, err := http.Post(w1URL2+"/add-checkpoint", "text/plain", strings.NewReader("old 0\n\n"+string(p.Checkpoint)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusConflict || strings.TrimSpace(string(body)) == "0" {
		t.Fatalf("restarted witness: %s %q", resp.Status, body)
	}
}

// TestLogCrash kills the log with SIGKILL during a burst of appends,
// restarts it, and checks that every acknowledged entry is present and
// the log is consistent with a checkpoint seen before the crash.
func TestLogCrash(t *testing.T) {
	dir := t.TempDir()
	logK := keygen(t, dir, "log", "crash.test")
	pubK := keygen(t, dir, "publisher", "ci.test")
	pubV, _ := os.ReadFile(pubK + ".pub")
	os.WriteFile(filepath.Join(dir, "publishers"), pubV, 0o644)
	args := []string{"log", "serve", "--dir", filepath.Join(dir, "log"), "--listen", "127.0.0.1:0", "--key", logK + ".key", "--publishers", filepath.Join(dir, "publishers")}
	logURL, proc := daemon(t, args...)
	signer, err := tlog.NewSigner(pubK+".key", tlog.KindPublisher)
	if err != nil {
		t.Fatal(err)
	}
	logV, _ := os.ReadFile(logK + ".pub")
	polFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polFile, []byte(fmt.Sprintf("version: 1\nlog:\n  origin: crash.test\n  key: %q\n", strings.TrimSpace(string(logV)))), 0o644)

	type acked struct {
		index uint64
		leaf  []byte
	}
	var mu sync.Mutex
	var acks []acked
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r := tlog.Template(time.Now())
				r.Release.Version = fmt.Sprintf("%d.%d", w, i)
				r.Sign(signer)
				leaf, _ := r.Canonical()
				p, _, err := tlog.Publish(ctx, nil, logURL, leaf)
				if err != nil {
					return // the log died
				}
				mu.Lock()
				acks = append(acks, acked{p.Index, leaf})
				mu.Unlock()
			}
		}()
	}
	// Let a monitor see a checkpoint before the crash.
	for {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, code := swornBinary(t, "monitor", "--log", logURL, "--policy", polFile, "--state", filepath.Join(dir, "mon"), "--once"); code != 0 {
		t.Fatalf("monitor before crash: %s", out)
	}
	time.Sleep(200 * time.Millisecond)
	proc.Process.Signal(syscall.SIGKILL)
	proc.Wait()
	cancel()
	wg.Wait()
	t.Logf("%d appends acknowledged before SIGKILL", len(acks))

	logURL, _ = daemon(t, args...)
	// The log must publish everything and be consistent with the monitor's
	// pre-crash checkpoint; the monitor also checks every entry against the tree.
	var out string
	var code int
	for range 50 {
		if out, code = swornBinary(t, "monitor", "--log", logURL, "--policy", polFile, "--state", filepath.Join(dir, "mon"), "--once"); code != 0 {
			t.Fatalf("monitor after restart: %d %s", code, out)
		}
		cpSize := checkpointSize(t, logURL)
		if cpSize >= uint64(len(acks)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	u, _ := url.Parse(logURL)
	f, _ := client.NewHTTPFetcher(u, nil)
	size := checkpointSize(t, logURL)
	bundles := map[uint64][][]byte{}
	for _, a := range acks {
		if a.index >= size {
			t.Fatalf("acknowledged entry %d missing: log size %d", a.index, size)
		}
		bi := a.index / 256
		if _, ok := bundles[bi]; !ok {
			b, err := client.GetEntryBundle(context.Background(), f.ReadEntryBundle, bi, size)
			if err != nil {
				t.Fatal(err)
			}
			bundles[bi] = b.Entries
		}
		if !bytes.Equal(bundles[bi][a.index%256], a.leaf) {
			t.Fatalf("entry %d differs from the acknowledged record", a.index)
		}
	}
	// After the restart, re-sending an acknowledged record adds nothing:
	// the log names its entry and the publisher gets that entry's proof.
	if p, _, err := tlog.Publish(context.Background(), nil, logURL, acks[0].leaf); err != nil || p.Index != acks[0].index {
		t.Fatalf("re-sent record after restart: %v", err)
	}
}

func checkpointSize(t *testing.T, logURL string) uint64 {
	t.Helper()
	resp, err := http.Get(logURL + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var size uint64
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 {
		t.Fatalf("checkpoint %q", b)
	}
	fmt.Sscan(lines[1], &size)
	return size
}

// TestFailedStartLeavesNothing: a log or witness that cannot start (port
// in use, a bad --listen, a bad key) exits non-zero without creating its
// directory.
func TestFailedStartLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	logK := keygen(t, dir, "log", "log.start.test")
	wK := keygen(t, dir, "witness", "w.start.test")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for i, c := range []struct {
		args []string
		want string
	}{
		{[]string{"log", "serve", "--listen", busy.Addr().String(), "--key", logK + ".key"}, "--listen"},
		{[]string{"log", "serve", "--listen", "not-an-address", "--key", logK + ".key"}, "--listen"},
		{[]string{"log", "serve", "--listen", "127.0.0.1:0", "--key", filepath.Join(dir, "missing.key")}, "--key"},
		{[]string{"witness", "serve", "--listen", busy.Addr().String(), "--key", wK + ".key", "--log-key", logK + ".pub"}, "--listen"},
		{[]string{"witness", "serve", "--listen", "not-an-address", "--key", wK + ".key", "--log-key", logK + ".pub"}, "--listen"},
	} {
		d := filepath.Join(dir, fmt.Sprint("state", i))
		out, code := swornBinary(t, append(c.args, "--dir", d)...)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d\n%s", c.args, code, out)
		}
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: a failed start left %s behind (%v)", c.args, d, err)
		}
	}
}

// TestWrongKeyKind: each command that loads a key refuses one of the
// wrong kind, naming the kind found and the kind expected.
func TestWrongKeyKind(t *testing.T) {
	dir := t.TempDir()
	logK := keygen(t, dir, "log", "log.kind.test")
	wK := keygen(t, dir, "witness", "w.kind.test")
	pubK := keygen(t, dir, "publisher", "ci.kind.test")
	tmpl, _ := swornBinary(t, "release", "template")
	rec := filepath.Join(dir, "rec.json")
	os.WriteFile(rec, []byte(tmpl), 0o644)
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o644)
		return p
	}
	pub := func(p string) string { b, _ := os.ReadFile(p + ".pub"); return strings.TrimSpace(string(b)) }
	logServe := []string{"log", "serve", "--dir", filepath.Join(dir, "log"), "--listen", "127.0.0.1:0"}
	witnessServe := []string{"witness", "serve", "--dir", filepath.Join(dir, "w"), "--listen", "127.0.0.1:0"}
	publish := []string{"release", "publish", "--log", "http://127.0.0.1:1", rec, "--out", filepath.Join(dir, "p")}
	verify := []string{"verify", "release", filepath.Join(dir, "missing.tlog-proof")}
	wrongVerifier := "but a log's or publisher's key"
	wrongWitness := "but a witness's cosignature/v1 key"
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(logServe, "--key", wK+".key"), "is a witness key, but a log key is needed"},
		{append(logServe, "--key", pubK+".key"), "is a publisher key, but a log key is needed"},
		{append(witnessServe, "--key", logK+".key", "--log-key", logK+".pub"), "is a log key, but a witness key is needed"},
		{append(witnessServe, "--key", pubK+".key", "--log-key", logK+".pub"), "is a publisher key, but a witness key is needed"},
		{append(witnessServe, "--key", wK+".key", "--log-key", wK+".pub"), wrongVerifier},
		{append(publish, "--key", logK+".key"), "is a log key, but a publisher key is needed"},
		{append(publish, "--key", wK+".key"), "is a witness key, but a publisher key is needed"},
		{append(logServe, "--key", logK+".key", "--publishers", write("pubs", pub(wK)+"\n")), wrongVerifier},
		{append(logServe, "--key", logK+".key", "--witness-policy", write("wpol", "witness w "+pub(logK)+" http://127.0.0.1:1\nquorum w\n")), wrongWitness},
		{append(verify, "--log-key", wK+".pub"), wrongVerifier},
		{append(verify, "--log-key", logK+".pub", "--witness", logK+".pub"), wrongWitness},
		{append(verify, "--log-key", logK+".pub", "--witness", pubK+".pub"), wrongWitness},
		{append(verify, "--log-key", logK+".pub", "--publisher", wK+".pub"), wrongVerifier},
		// The same keys given literally.
		{append(witnessServe, "--key", wK+".key", "--log-key", pub(wK)), wrongVerifier},
		{append(verify, "--log-key", pub(wK)), wrongVerifier},
		{append(verify, "--log-key", pub(logK), "--witness", pub(logK)), wrongWitness},
		{append(verify, "--log-key", pub(logK), "--publisher", pub(wK)), wrongVerifier},
	} {
		out, code := swornBinary(t, c.args...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", c.args, code, c.want, out)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "log")); err == nil {
		t.Error("a log serve refused for its keys created its directory")
	}
}

// TestWitnessStateCLI: a witness that has cosigned refuses to start with
// its state deleted or rolled back; --reset-state starts and says so.
func TestWitnessStateCLI(t *testing.T) {
	dir := t.TempDir()
	logK := keygen(t, dir, "log", "log.state.test")
	wK := keygen(t, dir, "witness", "w.state.test")
	wDir := filepath.Join(dir, "w")
	serve := []string{"witness", "serve", "--dir", wDir, "--listen", "127.0.0.1:0", "--key", wK + ".key", "--log-key", logK + ".pub"}
	wURL, proc := daemon(t, serve...)
	logS, err := tlog.NewSigner(logK+".key", tlog.KindLog)
	if err != nil {
		t.Fatal(err)
	}
	cosign := func(url, body string) {
		t.Helper()
		resp, err := http.Post(url+"/add-checkpoint", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("add-checkpoint: %s %s", resp.Status, b)
		}
	}
	leafA := rfc6962.DefaultHasher.HashLeaf([]byte("a"))
	cp, _ := note.Sign(&note.Note{Text: string(log.Checkpoint{Origin: "log.state.test", Size: 1, Hash: leafA}.Marshal())}, logS)
	cosign(wURL, "old 0\n\n"+string(cp))
	proc.Process.Kill()
	proc.Wait()
	if _, err := os.Stat(filepath.Join(dir, "w.state.test.cosigned")); err != nil {
		t.Fatalf("no cosign marker beside the key: %v", err)
	}

	state := filepath.Join(wDir, "witness-state.json")
	os.Remove(state)
	if out, code := swornBinary(t, serve...); code != 1 || !strings.Contains(out, "is missing, but this witness key has cosigned") || !strings.Contains(out, "--reset-state") {
		t.Fatalf("deleted state: exit %d\n%s", code, out)
	}
	os.WriteFile(state, []byte(`{"logs":{}}`), 0o600) // an older state
	if out, code := swornBinary(t, serve...); code != 1 || !strings.Contains(out, "rolled back") {
		t.Fatalf("rolled-back state: exit %d\n%s", code, out)
	}

	cmd := exec.Command(binary(t), append(serve, "--reset-state")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var seen strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "listening on") {
		seen.WriteString(sc.Text() + "\n")
	}
	if !strings.Contains(sc.Text(), "listening on") || !strings.Contains(seen.String(), "WITNESS STATE RESET") {
		t.Fatalf("--reset-state did not start, saying so:\n%s", seen.String())
	}
}
