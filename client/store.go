package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/atomicfile"
)

// ReceiptStore keeps receipts in a directory, one file per receipt that
// holds the receipt and the bundle it depends on, so each verifies alone
// (sworn receipts verify ID; sworn verify receipt after export).
type ReceiptStore struct {
	// Dir is the directory (created when a receipt is first kept).
	Dir string
}

// DefaultReceiptDir is $XDG_DATA_HOME/sworn/receipts, or
// ~/.local/share/sworn/receipts.
func DefaultReceiptDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "sworn", "receipts"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no receipt directory: set XDG_DATA_HOME or HOME, or pass one")
	}
	return filepath.Join(home, ".local", "share", "sworn", "receipts"), nil
}

// Kept is a kept receipt with its bundle (deterministic CBOR, version 1).
type Kept struct {
	Version uint   `cbor:"1,keyasint"`
	Receipt []byte `cbor:"2,keyasint"`
	Bundle  []byte `cbor:"3,keyasint"`
}

// MaxKept bounds a kept receipt file.
const MaxKept = attest.MaxBundleSize + 8<<10

var idRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Put keeps a receipt with its bundle and returns its id.
func (s *ReceiptStore) Put(receipt []byte, b *attest.Bundle) (string, error) {
	enc, err := b.Marshal()
	if err != nil {
		return "", err
	}
	data, err := attest.MarshalCBOR(Kept{Version: 1, Receipt: receipt, Bundle: enc})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", fmt.Errorf("receipt store %s: %v", s.Dir, err)
	}
	id := ReceiptID(receipt)
	if err := atomicfile.Write(filepath.Join(s.Dir, id+".receipt"), data, 0o600); err != nil {
		return "", fmt.Errorf("receipt store: %v", err)
	}
	return id, nil
}

// Get reads a kept receipt by id (or a unique prefix of it).
func (s *ReceiptStore) Get(id string) (*Kept, *attest.Bundle, error) {
	ids, err := s.List()
	if err != nil {
		return nil, nil, err
	}
	var match []string
	for _, x := range ids {
		if id != "" && strings.HasPrefix(x, id) {
			match = append(match, x)
		}
	}
	switch len(match) {
	case 0:
		return nil, nil, fmt.Errorf("no receipt %q in %s (sworn receipts list shows them)", clip(id), s.Dir)
	case 1:
	default:
		return nil, nil, fmt.Errorf("%q names %d receipts; give more of the id", clip(id), len(match))
	}
	data, err := readLimited(filepath.Join(s.Dir, match[0]+".receipt"), MaxKept)
	if err != nil {
		return nil, nil, err
	}
	var k Kept
	if err := attest.UnmarshalCBOR(data, &k); err != nil || k.Version != 1 {
		return nil, nil, fmt.Errorf("receipt %s: not a version-1 kept receipt", match[0])
	}
	b, err := attest.ParseBundle(k.Bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("receipt %s: its bundle: %v", match[0], err)
	}
	return &k, b, nil
}

// List returns the ids of the kept receipts, sorted.
func (s *ReceiptStore) List() ([]string, error) {
	es, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range es {
		if id, ok := strings.CutSuffix(e.Name(), ".receipt"); ok && idRE.MatchString(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return os.ReadFile(path)
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}
