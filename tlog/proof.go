package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/formats/proof"
)

// MaxProofSize bounds a proof file: a record, up to 63 hashes and a
// checkpoint with its cosignatures.
const MaxProofSize = 128 << 10

// maxCheckpointSize bounds a signed checkpoint.
const maxCheckpointSize = 16 << 10

const proofHeader = "c2sp.org/tlog-proof@v1"

// Proof is a stapled proof file (".tlog-proof"): a C2SP tlog-proof whose
// extra data is the canonical signed record, so that the file alone proves
// that the record is in the log.
type Proof struct {
	// Record is the log entry: the canonical signed record.
	Record []byte
	// Index is the entry's index in the log.
	Index uint64
	// Hashes is the RFC 6962 inclusion proof to the checkpoint's root.
	Hashes [][sha256.Size]byte
	// Checkpoint is the signed checkpoint note with its cosignatures.
	Checkpoint []byte
}

// Marshal encodes the proof in the c2sp.org/tlog-proof@v1 format.
func (p *Proof) Marshal() []byte {
	return proof.TLogProof{Index: p.Index, Hashes: p.Hashes, Checkpoint: p.Checkpoint, ExtraData: p.Record}.Marshal()
}

// ParseProof decodes a proof file strictly: bounded, every line in its
// canonical form, the extra data present (it holds the record), at most 63
// hashes, and a checkpoint of bounded size. It does not verify anything.
func ParseProof(data []byte) (*Proof, error) {
	if len(data) > MaxProofSize {
		return nil, fmt.Errorf("proof is %d bytes; the limit is %d", len(data), MaxProofSize)
	}
	rest := data
	line := func() (string, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		l := string(rest[:i])
		rest = rest[i+1:]
		return l, true
	}
	l, ok := line()
	if !ok || l != proofHeader {
		return nil, fmt.Errorf("proof does not start with the line %q: it is not a tlog-proof file", proofHeader)
	}
	var p Proof
	l, ok = line()
	e, isExtra := strings.CutPrefix(l, "extra ")
	if !ok || !isExtra {
		return nil, errors.New("proof has no \"extra\" line: a sworn proof carries its record there")
	}
	rec, err := base64.StdEncoding.Strict().DecodeString(e)
	if err != nil || len(rec) == 0 {
		return nil, errors.New("proof: the extra line is not valid base64")
	}
	if len(rec) > MaxRecordSize {
		return nil, fmt.Errorf("proof: the record is %d bytes; the limit is %d", len(rec), MaxRecordSize)
	}
	p.Record = rec
	l, ok = line()
	is, isIndex := strings.CutPrefix(l, "index ")
	if !ok || !isIndex {
		return nil, errors.New("proof has no \"index N\" line after the extra line")
	}
	p.Index, err = strconv.ParseUint(is, 10, 64)
	if err != nil || strconv.FormatUint(p.Index, 10) != is {
		return nil, fmt.Errorf("proof: index %q is not a decimal number", is)
	}
	for {
		l, ok = line()
		if !ok {
			return nil, errors.New("proof ends before the blank line that precedes the checkpoint")
		}
		if l == "" {
			break
		}
		if len(p.Hashes) == 63 {
			return nil, errors.New("proof has more than 63 hashes")
		}
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("proof: hash line %d is not a base64 SHA-256 hash", len(p.Hashes)+1)
		}
		p.Hashes = append(p.Hashes, [sha256.Size]byte(h))
	}
	if len(rest) == 0 {
		return nil, errors.New("proof has no checkpoint")
	}
	if len(rest) > maxCheckpointSize {
		return nil, fmt.Errorf("proof: checkpoint is %d bytes; the limit is %d", len(rest), maxCheckpointSize)
	}
	if rest[len(rest)-1] != '\n' {
		return nil, errors.New("proof: checkpoint does not end with a newline")
	}
	p.Checkpoint = bytes.Clone(rest)
	if !bytes.Equal(p.Marshal(), data) {
		return nil, errors.New("proof is not in canonical form")
	}
	return &p, nil
}
