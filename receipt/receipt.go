// Package receipt signs and verifies sworn receipts: with each answer a node
// signs, with its attested Ed25519 receipt key, what it answered — digests
// of the request and the response, the model, the release and the bundle it
// runs under, the time, token counts and the HPKE suite — as a COSE_Sign1
// message (RFC 9052) over a deterministic CBOR payload. With the node's
// bundle a receipt verifies offline, years later, by anyone it is shown to.
// See docs/receipt.md.
package receipt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/fxamacker/cbor/v2"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/veraison/go-cose"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/tlog"
)

// Version is the only receipt payload version this package reads and writes.
const Version = 1

// ContentType is the COSE content type (protected header label 3) of a
// receipt's payload.
const ContentType = "application/sworn-receipt+cbor"

// Size bounds. A receipt is a few hundred bytes; anything larger is refused
// before it is parsed.
const (
	// MaxSize bounds an encoded receipt (the whole COSE_Sign1_Tagged item).
	MaxSize = 4 << 10
	// MaxNonceSize bounds the client's nonce.
	MaxNonceSize = 64
	// MaxOriginSize bounds the release log's origin line.
	MaxOriginSize = 256
)

// Trailer is the binary HTTP trailer field that carries an answer's
// receipt, base64url without padding, inside the encrypted response, so
// that only the client sees it (docs/node.md).
const Trailer = "sworn-receipt"

// ResponseDomain separates the response digest from every other use of
// SHA-256: response digest = SHA-256(ResponseDomain ‖ uint16 status ‖ content).
const ResponseDomain = "sworn-response-v1"

// Payload is what a receipt signs. It is encoded as deterministic CBOR
// (RFC 8949 §4.2) with integer keys; docs/receipt.md has the table.
type Payload struct {
	// Version is the payload format version, Version.
	Version uint `cbor:"1,keyasint"`
	// Request is RequestDigest of the binary HTTP request as the node
	// decrypted it.
	Request Digest `cbor:"2,keyasint"`
	// Response is ResponseDigest of the answer's status and content.
	Response Digest `cbor:"3,keyasint"`
	// Model is the digest of the model that answered (the sealed weights'
	// manifest digest).
	Model Digest `cbor:"4,keyasint"`
	// Release names the release log entry the bundle's stapled proof
	// proves; nil when the bundle staples none.
	Release *Release `cbor:"5,keyasint,omitempty"`
	// Bundle is SHA-256 of the node's encoded bundle.
	Bundle Digest `cbor:"6,keyasint"`
	// NodeKey is KeyID of the node's receipt key; it equals the kid.
	NodeKey Digest `cbor:"7,keyasint"`
	// Nonce is the client's nonce, when the request carried one.
	Nonce []byte `cbor:"8,keyasint,omitempty"`
	// Time is when the node signed, in Unix seconds.
	Time int64 `cbor:"9,keyasint"`
	// Tokens are the answer's token counts.
	Tokens Tokens `cbor:"10,keyasint"`
	// Suite is the HPKE suite the request was encrypted with.
	Suite Suite `cbor:"11,keyasint"`
	// Status is the answer's HTTP status.
	Status uint16 `cbor:"12,keyasint"`
}

// Digest is a SHA-256 digest in a payload, encoded as a 32-byte CBOR
// byte string.
type Digest [32]byte

// UnmarshalCBOR decodes exactly a 32-byte byte string with its one-byte
// length head (0x58 0x20): fxamacker/cbor would fill the array one
// reflected element at a time, which costs more than the rest of the
// payload.
func (d *Digest) UnmarshalCBOR(data []byte) error {
	if len(data) != 2+len(d) || data[0] != 0x58 || data[1] != byte(len(d)) {
		return fmt.Errorf("a digest is a 32-byte CBOR byte string (0x58 0x20 and 32 bytes), not %d bytes starting %x", len(data), data[:min(len(data), 2)])
	}
	copy(d[:], data[2:])
	return nil
}

// Release names an entry of the release log.
type Release struct {
	// Origin is the log's origin, the first line of its checkpoints.
	Origin string `cbor:"1,keyasint"`
	// Index is the entry's index in the log.
	Index uint64 `cbor:"2,keyasint"`
	// LeafHash is the RFC 6962 leaf hash of the entry (the signed release
	// record): SHA-256(0x00 ‖ record).
	LeafHash Digest `cbor:"3,keyasint"`
}

// Tokens are token counts, as the inference engine reported them.
type Tokens struct {
	Prompt     uint64 `cbor:"1,keyasint"`
	Completion uint64 `cbor:"2,keyasint"`
}

// Suite is the HPKE suite of the request (RFC 9180 identifiers) and how
// many candidate nodes the client encrypted it to (1 for a plain request).
type Suite struct {
	KEM        uint16 `cbor:"1,keyasint"`
	KDF        uint16 `cbor:"2,keyasint"`
	AEAD       uint16 `cbor:"3,keyasint"`
	Candidates uint16 `cbor:"4,keyasint"`
}

// At returns the payload's time.
func (p *Payload) At() time.Time { return time.Unix(p.Time, 0).UTC() }

// Validate checks the payload's fields (not what they refer to).
func (p *Payload) Validate() error {
	if p.Version != Version {
		return fmt.Errorf("receipt format version %d is not supported (this sworn reads version %d)", p.Version, Version)
	}
	if r := p.Release; r != nil {
		if r.Origin == "" || len(r.Origin) > MaxOriginSize || strings.ContainsFunc(r.Origin, func(c rune) bool { return !unicode.IsPrint(c) || c == ' ' }) {
			return fmt.Errorf("receipt release origin %q is not a log origin (1 to %d printable characters, no spaces)", r.Origin, MaxOriginSize)
		}
	}
	if p.Nonce != nil && (len(p.Nonce) == 0 || len(p.Nonce) > MaxNonceSize) {
		return fmt.Errorf("receipt nonce is %d bytes; it must be 1 to %d, or absent", len(p.Nonce), MaxNonceSize)
	}
	if p.Time <= 0 {
		return fmt.Errorf("receipt time %d is not a Unix time after 1970", p.Time)
	}
	if p.Status < 100 || p.Status > 599 {
		return fmt.Errorf("receipt HTTP status %d is not 100 to 599", p.Status)
	}
	if p.Suite.KEM == 0 || p.Suite.KDF == 0 || p.Suite.AEAD == 0 {
		return fmt.Errorf("receipt suite (KEM 0x%04x, KDF 0x%04x, AEAD 0x%04x) has a reserved identifier 0", p.Suite.KEM, p.Suite.KDF, p.Suite.AEAD)
	}
	if p.Suite.Candidates == 0 {
		return errors.New("receipt suite names 0 candidate nodes; a request has at least 1")
	}
	return nil
}

// SetBundle fills the fields that name the node's bundle: its digest, the
// node key id and the release entry of its stapled proof.
func (p *Payload) SetBundle(b *attest.Bundle) error {
	d, err := b.Digest()
	if err != nil {
		return err
	}
	rel, err := ReleaseOf(b)
	if err != nil {
		return err
	}
	p.Bundle, p.NodeKey, p.Release = d, KeyID(b.Keys.ReceiptKey), rel
	return nil
}

// ReleaseOf returns the release entry that a bundle's stapled proof names,
// or nil when it staples none. It does not verify the proof.
func ReleaseOf(b *attest.Bundle) (*Release, error) {
	if b.Release == nil {
		return nil, nil
	}
	pr, err := tlog.ParseProof(b.Release)
	if err != nil {
		return nil, fmt.Errorf("bundle release proof: %v", err)
	}
	origin, _, _ := bytes.Cut(pr.Checkpoint, []byte("\n"))
	return &Release{Origin: string(origin), Index: pr.Index, LeafHash: LeafHash(pr.Record)}, nil
}

// LeafHash returns the RFC 6962 leaf hash of a log entry.
func LeafHash(entry []byte) [32]byte {
	return [32]byte(rfc6962.DefaultHasher.HashLeaf(entry))
}

// RequestDigest returns the request digest: SHA-256 of the binary HTTP
// (RFC 9292) request message exactly as the node decrypted it.
func RequestDigest(bhttp []byte) [32]byte { return sha256.Sum256(bhttp) }

// ResponseDigest returns the response digest: SHA-256(ResponseDomain ‖
// uint16 status, big-endian ‖ content), content being the response body
// as delivered to the client (for a streamed answer, every chunk's content
// in order).
func ResponseDigest(status uint16, content []byte) [32]byte {
	h := NewResponseHasher(status)
	h.Write(content)
	return h.Sum()
}

// ResponseHasher computes a response digest while the content streams in:
// write each chunk's content in order, then call Sum.
type ResponseHasher struct{ h hash.Hash }

// NewResponseHasher starts a response digest for an answer with the given
// HTTP status.
func NewResponseHasher(status uint16) *ResponseHasher {
	h := sha256.New()
	h.Write([]byte(ResponseDomain))
	h.Write(binary.BigEndian.AppendUint16(nil, status))
	return &ResponseHasher{h}
}

// Write adds content; it never fails.
func (r *ResponseHasher) Write(p []byte) (int, error) { return r.h.Write(p) }

// Sum returns the digest of the content written so far.
func (r *ResponseHasher) Sum() [32]byte { return [32]byte(r.h.Sum(nil)) }

// KeyID returns the key id of a receipt public key: SHA-256 of its 32 bytes.
func KeyID(pub ed25519.PublicKey) [32]byte { return sha256.Sum256(pub) }

// Receipt is a parsed receipt. Its signature is not checked until Verify.
type Receipt struct {
	// KeyID is the kid of the protected header: KeyID of the signing key.
	KeyID [32]byte
	// Payload is the signed payload.
	Payload Payload

	protected []byte // the encoded protected header, a CBOR byte string
	payload   []byte // the payload's bytes, as signed
	signature []byte
}

// A receipt is a COSE_Sign1 in one fixed profile: the protected header is
// fixed but for the kid, the unprotected header is empty, the signature is
// 64 bytes. So Sign writes and Parse reads its few framing bytes directly
// (RFC 9052 §4.2 and §4.4); go-cose, an independent implementation, checks
// both in the tests.
var (
	// cose1Prefix starts every receipt: tag 18 (COSE_Sign1), an array of 4.
	cose1Prefix = []byte{0xd2, 0x84}
	// emptyMap is the only unprotected header a receipt may have.
	emptyMap = []byte{0xa0}
	// sigPrefix starts the encoded signature: a byte string of 64 bytes.
	sigPrefix = []byte{0x58, ed25519.SignatureSize}
	// sig1Context starts the Sig_structure that is signed:
	// ["Signature1", protected, external_aad, payload].
	sig1Context = append([]byte{0x84, 0x6a}, "Signature1"...)
)

// headerPrefix is the encoded protected header (a byte string wrapping
// the header map {1: EdDSA, 3: ContentType, 4: kid}) up to the kid's 32
// bytes, which end it.
var headerPrefix = func() []byte {
	h, err := cose.ProtectedHeader{
		cose.HeaderLabelAlgorithm:   cose.AlgorithmEdDSA,
		cose.HeaderLabelContentType: ContentType,
		cose.HeaderLabelKeyID:       make([]byte, sha256.Size),
	}.MarshalCBOR()
	if err != nil {
		panic(err)
	}
	return h[:len(h)-sha256.Size]
}()

// sigStructure returns the bytes a receipt's signature covers: the
// COSE Sig_structure with an empty external_aad.
func sigStructure(protected, payload []byte) []byte {
	b := make([]byte, 0, len(sig1Context)+len(protected)+4+len(payload))
	b = append(b, sig1Context...)
	b = append(b, protected...)
	b = append(b, 0x40)
	b = appendHead(b, 0x40, uint64(len(payload)))
	return append(b, payload...)
}

// Sign encodes the payload and signs it with the node's receipt key. The
// payload must be valid and name the key (NodeKey = KeyID of its public half).
func Sign(key ed25519.PrivateKey, p *Payload) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("receipt key is %d bytes, want a %d-byte Ed25519 private key", len(key), ed25519.PrivateKeySize)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	kid := KeyID(key.Public().(ed25519.PublicKey))
	if p.NodeKey != kid {
		return nil, fmt.Errorf("payload names node key %x, but the signing key's id is %x", p.NodeKey[:8], kid[:8])
	}
	payload := appendPayload(make([]byte, 0, 512), p)
	protected := append(bytes.Clone(headerPrefix), kid[:]...)
	sig := ed25519.Sign(key, sigStructure(protected, payload))
	out := make([]byte, 0, len(cose1Prefix)+len(protected)+len(emptyMap)+3+len(payload)+len(sigPrefix)+len(sig))
	out = append(out, cose1Prefix...)
	out = append(out, protected...)
	out = append(out, emptyMap...)
	out = appendHead(out, 0x40, uint64(len(payload)))
	out = append(out, payload...)
	out = append(out, sigPrefix...)
	out = append(out, sig...)
	if len(out) > MaxSize {
		return nil, fmt.Errorf("receipt is %d bytes; the limit is %d", len(out), MaxSize)
	}
	return out, nil
}

// Parse decodes a receipt strictly: bounded, a tagged COSE_Sign1 in
// deterministic CBOR, exactly the protected header Sign writes (alg EdDSA,
// the content type, a 32-byte kid), an empty unprotected header, a 64-byte
// signature, and a payload of a known version, in deterministic CBOR,
// without unknown fields, whose node key is the kid. It does not check the
// signature; see Verify.
func Parse(data []byte) (*Receipt, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("receipt is %d bytes; the limit is %d", len(data), MaxSize)
	}
	// The Receipt keeps slices of its own copy, which no caller changes.
	rest, ok := bytes.CutPrefix(bytes.Clone(data), cose1Prefix)
	if !ok {
		return nil, errors.New("not a sworn receipt: it does not start with a tagged COSE_Sign1 (0xd2 0x84)")
	}
	// The header is fixed but for the kid, so comparing bytes checks
	// every parameter and its encoding.
	n := len(headerPrefix) + sha256.Size
	if len(rest) < n || !bytes.HasPrefix(rest, headerPrefix) {
		return nil, fmt.Errorf("receipt's protected header is not exactly {alg: EdDSA, content type: %q, kid: the 32-byte node key id}", ContentType)
	}
	r := &Receipt{KeyID: [32]byte(rest[len(headerPrefix):n]), protected: rest[:n:n]}
	if rest, ok = bytes.CutPrefix(rest[n:], emptyMap); !ok {
		return nil, errors.New("receipt has unprotected header parameters, or none at all; a receipt has an empty map")
	}
	var err error
	if r.payload, rest, err = cutBytes(rest); err != nil {
		return nil, fmt.Errorf("receipt payload: %v", err)
	}
	if r.signature, rest, err = cutBytes(rest); err != nil {
		return nil, fmt.Errorf("receipt signature: %v", err)
	}
	if len(r.signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("receipt signature is %d bytes, want a %d-byte Ed25519 signature", len(r.signature), ed25519.SignatureSize)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("receipt is not a well-formed COSE_Sign1: %d bytes after it", len(rest))
	}
	if err := parsePayload(r.payload, &r.Payload); err != nil {
		return nil, err
	}
	if r.Payload.NodeKey != r.KeyID {
		return nil, fmt.Errorf("receipt payload names node key %x, but its kid is %x", r.Payload.NodeKey[:8], r.KeyID[:8])
	}
	return r, nil
}

// cutBytes splits a CBOR byte string, whose head must be in its shortest
// form (RFC 8949 §4.2.1), off the front of b.
func cutBytes(b []byte) (content, rest []byte, err error) {
	if len(b) == 0 || b[0]&0xe0 != 0x40 {
		return nil, nil, errors.New("not a CBOR byte string")
	}
	n, head := int(b[0]&0x1f), 1
	switch {
	case n < 24:
	case n == 24 && len(b) >= 2:
		n, head = int(b[1]), 2
	case n == 25 && len(b) >= 3:
		n, head = int(b[1])<<8|int(b[2]), 3
	default:
		return nil, nil, errors.New("not a definite-length CBOR byte string of at most 64 KiB")
	}
	if len(appendHead(nil, 0x40, uint64(n))) != head {
		return nil, nil, errors.New("length is not in deterministic CBOR encoding (RFC 8949 §4.2)")
	}
	if len(b)-head < n {
		return nil, nil, fmt.Errorf("truncated: %d bytes announced, %d there", n, len(b)-head)
	}
	return b[head : head+n : head+n], b[head+n:], nil
}

// appendPayload appends p's deterministic CBOR encoding (RFC 8949 §4.2.1:
// shortest heads, integer keys in ascending order, definite lengths):
// exactly what attest.MarshalCBOR writes for a Payload, without its
// reflection, which costs more than the rest of signing a receipt but the
// signature. TestPayloadEncoding and FuzzParse hold the two equal.
func appendPayload(b []byte, p *Payload) []byte {
	n := uint64(10)
	if p.Release != nil {
		n++
	}
	if len(p.Nonce) > 0 {
		n++
	}
	b = appendHead(b, 0xa0, n)
	b = appendUint(b, 1, uint64(p.Version))
	b = appendDigest(b, 2, &p.Request)
	b = appendDigest(b, 3, &p.Response)
	b = appendDigest(b, 4, &p.Model)
	if r := p.Release; r != nil {
		b = append(b, 5, 0xa3, 1)
		b = appendHead(b, 0x60, uint64(len(r.Origin)))
		b = append(b, r.Origin...)
		b = appendUint(b, 2, r.Index)
		b = appendDigest(b, 3, &r.LeafHash)
	}
	b = appendDigest(b, 6, &p.Bundle)
	b = appendDigest(b, 7, &p.NodeKey)
	if len(p.Nonce) > 0 {
		b = append(b, 8)
		b = appendHead(b, 0x40, uint64(len(p.Nonce)))
		b = append(b, p.Nonce...)
	}
	b = append(b, 9)
	if p.Time >= 0 {
		b = appendHead(b, 0x00, uint64(p.Time))
	} else {
		b = appendHead(b, 0x20, uint64(-(p.Time + 1)))
	}
	b = append(b, 10, 0xa2)
	b = appendUint(b, 1, p.Tokens.Prompt)
	b = appendUint(b, 2, p.Tokens.Completion)
	b = append(b, 11, 0xa4)
	b = appendUint(b, 1, uint64(p.Suite.KEM))
	b = appendUint(b, 2, uint64(p.Suite.KDF))
	b = appendUint(b, 3, uint64(p.Suite.AEAD))
	b = appendUint(b, 4, uint64(p.Suite.Candidates))
	return appendUint(b, 12, uint64(p.Status))
}

// appendUint appends map key k (below 24) and an unsigned integer.
func appendUint(b []byte, k byte, v uint64) []byte { return appendHead(append(b, k), 0x00, v) }

// appendDigest appends map key k (below 24) and a 32-byte byte string.
func appendDigest(b []byte, k byte, d *Digest) []byte {
	return append(append(b, k, 0x58, 32), d[:]...)
}

// appendHead appends a CBOR head of the given major type (its top three
// bits) and argument, in its shortest form.
func appendHead(b []byte, major byte, v uint64) []byte {
	switch {
	case v < 24:
		return append(b, major|byte(v))
	case v <= math.MaxUint8:
		return append(b, major|24, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, major|25), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, major|26), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, major|27), v)
	}
}

// peekMode reads only a payload's version, ignoring the other fields.
var peekMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{MaxNestedLevels: 4, IndefLength: cbor.IndefLengthForbidden}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// parsePayload decodes and validates a payload strictly.
func parsePayload(data []byte, p *Payload) error {
	if len(data) == 0 || data[0]&0xe0 != 0xa0 {
		return errors.New("receipt payload is not a CBOR map")
	}
	if err := attest.UnmarshalCBOR(data, p); err != nil || p.Version != Version {
		// Say first when the payload is of another version, rather than
		// that it has unknown fields.
		var head struct {
			Version uint `cbor:"1,keyasint"`
		}
		if _, perr := peekMode.UnmarshalFirst(data, &head); perr == nil && head.Version != Version {
			return fmt.Errorf("receipt format version %d is not supported (this sworn reads version %d); upgrade sworn", head.Version, Version)
		}
		return fmt.Errorf("receipt payload is malformed: %v", err)
	}
	if !bytes.Equal(appendPayload(make([]byte, 0, len(data)), p), data) {
		return errors.New("receipt payload is not in deterministic CBOR encoding (RFC 8949 §4.2)")
	}
	return p.Validate()
}

// Verify checks that the receipt names pub as its key and that pub signed it.
func (r *Receipt) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("receipt key is %d bytes, want a %d-byte Ed25519 public key", len(pub), ed25519.PublicKeySize)
	}
	if id := KeyID(pub); id != r.KeyID {
		return fmt.Errorf("the receipt was signed by key %x, not by this key (%x)", r.KeyID[:8], id[:8])
	}
	if !ed25519.Verify(pub, sigStructure(r.protected, r.payload), r.signature) {
		return errors.New("the receipt's Ed25519 signature does not verify: the receipt was altered")
	}
	return nil
}
