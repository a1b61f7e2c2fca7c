package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sworn-dev/sworn/seal"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/wire"
)

// The key broker's API as the node speaks it over HTTP (docs/kbs.md).
type kbsChallenge struct {
	Nonce []byte `json:"nonce"`
}

type kbsRelease struct {
	KeyID    uint8  `json:"key_id"`
	KEM      uint16 `json:"kem"`
	KDF      uint16 `json:"kdf"`
	AEAD     uint16 `json:"aead"`
	Sealed   []byte `json:"sealed"`
	LogIndex uint64 `json:"log_index"`
	Proof    []byte `json:"proof"`
}

// FetchModelKey asks the key broker at kbsURL for a model's key: it takes
// the broker's challenge, answers it with fresh evidence bound to the
// current epoch's keys, and opens the key the broker sealed to them. It
// checks that the broker's proof is a witnessed key-release record for
// this model and node (under the node's policy log section) before it
// uses the key.
func (n *Node) FetchModelKey(ctx context.Context, kbsURL string, model [32]byte) ([]byte, error) {
	n.mu.RLock()
	e := n.cur
	n.mu.RUnlock()
	if e == nil {
		return nil, errNotReady
	}
	digest := "sha256:" + hex.EncodeToString(model[:])
	var ch kbsChallenge
	if err := postJSON(ctx, kbsURL+"/kbs/v1/challenge", map[string]any{"model": digest}, &ch); err != nil {
		return nil, fmt.Errorf("key broker challenge: %v", err)
	}
	b, err := n.cfg.Platform.Bundle(ctx, EvidenceRequest{Keys: e.bundle.Keys, Nonce: ch.Nonce, At: n.cfg.Now(), Release: n.cfg.Release})
	if err != nil {
		return nil, fmt.Errorf("evidence for the key broker: %v", err)
	}
	enc, err := b.Marshal()
	if err != nil {
		return nil, err
	}
	var rel kbsRelease
	if err := postJSON(ctx, kbsURL+"/kbs/v1/release", map[string]any{"model": digest, "nonce": ch.Nonce, "bundle": enc}, &rel); err != nil {
		return nil, fmt.Errorf("key broker release: %v", err)
	}
	if n.cfg.Policy.Log != nil {
		if err := checkKeyRelease(n, rel, digest); err != nil {
			return nil, err
		}
	}
	for _, k := range e.keys {
		c := k.Config()
		if c.ID == rel.KeyID && c.KEM == rel.KEM {
			return k.OpenSealed(wire.Suite{KDF: rel.KDF, AEAD: rel.AEAD}, wire.KeyReleaseInfo(model, ch.Nonce, rel.LogIndex), rel.Sealed)
		}
	}
	return nil, fmt.Errorf("the key broker sealed the key to key %d, which this node's epoch does not hold", rel.KeyID)
}

// checkKeyRelease verifies the broker's proof: a key-release record for
// this model, witnessed under the node's policy, at the index the key is
// bound to.
func checkKeyRelease(n *Node, rel kbsRelease, digest string) error {
	p, err := tlog.ParseProof(rel.Proof)
	if err != nil {
		return fmt.Errorf("the key broker's proof: %v", err)
	}
	v, err := tlog.NewVerifier(n.cfg.Policy.Log)
	if err != nil {
		return err
	}
	if _, err := v.VerifyProof(p, n.cfg.Now()); err != nil {
		return fmt.Errorf("the key broker's key-release record is not witnessed in the log: %v", err)
	}
	rec, err := tlog.ParseRecord(p.Record)
	if err != nil || rec.KeyRelease == nil || rec.KeyRelease.Model != digest || p.Index != rel.LogIndex {
		return errors.New("the key broker's proof is not a key-release record of this model at the index the key is bound to")
	}
	return nil
}

func postJSON(ctx context.Context, url string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		json.Unmarshal(data, &e)
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(e.Error.Message))
	}
	return json.Unmarshal(data, out)
}

// MaxUnsealedModel bounds the plaintext UnsealModel holds in memory.
const MaxUnsealedModel = 64 << 30

// UnsealModel opens the sealed model in dir (docs/seal.md) with the data
// key the broker released, checks that its manifest is the model digest
// and key the node was given, and decrypts every file into memory,
// authenticating every segment and checking every file's digests. It
// returns the plaintext files by path; nothing is written to disk.
func UnsealModel(dir string, key []byte, model [32]byte) (map[string][]byte, error) {
	m, err := seal.Open(dir, key, model)
	if err != nil {
		return nil, fmt.Errorf("sealed model %s: %v", dir, err)
	}
	defer m.Close()
	if n := m.Manifest.TotalSize(); n > MaxUnsealedModel {
		return nil, fmt.Errorf("sealed model %s holds %d bytes, over the %d this node unseals into memory", dir, n, int64(MaxUnsealedModel))
	}
	files := make(map[string][]byte, len(m.Manifest.Files))
	for _, e := range m.Manifest.Files {
		b, err := m.ReadFile(e.Path)
		if err != nil {
			return nil, fmt.Errorf("sealed model %s: %v", dir, err)
		}
		files[e.Path] = b
	}
	return files, nil
}

// WriteModel writes an unsealed model's files under dir/name for an
// engine that reads weights from files: dir should be a tmpfs inside the
// confidential VM (memory the CPU TEE encrypts), never a disk; WriteModel
// reports whether it is one. Files are 0400 in 0700 directories, written
// through an os.Root, so no path leaves dir/name.
func WriteModel(dir, name string, files map[string][]byte) (onTmpfs bool, err error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return false, fmt.Errorf("model name %q cannot name a directory", name)
	}
	base := filepath.Join(dir, name)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return false, err
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return false, err
	}
	defer root.Close()
	for p, b := range files {
		if d := filepath.Dir(p); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return false, fmt.Errorf("unsealed model %s: %v", name, err)
			}
		}
		root.Remove(p) // a copy from an earlier start is read-only
		f, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
		if err != nil {
			return false, fmt.Errorf("unsealed model %s: %v", name, err)
		}
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return false, fmt.Errorf("unsealed model %s: %s: %v", name, p, err)
		}
	}
	return isTmpfs(base), nil
}

// isTmpfs reports whether path is on a tmpfs or ramfs.
func isTmpfs(path string) bool {
	var st syscall.Statfs_t
	if syscall.Statfs(path, &st) != nil {
		return false
	}
	const tmpfsMagic, ramfsMagic = 0x01021994, 0x858458f6
	return st.Type == tmpfsMagic || st.Type == ramfsMagic
}
