package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/kbs"
)

func modelDir(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "model")
	os.MkdirAll(filepath.Join(src, "weights"), 0o755)
	os.WriteFile(filepath.Join(src, "config.json"), []byte(`{"vocab_size":8}`), 0o644)
	os.WriteFile(filepath.Join(src, "weights", "model.safetensors"), make([]byte, 1<<20+1), 0o644)
	return src
}

func TestModelSealInspectVerify(t *testing.T) {
	src := modelDir(t)
	dir := t.TempDir()
	out, keyFile := filepath.Join(dir, "sealed"), filepath.Join(dir, "model.key")
	code, stdout, stderr := sworn(t, "model", "seal", src, "--out", out, "--name", "tiny", "--key-out", keyFile)
	if code != exitOK || !strings.HasPrefix(stdout, "sha256:") {
		t.Fatalf("model seal: exit %d\n%s%s", code, stdout, stderr)
	}
	digest := strings.TrimSpace(stdout)
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("key file: %v %v", st, err)
	}
	key, _ := os.ReadFile(keyFile)
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if b, _ := os.ReadFile(p); !d.IsDir() && strings.Contains(string(b), string(key)) {
			t.Errorf("the key is in %s", p)
		}
		return nil
	})

	code, stdout, _ = sworn(t, "model", "inspect", out)
	var ins struct {
		Digest   string `json:"model_digest"`
		Manifest struct {
			Name  string
			Files []struct{ Path string }
		}
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &ins) != nil || ins.Digest != digest || ins.Manifest.Name != "tiny" || len(ins.Manifest.Files) != 2 {
		t.Fatalf("model inspect: exit %d\n%s", code, stdout)
	}

	if code, stdout, stderr := sworn(t, "model", "verify", out, "--key", keyFile, "--model", digest); code != exitOK || !strings.Contains(stdout, "verified") {
		t.Fatalf("model verify: exit %d\n%s%s", code, stdout, stderr)
	}
	other := filepath.Join(dir, "other.key")
	os.WriteFile(other, make([]byte, 32), 0o600)
	if code, stdout, _ := sworn(t, "model", "verify", out, "--key", other, "--model", digest); code != exitNotVerified || !strings.Contains(stdout, "data key") {
		t.Fatalf("model verify, wrong key: exit %d\n%s", code, stdout)
	}
	wrong := "sha256:" + strings.Repeat("ab", 32)
	if code, stdout, _ := sworn(t, "model", "verify", out, "--key", keyFile, "--model", wrong); code != exitNotVerified || !strings.Contains(stdout, "digest") {
		t.Fatalf("model verify, wrong digest: exit %d\n%s", code, stdout)
	}
	w := filepath.Join(out, "files", "weights", "model.safetensors")
	b, _ := os.ReadFile(w)
	b[len(b)-10] ^= 1
	os.WriteFile(w, b, 0o644)
	if code, stdout, _ := sworn(t, "model", "verify", out, "--key", keyFile, "--model", digest); code != exitNotVerified || !strings.Contains(stdout, "segment 1 of 2") {
		t.Fatalf("model verify, flipped byte: exit %d\n%s", code, stdout)
	}
}

func TestModelSealUsage(t *testing.T) {
	src := modelDir(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "seal", src, "--name", "x"}, "--out and --name are required"},
		{[]string{"model", "seal", src, "--out", filepath.Join(dir, "o"), "--name", "x"}, "would be lost"},
		{[]string{"model", "seal", filepath.Join(dir, "none"), "--out", filepath.Join(dir, "o"), "--name", "x", "--key-out", filepath.Join(dir, "k")}, "not a readable directory"},
		{[]string{"model", "seal", src, "--out", dir, "--name", "x", "--key-out", filepath.Join(dir, "k")}, "already exists"},
		{[]string{"model", "seal", src, "--out", filepath.Join(dir, "o"), "--name", "x", "--kbs", "http://127.0.0.1:1"}, "go together"},
		{[]string{"model", "inspect", dir}, "not a sealed model"},
		{[]string{"model", "verify", dir, "--key", filepath.Join(dir, "k"), "--model", "sha256:00"}, "--model"},
	} {
		code, _, stderr := sworn(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("sworn %q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); err == nil {
		t.Error("a refused seal left its output")
	}
}

// TestModelSealRegisters: --kbs registers the new key with the broker
// through the same request sworn kbs register sends.
func TestModelSealRegisters(t *testing.T) {
	var got kbs.RegisterRequest
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/kbs/v1/models" {
			http.NotFound(w, r)
			return
		}
		auth = r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600)
	out := filepath.Join(dir, "sealed")
	code, stdout, stderr := sworn(t, "model", "seal", modelDir(t), "--out", out, "--name", "tiny", "--kbs", srv.URL, "--admin-token", token)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if got.Model != strings.TrimSpace(stdout) || got.Name != "tiny" || len(got.Key) != 32 || auth != "Bearer 0123456789abcdef0123" {
		t.Fatalf("registered %+v with %q; printed %s", got.Model, auth, stdout)
	}
	keyFile := filepath.Join(dir, "k")
	os.WriteFile(keyFile, got.Key, 0o600)
	if code, stdout, _ := sworn(t, "model", "verify", out, "--key", keyFile, "--model", got.Model); code != exitOK {
		t.Fatalf("the registered key does not open the model: %s", stdout)
	}
	// A broker that refuses: the model sealed under a key kept nowhere is
	// removed, and the command says so.
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"message":"registering a model needs the broker's admin token"}}`))
	})
	out2 := filepath.Join(dir, "sealed2")
	code, _, stderr = sworn(t, "model", "seal", modelDir(t), "--out", out2, "--name", "tiny", "--kbs", srv.URL, "--admin-token", token)
	if code != exitNotVerified || !strings.Contains(stderr, "admin token") || !strings.Contains(stderr, "removed") {
		t.Fatalf("refused registration: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Fatal("the sealed model with a lost key was kept")
	}
}

// TestNodeServeSealedModel: --model NAME=SEALED_DIR takes the digest from
// the manifest, and needs the broker that releases its key.
func TestNodeServeSealedModel(t *testing.T) {
	_, _, simPolicy, _ := setup(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "sealed")
	if code, stdout, stderr := sworn(t, "model", "seal", modelDir(t), "--out", out, "--name", "tiny", "--key-out", filepath.Join(dir, "k")); code != exitOK {
		t.Fatalf("seal: %s%s", stdout, stderr)
	}
	mm, dirs, err := parseModels([]string{"tiny=" + out, "other=sha256:" + strings.Repeat("00", 32)})
	if err != nil || dirs["tiny"] != out || !strings.HasPrefix(mm["tiny"], "sha256:") || mm["other"] == "" || len(dirs) != 1 {
		t.Fatalf("parseModels: %v %v %v", mm, dirs, err)
	}
	base := []string{"node", "serve", "--platform", "sim", "--engine", "echo", "--policy", simPolicy, "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "tiny=" + out}, "needs --kbs"},
		{[]string{"--model", "tiny=" + filepath.Join(dir, "none"), "--kbs", "http://127.0.0.1:1"}, "neither a digest"},
		{[]string{"--model", "tiny=" + out, "--model", "tiny=" + out, "--kbs", "http://127.0.0.1:1"}, "given twice"},
	} {
		code, _, stderr := sworn(t, append(append([]string(nil), base...), tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, %s; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
