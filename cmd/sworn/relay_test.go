package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/relay"
)

// lockedBuilder collects a process's output as it runs.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemonLogged starts sworn with args, returns the URL it listens on and
// everything it writes to stderr.
func daemonLogged(t *testing.T, args ...string) (string, *exec.Cmd, *lockedBuilder) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	logs := &lockedBuilder{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(logs.String()); m != nil {
			return m[1], cmd, logs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%v did not start:\n%s", args, logs.String())
	return "", nil, nil
}

// TestRelayAcrossProcesses: two `sworn node serve` processes and a `sworn
// relay serve` in front of them; the client SDK verifies both nodes from
// the relay's directory and streams a chat completion through the relay
// to each, receipts checked; the relay's logs hold neither the prompt nor
// the client's address; SIGTERM stops it cleanly.
func TestRelayAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	polData, code := swornBinary(t, "policy", "init", "--simulated", "--gpus", "1")
	if code != 0 {
		t.Fatal(polData)
	}
	polPath := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polPath, []byte(polData), 0o644)
	var nodeURLs []string
	for range 2 {
		u, _ := daemon(t, "node", "serve", "--platform", "sim", "--gpus", "1", "--engine", "echo", "--echo-tokens-per-second", "500",
			"--policy", polPath, "--listen", "127.0.0.1:0")
		nodeURLs = append(nodeURLs, u)
	}
	relayURL, rcmd, logs := daemonLogged(t, "relay", "serve", "--node", nodeURLs[0], "--node", nodeURLs[1], "--listen", "127.0.0.1:0", "--refresh", "10s")

	p, err := policy.Load(polPath)
	if err != nil {
		t.Fatal(err)
	}
	var local []string
	hc := &http.Client{Transport: &http.Transport{}}
	c := &client.Client{Policy: p, HTTP: hc}
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		local = append(local, i.Conn.LocalAddr().String())
	}})
	d, err := relay.FetchDirectory(ctx, hc, relayURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Nodes) != 2 {
		t.Fatalf("directory: %+v", d)
	}
	const canary = "CANARYRELAY93b1"
	for i, e := range d.Nodes {
		if e.ID != relay.NodeID(nodeURLs[i]) || e.Error != "" {
			t.Fatalf("entry %d: %s %q", i, e.ID, e.Error)
		}
		b, err := attest.ParseBundle(e.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.VerifyBundle(ctx, relay.NodeURL(relayURL, e.ID), b)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(
			`{"model":"echo","stream":true,"messages":[{"role":"user","content":"`+canary+` a b c d e f"}]}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(ctx, n, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		content := string(resp.Content())
		if resp.Status != 200 || !strings.Contains(content, canary) || strings.Count(content, "data: ") < 4 || !strings.Contains(content, "[DONE]") {
			t.Fatalf("node %d: %d %q", i, resp.Status, content)
		}
		if r, err := c.CheckReceipt(ctx, n, resp); err != nil || r.Verdict != attest.Affirming {
			t.Fatalf("node %d: receipt %v", i, err)
		}
	}
	mresp, err := http.Get(relayURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(metrics), `sworn_relay_requests_total{kind="chunked",outcome="ok"} 2`) {
		t.Errorf("metrics:\n%s", metrics)
	}
	rcmd.Process.Signal(syscall.SIGTERM)
	if err := rcmd.Wait(); err != nil {
		t.Errorf("the relay did not stop cleanly on SIGTERM: %v", err)
	}
	out := logs.String()
	if strings.Count(out, `"msg":"forward"`) != 2 || !strings.Contains(out, "relay stopped") {
		t.Errorf("relay logs:\n%s", out)
	}
	if len(local) == 0 {
		t.Fatal("no client connection seen")
	}
	for _, a := range local {
		if strings.Contains(out, a) || strings.Contains(string(metrics), a) {
			t.Errorf("the relay's output holds the client's address %s", a)
		}
	}
	if strings.Contains(out, canary) || strings.Contains(string(metrics), canary) {
		t.Error("the relay's output holds the prompt's canary")
	}
}

func TestRelayUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"relay", "serve", "--listen", "127.0.0.1:0"}, "--node (at least one) and --listen are required"},
		{[]string{"relay", "serve", "--node", "ftp://x", "--listen", "127.0.0.1:0"}, "--node: node URL \"ftp://x\""},
		{[]string{"relay", "serve", "--node", "http://127.0.0.1:1", "--listen", "nowhere:http:x"}, "--listen nowhere:http:x"},
		{[]string{"relay", "serve", "--node", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--log-level", "loud"}, "--log-level"},
	} {
		out, code := swornBinary(t, c.args...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d\n%s", c.args, code, out)
		}
	}
}
