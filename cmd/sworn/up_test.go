package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var upRE = regexp.MustCompile(`up listening on (http://\S+)`)

// startUp runs `sworn up` as a separate process and returns the proxy URL.
func startUp(t *testing.T, dir string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(binary(t), "up", "--dir", dir, "--listen", "127.0.0.1:0", "--nodes", "2", "--gpus", "1")
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	urlc := make(chan string, 1)
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := upRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	select {
	case u := <-urlc:
		return u, cmd
	case <-time.After(60 * time.Second):
		t.Fatalf("sworn up did not start:\n%s", logs.String())
	}
	return "", nil
}

// TestUpAcrossProcesses: sworn up serves a streamed and a whole chat
// completion (and curl -N streams it), and after the stack is stopped the
// kept receipts verify offline; a second run reuses the directory.
func TestUpAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	proxy, cmd := startUp(t, dir)
	resp, err := http.Post(proxy+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"echo","stream":true,"messages":[{"role":"user","content":"streamed through sworn up"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "data: [DONE]") || len(resp.Trailer.Get("Sworn-Receipt")) != 32 || !strings.Contains(resp.Trailer.Get("Sworn-Node"), "release=sworn-sim-node@") {
		t.Fatalf("stream: %q %v %v", body, resp.Header, resp.Trailer)
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sN", proxy+"/v1/chat/completions", "-H", "Content-Type: application/json",
			"-d", `{"model":"echo","stream":true,"messages":[{"role":"user","content":"curl"}]}`).Output()
		if err != nil || strings.Count(string(out), "data: ") < 4 || !strings.Contains(string(out), "[DONE]") {
			t.Fatalf("curl -N: %v %q", err, out)
		}
	}
	// sworn ask --up: one question through the running stack, under its
	// policy, the receipt kept with the stack's.
	if out, code := swornBinary(t, "ask", "--up", "--dir", dir, "asked from the command line"); code != 0 ||
		!strings.Contains(out, "echo: asked from the command line") || !strings.Contains(out, "receipt ") {
		t.Fatalf("sworn ask --up: %d\n%s", code, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sworn up did not stop cleanly: %v", err)
	}
	if out, code := swornBinary(t, "ask", "--up", "--dir", dir, "x"); code != 2 || !strings.Contains(out, "start sworn up first") {
		t.Fatalf("sworn ask --up with the stack stopped: %d\n%s", code, out)
	}
	receipts := filepath.Join(dir, "receipts")
	out, code := swornBinary(t, "receipts", "list", "--dir", receipts)
	ids := strings.Fields(out)
	if code != 0 || strings.Count(out, "\n") < 2 { // the streamed answer and the asked one (and curl's)
		t.Fatalf("receipts list: %d %s", code, out)
	}
	if out, code := swornBinary(t, "receipts", "verify", ids[0], "--dir", receipts, "--policy", filepath.Join(dir, "policy.yaml")); code != 0 {
		t.Fatalf("receipts verify after the stack stopped: %d\n%s", code, out)
	}
	prefix := filepath.Join(t.TempDir(), "r")
	if out, code := swornBinary(t, "receipts", "export", ids[0], "--dir", receipts, "--out", prefix); code != 0 {
		t.Fatal(out)
	}
	if out, code := swornBinary(t, "verify", "receipt", prefix+".receipt", "--bundle", prefix+".bundle", "--policy", filepath.Join(dir, "policy.yaml")); code != 0 {
		t.Fatalf("sworn verify receipt of an exported receipt: %d\n%s", code, out)
	}
	// A second run reuses the directory: the same release, proven again.
	proxy, _ = startUp(t, dir)
	resp, err = http.Post(proxy+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"again"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Header.Get("Sworn-Receipt")) != 32 {
		t.Fatalf("second run: %d %v", resp.StatusCode, resp.Header)
	}
	if _, err := os.Stat(filepath.Join(dir, "release.json")); err != nil {
		t.Fatal(err)
	}
}
