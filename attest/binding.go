package attest

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// BindingSize is the size of a binding in bytes (SHA-512).
const BindingSize = sha512.Size

// bindingLabel is the domain-separation prefix of a binding.
const bindingLabel = "sworn-binding-v1"

// Binding is the value that every piece of evidence of a node carries, so
// that no piece can be spliced in from another machine or another boot:
//
//	SHA-512("sworn-binding-v1" ‖ requestKeys ‖ receiptKey ‖ freshness)
//
// requestKeys is the node's whole OHTTP key configuration list
// (application/ohttp-keys, RFC 9458 §3.2: each configuration with its key
// id, KEM, public key and suites; see [NodeKeys.RequestKeys]); receiptKey
// its raw 32-byte Ed25519 public key; and freshness the output of
// [Freshness.Bytes], which
// starts with a label naming its mode, so a nonce can never be read as an
// epoch or the other way round.
type Binding [BindingSize]byte

// ComputeBinding returns the binding of the given encoded node keys and
// freshness; Bundle.Binding is the usual way to get one.
func ComputeBinding(requestKey, receiptKey, freshness []byte) Binding {
	h := sha512.New()
	h.Write([]byte(bindingLabel))
	h.Write(requestKey)
	h.Write(receiptKey)
	h.Write(freshness)
	var b Binding
	h.Sum(b[:0])
	return b
}

// Nonce limits, in bytes, for challenge-mode freshness.
const (
	MinNonceSize = 16
	MaxNonceSize = 64
)

// The labels that start the two encodings of freshness. They have the same
// length and differ, so the two modes cannot produce the same bytes.
const (
	nonceLabel = "sworn-nonce-v1"
	epochLabel = "sworn-epoch-v1"
)

// Freshness says why a bundle is recent. Exactly one of Nonce (challenge
// mode: a client's nonce) or Epoch (passport mode: a time window and the hash
// of a release-log checkpoint) is set.
type Freshness struct {
	Nonce []byte `cbor:"1,keyasint,omitempty" json:"nonce,omitempty"`
	Epoch *Epoch `cbor:"2,keyasint,omitempty" json:"epoch,omitempty"`
}

// Epoch is the passport-mode freshness: the bundle is valid from NotBefore
// to NotAfter (Unix seconds), for the log state whose checkpoint hashes to
// Checkpoint (SHA-256; all zero when no log is configured).
type Epoch struct {
	NotBefore  int64  `cbor:"1,keyasint" json:"not_before"`
	NotAfter   int64  `cbor:"2,keyasint" json:"not_after"`
	Checkpoint []byte `cbor:"3,keyasint" json:"checkpoint"`
}

// Validate checks that exactly one form of freshness is present and well formed.
func (f Freshness) Validate() error {
	switch {
	case f.Nonce != nil && f.Epoch != nil:
		return errors.New("freshness has both a nonce and an epoch; a bundle uses one or the other")
	case f.Nonce != nil:
		if len(f.Nonce) < MinNonceSize || len(f.Nonce) > MaxNonceSize {
			return fmt.Errorf("nonce is %d bytes; it must be %d to %d bytes", len(f.Nonce), MinNonceSize, MaxNonceSize)
		}
	case f.Epoch != nil:
		if f.Epoch.NotAfter <= f.Epoch.NotBefore {
			return fmt.Errorf("epoch ends (%d) before it starts (%d)", f.Epoch.NotAfter, f.Epoch.NotBefore)
		}
		if len(f.Epoch.Checkpoint) != 32 {
			return fmt.Errorf("epoch checkpoint hash is %d bytes, want 32", len(f.Epoch.Checkpoint))
		}
	default:
		return errors.New("freshness is empty: a bundle needs a nonce or an epoch")
	}
	return nil
}

// Bytes returns the freshness as it enters the binding: in challenge mode
// "sworn-nonce-v1" ‖ nonce; in passport mode "sworn-epoch-v1" ‖ NotBefore ‖
// NotAfter (big-endian int64) ‖ Checkpoint.
func (f Freshness) Bytes() []byte {
	if f.Epoch == nil {
		return append([]byte(nonceLabel), f.Nonce...)
	}
	b := make([]byte, 0, len(epochLabel)+16+len(f.Epoch.Checkpoint))
	b = append(b, epochLabel...)
	b = binary.BigEndian.AppendUint64(b, uint64(f.Epoch.NotBefore))
	b = binary.BigEndian.AppendUint64(b, uint64(f.Epoch.NotAfter))
	return append(b, f.Epoch.Checkpoint...)
}

// Contains reports whether t falls inside the epoch's window.
func (e *Epoch) Contains(t time.Time) bool {
	u := t.Unix()
	return u >= e.NotBefore && u < e.NotAfter
}
