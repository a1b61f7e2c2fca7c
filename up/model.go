package up

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sworn-dev/sworn/seal"
)

// demoModel is the stack's demo model: a small model directory sealed
// (docs/seal.md) on the first run under a data key made then, both kept
// in DIR; it is served under the sealed manifest's digest.
func demoModel(dir string) (*Model, error) {
	key, err := secretFile(filepath.Join(dir, "model.key"))
	if err != nil {
		return nil, err
	}
	sealed := filepath.Join(dir, "model.sealed")
	if _, err := os.Stat(filepath.Join(sealed, seal.ManifestFile)); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, releaseFile)); err == nil {
			return nil, fmt.Errorf("%s has a release but no sealed demo model (%s): it was made by an older sworn up, or the model was removed; use another --dir", dir, sealed)
		}
		if err := sealDemo(dir, sealed, key); err != nil {
			return nil, fmt.Errorf("sealing the demo model: %v", err)
		}
	}
	_, raw, err := seal.ReadManifest(sealed)
	if err != nil {
		return nil, fmt.Errorf("%s: %v (remove it, or use another --dir)", sealed, err)
	}
	digest := sha256.Sum256(raw)
	m, err := seal.Open(sealed, key, digest)
	if err != nil {
		return nil, fmt.Errorf("%s: %v (remove it, or use another --dir)", sealed, err)
	}
	m.Close()
	return &Model{Name: "echo", Digest: digest, Key: key, Sealed: sealed}, nil
}

// sealDemo writes the demo model's files (a config, a tokenizer and a
// safetensors file of two segments) and seals them into sealed, through
// a temporary directory so that a crash leaves no half-sealed model.
func sealDemo(dir, sealed string, key []byte) error {
	src, err := os.MkdirTemp(dir, "demo-model-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	const n = 1<<20 + 4096
	header := []byte(fmt.Sprintf(`{"echo.weight":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}`, n, n))
	st := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	st = append(st, header...)
	for i := range n {
		st = append(st, byte(i*31+7))
	}
	files := map[string][]byte{
		"config.json":       []byte(`{"architectures":["EchoForCausalLM"],"model_type":"echo"}`),
		"tokenizer.json":    []byte(`{"version":"1.0","model":{"type":"WordLevel","vocab":{"echo":0}}}`),
		"model.safetensors": st,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			return err
		}
	}
	tmp := sealed + ".tmp"
	os.RemoveAll(tmp)
	if _, err := seal.Dir(src, tmp, key, "echo"); err != nil {
		return err
	}
	return os.Rename(tmp, sealed)
}
