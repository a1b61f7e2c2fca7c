package wire

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Media types of RFC 9458 and draft-ietf-ohai-chunked-ohttp-08.
const (
	MediaTypeKeys       = "application/ohttp-keys"
	MediaTypeRequest    = "message/ohttp-req"
	MediaTypeResponse   = "message/ohttp-res"
	MediaTypeChunkedReq = "message/ohttp-chunked-req"
	MediaTypeChunkedRes = "message/ohttp-chunked-res"
)

// Bounds of key configurations.
const (
	// MaxKeyConfigs bounds an application/ohttp-keys list.
	MaxKeyConfigs = 16
	// MaxSuites bounds the symmetric suites of one configuration.
	MaxSuites = 16
)

// KeyConfig is one key configuration (RFC 9458 §3.1): a key identifier, a
// KEM and its public key, and the symmetric suites a client may choose.
type KeyConfig struct {
	ID        uint8
	KEM       uint16
	PublicKey []byte
	Suites    []Suite
}

// Marshal encodes the configuration:
// key_id(8) kem_id(16) public_key(Npk) symmetric_suites_len(16) {kdf_id(16) aead_id(16)}….
func (c KeyConfig) Marshal() []byte {
	b := make([]byte, 0, 3+len(c.PublicKey)+2+4*len(c.Suites))
	b = append(b, c.ID)
	b = binary.BigEndian.AppendUint16(b, c.KEM)
	b = append(b, c.PublicKey...)
	b = binary.BigEndian.AppendUint16(b, uint16(4*len(c.Suites)))
	for _, s := range c.Suites {
		b = binary.BigEndian.AppendUint16(b, s.KDF)
		b = binary.BigEndian.AppendUint16(b, s.AEAD)
	}
	return b
}

// Digest is SHA-256 of the encoded configuration. Multi-candidate
// requests name a candidate by its first 8 bytes.
func (c KeyConfig) Digest() [32]byte { return sha256.Sum256(c.Marshal()) }

// Supports reports whether the configuration offers the suite.
func (c KeyConfig) Supports(s Suite) bool { return slices.Contains(c.Suites, s) }

// ParseKeyConfig decodes one key configuration, which must fill b. The KEM
// must be one this package speaks (its public key size is known), every
// suite must be supported, and the public key must be valid.
func ParseKeyConfig(b []byte) (KeyConfig, error) {
	c, rest, err := parseKeyConfig(b)
	if err != nil {
		return KeyConfig{}, err
	}
	if len(rest) != 0 {
		return KeyConfig{}, fmt.Errorf("key configuration: %d bytes after its end", len(rest))
	}
	return c, nil
}

func parseKeyConfig(b []byte) (KeyConfig, []byte, error) {
	var c KeyConfig
	if len(b) < 3 {
		return c, nil, errors.New("key configuration: truncated header (want key_id and kem_id)")
	}
	c.ID, c.KEM = b[0], binary.BigEndian.Uint16(b[1:3])
	k, err := kemByID(c.KEM)
	if err != nil {
		return c, nil, fmt.Errorf("key configuration %d: %v", c.ID, err)
	}
	b = b[3:]
	if len(b) < k.pubSize+2 {
		return c, nil, fmt.Errorf("key configuration %d: truncated %s public key", c.ID, KEMName(c.KEM))
	}
	c.PublicKey = bytes.Clone(b[:k.pubSize])
	if _, err := k.kem.NewPublicKey(c.PublicKey); err != nil {
		return c, nil, fmt.Errorf("key configuration %d: invalid %s public key: %v", c.ID, KEMName(c.KEM), err)
	}
	n := int(binary.BigEndian.Uint16(b[k.pubSize:]))
	b = b[k.pubSize+2:]
	switch {
	case n == 0 || n%4 != 0:
		return c, nil, fmt.Errorf("key configuration %d: symmetric suites length %d is not a positive multiple of 4", c.ID, n)
	case n/4 > MaxSuites:
		return c, nil, fmt.Errorf("key configuration %d: %d symmetric suites; the limit is %d", c.ID, n/4, MaxSuites)
	case len(b) < n:
		return c, nil, fmt.Errorf("key configuration %d: truncated symmetric suites", c.ID)
	}
	for i := 0; i < n; i += 4 {
		s := Suite{KDF: binary.BigEndian.Uint16(b[i:]), AEAD: binary.BigEndian.Uint16(b[i+2:])}
		if _, err := suiteByID(s); err != nil {
			return c, nil, fmt.Errorf("key configuration %d: %v", c.ID, err)
		}
		if slices.Contains(c.Suites, s) {
			return c, nil, fmt.Errorf("key configuration %d: suite %s listed twice", c.ID, s)
		}
		c.Suites = append(c.Suites, s)
	}
	return c, b[n:], nil
}

// MarshalKeyConfigs encodes an application/ohttp-keys list (RFC 9458
// §3.2): each configuration prefixed by its 2-byte length.
func MarshalKeyConfigs(cs []KeyConfig) []byte {
	var b []byte
	for _, c := range cs {
		enc := c.Marshal()
		b = binary.BigEndian.AppendUint16(b, uint16(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// ParseKeyConfigs decodes an application/ohttp-keys list. Key identifiers
// must be distinct.
func ParseKeyConfigs(b []byte) ([]KeyConfig, error) {
	var cs []KeyConfig
	for len(b) > 0 {
		if len(cs) == MaxKeyConfigs {
			return nil, fmt.Errorf("key configuration list: more than %d configurations", MaxKeyConfigs)
		}
		if len(b) < 2 {
			return nil, errors.New("key configuration list: truncated length")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b)-2 < n {
			return nil, fmt.Errorf("key configuration list: configuration %d claims %d bytes; %d remain", len(cs)+1, n, len(b)-2)
		}
		c, err := ParseKeyConfig(b[2 : 2+n])
		if err != nil {
			return nil, fmt.Errorf("key configuration list: %v", err)
		}
		if slices.ContainsFunc(cs, func(x KeyConfig) bool { return x.ID == c.ID }) {
			return nil, fmt.Errorf("key configuration list: key id %d used twice", c.ID)
		}
		cs = append(cs, c)
		b = b[2+n:]
	}
	if len(cs) == 0 {
		return nil, errors.New("key configuration list is empty")
	}
	return cs, nil
}

// DefaultSuites are the symmetric suites a sworn node offers.
var DefaultSuites = []Suite{{KDFHKDFSHA256, AEADAES256GCM}, {KDFHKDFSHA256, AEADChaCha20Poly1305}}

// PrivateKey is a gateway's key for one configuration. It lives in memory
// only (DESIGN.md: nothing of a node's request keys touches disk).
type PrivateKey struct {
	config KeyConfig
	key    hpke.PrivateKey
}

// GenerateKey makes a new key for the configuration (id, kem, suites).
func GenerateKey(id uint8, kem uint16, suites []Suite) (*PrivateKey, error) {
	k, err := kemByID(kem)
	if err != nil {
		return nil, err
	}
	sk, err := k.kem.GenerateKey()
	if err != nil {
		return nil, err
	}
	return newPrivateKey(id, kem, suites, sk)
}

// NewPrivateKey makes the key for a configuration from the KEM's encoded
// private key (RFC 9180 SerializePrivateKey; the 32-byte seed for X-Wing),
// for test vectors and for keys that a caller keeps itself.
func NewPrivateKey(id uint8, kem uint16, suites []Suite, secret []byte) (*PrivateKey, error) {
	k, err := kemByID(kem)
	if err != nil {
		return nil, err
	}
	sk, err := k.kem.NewPrivateKey(secret)
	if err != nil {
		return nil, fmt.Errorf("%s private key: %v", KEMName(kem), err)
	}
	return newPrivateKey(id, kem, suites, sk)
}

func newPrivateKey(id uint8, kem uint16, suites []Suite, sk hpke.PrivateKey) (*PrivateKey, error) {
	if len(suites) == 0 || len(suites) > MaxSuites {
		return nil, fmt.Errorf("a key configuration needs 1 to %d suites", MaxSuites)
	}
	for _, s := range suites {
		if _, err := suiteByID(s); err != nil {
			return nil, err
		}
	}
	return &PrivateKey{config: KeyConfig{ID: id, KEM: kem, PublicKey: sk.PublicKey().Bytes(), Suites: slices.Clone(suites)}, key: sk}, nil
}

// Config returns the key's public configuration.
func (k *PrivateKey) Config() KeyConfig {
	c := k.config
	c.PublicKey = bytes.Clone(c.PublicKey)
	c.Suites = slices.Clone(c.Suites)
	return c
}

// NodeKeys makes a node's default request keys: key id firstID, the
// X-Wing hybrid, and key id firstID+1, classical X25519 for off-the-shelf
// OHTTP clients, each with DefaultSuites. A node that rotates its keys
// moves firstID on, so that the keys of two epochs never share an id.
func NodeKeys(firstID uint8) ([]*PrivateKey, error) {
	pq, err := GenerateKey(firstID, KEMXWing, DefaultSuites)
	if err != nil {
		return nil, err
	}
	classical, err := GenerateKey(firstID+1, KEMX25519, DefaultSuites)
	if err != nil {
		return nil, err
	}
	return []*PrivateKey{pq, classical}, nil
}

// Choose picks the key and suite a client uses from a node's attested key
// configuration list: the first post-quantum key, with its first suite;
// a classical key only when allowClassical (policy wire.allow_classical).
func Choose(cs []KeyConfig, allowClassical bool) (KeyConfig, Suite, error) {
	for _, pass := range []bool{true, false} {
		for _, c := range cs {
			if IsPostQuantum(c.KEM) == pass && (pass || allowClassical) && len(c.Suites) > 0 {
				return c, c.Suites[0], nil
			}
		}
	}
	if allowClassical {
		return KeyConfig{}, Suite{}, errors.New("the node offers no usable key configuration")
	}
	return KeyConfig{}, Suite{}, errors.New("the node offers no post-quantum key, and the policy does not allow classical suites (wire.allow_classical)")
}

// Bytes returns the key's encoded private key, for a caller that must keep
// it (tests that search output for it, for one). A node never writes it
// anywhere.
func (k *PrivateKey) Bytes() ([]byte, error) { return k.key.Bytes() }

// SealTo encrypts a short secret to a key configuration with single-shot
// HPKE (RFC 9180 base mode): enc ‖ ciphertext. The key broker wraps model
// keys to a node's attested request key this way; info binds what the
// secret is for.
func SealTo(c KeyConfig, s Suite, info, plaintext []byte) ([]byte, error) {
	if !c.Supports(s) {
		return nil, fmt.Errorf("%w: key %d offers %v, not %s", ErrSuite, c.ID, c.Suites, s)
	}
	k, err := kemByID(c.KEM)
	if err != nil {
		return nil, err
	}
	si, err := suiteByID(s)
	if err != nil {
		return nil, err
	}
	pk, err := k.kem.NewPublicKey(c.PublicKey)
	if err != nil {
		return nil, err
	}
	return hpke.Seal(pk, si.kdf, si.aead, info, plaintext)
}

// OpenSealed decrypts what SealTo encrypted to this key.
func (k *PrivateKey) OpenSealed(s Suite, info, sealed []byte) ([]byte, error) {
	si, err := suiteByID(s)
	if err != nil {
		return nil, err
	}
	pt, err := hpke.Open(k.key, si.kdf, si.aead, info, sealed)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// KeyReleaseInfo is the HPKE info a key broker seals a model key with
// (docs/kbs.md): it binds the model digest, the broker's nonce and the log
// index of the key-release record.
func KeyReleaseInfo(model [32]byte, nonce []byte, logIndex uint64) []byte {
	b := append([]byte("sworn kbs key release v1"), 0)
	b = append(b, model[:]...)
	b = append(b, nonce...)
	return binary.BigEndian.AppendUint64(b, logIndex)
}
