package node

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/seal"
)

func TestUnsealModel(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "config.json"), []byte(`{"model_type":"echo"}`), 0o644)
	os.WriteFile(filepath.Join(src, "model.safetensors"), make([]byte, 1<<20+5), 0o644)
	dst := filepath.Join(t.TempDir(), "sealed")
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	m, err := seal.Dir(src, dst, key, "echo")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := m.Digest()
	files, err := UnsealModel(dst, key, d)
	if err != nil || len(files) != 2 || len(files["model.safetensors"]) != 1<<20+5 || string(files["config.json"]) != `{"model_type":"echo"}` {
		t.Fatalf("UnsealModel: %d files, %v", len(files), err)
	}
	other := d
	other[31] ^= 1
	if _, err := UnsealModel(dst, key, other); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("another digest: %v", err)
	}
	p := filepath.Join(dst, seal.FilesDir, "model.safetensors")
	b, _ := os.ReadFile(p)
	b[100] ^= 1
	os.WriteFile(p, b, 0o644)
	if _, err := UnsealModel(dst, key, d); err == nil || !strings.Contains(err.Error(), "authenticate") {
		t.Fatalf("altered weights: %v", err)
	}
}
