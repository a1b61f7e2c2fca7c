package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestModelVolumeCLI: sworn model volume format, seal and verify round
// trip on an image file; a flipped byte, another digest or another key is
// "not verified" (exit 1); node serve refuses a --volume without its
// model's digest (exit 2).
func TestModelVolumeCLI(t *testing.T) {
	for _, tool := range []string{"cryptsetup", "veritysetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: cryptsetup-bin; .ci/run installs it)", tool)
		}
	}
	dir := t.TempDir()
	img, hash, key := filepath.Join(dir, "m.img"), filepath.Join(dir, "m.verity"), filepath.Join(dir, "m.key")
	os.WriteFile(img, make([]byte, 20<<20), 0o600)
	if out, code := swornBinary(t, "model", "volume", "format", img, "--key-out", key); code != 0 {
		t.Fatalf("format: %d\n%s", code, out)
	}
	if out, code := swornBinary(t, "model", "volume", "format", img, "--key-out", key); code != 2 || !strings.Contains(out, "already exists") {
		t.Fatalf("format over a kept key: %d\n%s", code, out)
	}
	out, code := swornBinary(t, "model", "volume", "seal", img, "--hash", hash)
	digest := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(digest, "sha256:") || len(digest) != 71 {
		t.Fatalf("seal: %d\n%s", code, out)
	}
	if out, code := swornBinary(t, "model", "volume", "verify", img, "--hash", hash, "--model", digest, "--key", key); code != 0 || !strings.Contains(out, "verified: ") {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	other := filepath.Join(dir, "other.key")
	os.WriteFile(other, make([]byte, 32), 0o600)
	if out, code := swornBinary(t, "model", "volume", "verify", img, "--hash", hash, "--model", digest, "--key", other); code != 1 || !strings.Contains(out, "the key does not open it") {
		t.Fatalf("verify with another key: %d\n%s", code, out)
	}
	if out, code := swornBinary(t, "model", "volume", "verify", img, "--hash", hash, "--model", "sha256:"+strings.Repeat("0", 64)); code != 1 {
		t.Fatalf("verify against another digest: %d\n%s", code, out)
	}
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	f.WriteAt([]byte{1}, 18<<20)
	f.Close()
	if out, code := swornBinary(t, "model", "volume", "verify", img, "--hash", hash, "--model", digest); code != 1 || !strings.Contains(out, "not verified") {
		t.Fatalf("verify after a flipped byte: %d\n%s", code, out)
	}
	pol, _ := swornBinary(t, "policy", "init", "--simulated")
	polFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polFile, []byte(pol), 0o644)
	if out, code := swornBinary(t, "node", "serve", "--platform", "sim", "--engine", "echo", "--policy", polFile, "--listen", "127.0.0.1:0",
		"--volume", "m="+img+","+hash, "--kbs", "http://127.0.0.1:1"); code != 2 || !strings.Contains(out, "give the model's digest too") {
		t.Fatalf("node serve --volume without the model's digest: %d\n%s", code, out)
	}
}
