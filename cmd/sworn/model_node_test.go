package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/node"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/up"
)

// TestNodeServeUnsealsFromBroker runs `sworn node serve --model
// echo=SEALED_DIR --kbs URL` as a separate process against sworn up's
// broker and log: the node obtains the key, unseals the model into memory
// and serves; with one byte of the weights changed, it refuses to serve.
func TestNodeServeUnsealsFromBroker(t *testing.T) {
	dir := t.TempDir()
	s, err := up.Start(t.Context(), up.Config{Dir: dir, Nodes: 1, GPUs: 1, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	leaf, _ := os.ReadFile(filepath.Join(dir, "release.json"))
	proof, _, err := tlog.Publish(t.Context(), nil, s.LogURL, leaf)
	if err != nil {
		t.Fatal(err)
	}
	proofFile := filepath.Join(t.TempDir(), "release.tlog-proof")
	os.WriteFile(proofFile, proof.Marshal(), 0o644)

	unsealed := t.TempDir()
	serve := func(sealed string) (*exec.Cmd, *syncBuilder) {
		cmd := exec.Command(binary(t), "node", "serve", "--platform", "sim", "--gpus", "1", "--engine", "echo",
			"--policy", s.Policy, "--release", proofFile, "--listen", "127.0.0.1:0",
			"--model", "echo="+sealed, "--kbs", s.KBSURL, "--unseal-to", unsealed)
		var logs syncBuilder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &logs
	}

	_, logs := serve(s.Model.Sealed)
	deadline := time.Now().Add(60 * time.Second)
	for !listenRE.MatchString(logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the node did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"model unsealed"`) || !strings.Contains(out, kbs.FormatDigest(s.Model.Digest)) {
		t.Fatalf("no unsealing logged:\n%s", out)
	}
	if strings.Contains(out, hex.EncodeToString(s.Model.Key)) {
		t.Fatal("the node logged the model key")
	}
	// --unseal-to: the engine's copy, file for file the sealed model's.
	want, err := node.UnsealModel(s.Model.Sealed, s.Model.Key, s.Model.Digest)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range want {
		got, err := os.ReadFile(filepath.Join(unsealed, "echo", p))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("--unseal-to: %s: %v", p, err)
		}
		if fi, _ := os.Stat(filepath.Join(unsealed, "echo", p)); fi.Mode().Perm() != 0o400 {
			t.Fatalf("--unseal-to: %s has mode %v", p, fi.Mode())
		}
	}

	// The same model with one byte of its weights changed: not served.
	bad := filepath.Join(t.TempDir(), "sealed")
	if err := os.CopyFS(bad, os.DirFS(s.Model.Sealed)); err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(bad, "files", "model.safetensors")
	b, _ := os.ReadFile(w)
	b[len(b)/2] ^= 1
	os.Chmod(w, 0o644)
	os.WriteFile(w, b, 0o644)
	cmd, logs := serve(bad)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitNotVerified || !strings.Contains(logs.String(), "segment does not authenticate") {
		t.Fatalf("altered weights: %v\n%s", err, logs.String())
	}
}

// syncBuilder is a strings.Builder safe for a process's two streams.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
