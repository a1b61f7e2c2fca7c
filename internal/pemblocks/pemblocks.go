// Package pemblocks decodes PEM files strictly: blocks of one type only,
// bounded in number, and nothing but white space around them.
package pemblocks

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sworn-dev/sworn/internal/safetext"
)

// IsPEM reports whether data looks like PEM text (it has a BEGIN line).
func IsPEM(data []byte) bool { return bytes.Contains(data, []byte("-----BEGIN")) }

// Decode returns the contents of the PEM blocks in data, in order. Every
// block must be of type blockType ("CERTIFICATE", "X509 CRL"); there must
// be at least one and at most max (max <= 0: no limit), and nothing but
// white space may follow the last one.
func Decode(data []byte, blockType string, max int) ([][]byte, error) {
	var out [][]byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != blockType {
			return nil, fmt.Errorf("PEM block %d is %s, want %q", len(out)+1, safetext.QuoteString(b.Type), blockType)
		}
		if max > 0 && len(out) == max {
			return nil, fmt.Errorf("more than %d PEM %s blocks", max, blockType)
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM %s block found", blockType)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the last PEM block is not PEM")
	}
	return out, nil
}
