package up

import (
	"crypto/sha256"
	"path/filepath"
)

// demoModel is the stack's demo model: a data key made on the first run
// and kept in DIR, and the digest it is served under.
func demoModel(dir string) (*Model, error) {
	key, err := secretFile(filepath.Join(dir, "model.key"))
	if err != nil {
		return nil, err
	}
	return &Model{Name: "echo", Digest: sha256.Sum256(append([]byte("sworn up demo model\x00"), key...)), Key: key}, nil
}
