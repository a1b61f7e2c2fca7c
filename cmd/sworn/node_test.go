package main

import (
	"context"
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

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/policy"
)

// TestNodeAcrossProcesses runs `sworn node serve --platform sim --engine
// echo` as a separate process under debug logging, verifies it and asks
// it a streamed chat completion through the client SDK, checks the receipt
// offline (in the SDK and with sworn verify receipt), and then searches
// everything the node wrote — stdout, stderr, /metrics, its working and
// temporary directories — for the prompt's and the answer's canaries and
// for anything that looks like key material.
func TestNodeAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o755)
	polData, code := swornBinary(t, "policy", "init", "--simulated", "--gpus", "2")
	if code != 0 {
		t.Fatal(polData)
	}
	polPath := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polPath, []byte(polData), 0o644)

	cmd := exec.Command(binary(t), "node", "serve", "--platform", "sim", "--gpus", "2", "--engine", "echo",
		"--policy", polPath, "--listen", "127.0.0.1:0", "--log-level", "debug")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "TMPDIR="+work, "HOME="+work)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var logs strings.Builder
	urlc := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := stderr.Read(buf)
			logs.Write(buf[:n])
			if m := listenRE.FindStringSubmatch(logs.String()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	var nodeURL string
	select {
	case nodeURL = <-urlc:
	case <-time.After(30 * time.Second):
		t.Fatalf("the node did not start:\n%s", logs.String())
	}

	p, err := policy.Load(polPath)
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{Policy: p}
	ctx := context.Background()
	n, err := c.Verify(ctx, nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Result.Simulated || n.Result.Verdict != attest.Affirming {
		t.Fatalf("appraisal %s", n.Result.Verdict)
	}
	const promptCanary, answerCanary = "CANARYPROMPT7f3a9", "CANARYANSWER0c41e"
	req, _ := http.NewRequest(http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(
		`{"model":"echo","stream":true,"messages":[{"role":"user","content":"`+promptCanary+` `+answerCanary+`"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-CANARYHEADER")
	resp, err := c.Do(ctx, n, req)
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	buf := make([]byte, 1024)
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			events++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	resp.Body.Close()
	content := string(resp.Content())
	// Reads may coalesce on a loaded machine; the SSE events may not.
	if resp.Status != 200 || !strings.Contains(content, answerCanary) || !strings.Contains(content, "[DONE]") || events < 1 || strings.Count(content, "data: ") < 4 {
		t.Fatalf("answer %d in %d reads: %q", resp.Status, events, content)
	}
	r, err := c.CheckReceipt(ctx, n, resp)
	if err != nil || r.Verdict != attest.Affirming {
		t.Fatalf("receipt: %v %+v", err, r)
	}
	rc, _ := resp.Receipt()
	bundle, _ := n.Bundle.Marshal()
	for name, data := range map[string][]byte{"receipt": rc, "bundle": bundle, "request": resp.Request, "response": resp.Content()} {
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	if out, code := swornBinary(t, "verify", "receipt", filepath.Join(dir, "receipt"), "--bundle", filepath.Join(dir, "bundle"), "--policy", polPath,
		"--request", filepath.Join(dir, "request"), "--response", filepath.Join(dir, "response")); code != 0 {
		t.Fatalf("sworn verify receipt: exit %d\n%s", code, out)
	}

	mresp, err := http.Get(nodeURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(metrics), `sworn_node_requests_total{kind="chunked",outcome="ok"} 1`) {
		t.Errorf("metrics do not count the request:\n%s", metrics)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("the node did not stop cleanly on SIGTERM: %v", err)
	}
	written := map[string]string{"stdout": stdout.String(), "stderr": logs.String(), "metrics": string(metrics)}
	filepath.Walk(work, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			written[path] = string(b)
		}
		return nil
	})
	if len(written) != 3 {
		t.Errorf("the node wrote files: %v", written)
	}
	keyish := regexp.MustCompile(`[0-9a-fA-F]{64,}|[A-Za-z0-9+/_-]{43,}`)
	for where, text := range written {
		for _, canary := range []string{promptCanary, answerCanary, "CANARYHEADER"} {
			if strings.Contains(text, canary) {
				t.Errorf("%s holds the canary %s", where, canary)
			}
		}
		if m := keyish.FindString(text); m != "" {
			t.Errorf("%s holds something that looks like key material: %.20s…", where, m)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"request served"`) {
		t.Errorf("no request log line under debug logging:\n%s", logs.String())
	}
}
