package wire

import (
	"crypto/hpke"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// HPKE identifiers (RFC 9180 §7; X-Wing: draft-ietf-hpke-pq) that this
// package speaks.
const (
	// KEMX25519 is DHKEM(X25519, HKDF-SHA256): classical, for interop with
	// off-the-shelf OHTTP clients.
	KEMX25519 uint16 = 0x0020
	// KEMXWing is ML-KEM-768+X25519 (X-Wing), Go's hpke.MLKEM768X25519:
	// the post-quantum hybrid sworn uses by default.
	KEMXWing uint16 = 0x647a

	KDFHKDFSHA256 uint16 = 0x0001
	KDFHKDFSHA384 uint16 = 0x0002
	KDFHKDFSHA512 uint16 = 0x0003

	AEADAES128GCM        uint16 = 0x0001
	AEADAES256GCM        uint16 = 0x0002
	AEADChaCha20Poly1305 uint16 = 0x0003
)

// Suite is a symmetric algorithm pair of a key configuration: an HPKE KDF
// and AEAD.
type Suite struct {
	KDF, AEAD uint16
}

// String names the suite.
func (s Suite) String() string {
	return fmt.Sprintf("%s/%s", kdfName(s.KDF), aeadName(s.AEAD))
}

// kemInfo is what the package needs to know of a KEM.
type kemInfo struct {
	kem     hpke.KEM
	pubSize int
	encSize int
	pq      bool
}

func kemByID(id uint16) (kemInfo, error) {
	switch id {
	case KEMX25519:
		k, _ := hpke.NewKEM(id)
		return kemInfo{kem: k, pubSize: 32, encSize: 32}, nil
	case KEMXWing:
		return kemInfo{kem: hpke.MLKEM768X25519(), pubSize: 1216, encSize: 1120, pq: true}, nil
	}
	return kemInfo{}, fmt.Errorf("HPKE KEM 0x%04x is not supported (use 0x%04x X-Wing or 0x%04x X25519)", id, KEMXWing, KEMX25519)
}

// IsPostQuantum reports whether the KEM resists a quantum adversary.
func IsPostQuantum(kem uint16) bool {
	k, err := kemByID(kem)
	return err == nil && k.pq
}

// suiteInfo holds a suite's HPKE objects and sizes.
type suiteInfo struct {
	kdf     hpke.KDF
	aead    hpke.AEAD
	hash    func() hash.Hash
	nk, nn  int // AEAD key and nonce sizes
	secretN int // max(Nn, Nk): the response secret and nonce size
}

func suiteByID(s Suite) (suiteInfo, error) {
	var si suiteInfo
	switch s.KDF {
	case KDFHKDFSHA256:
		si.kdf, si.hash = hpke.HKDFSHA256(), sha256.New
	case KDFHKDFSHA384:
		si.kdf, si.hash = hpke.HKDFSHA384(), sha512.New384
	case KDFHKDFSHA512:
		si.kdf, si.hash = hpke.HKDFSHA512(), sha512.New
	default:
		return si, fmt.Errorf("HPKE KDF 0x%04x is not supported (use HKDF-SHA256, -SHA384 or -SHA512)", s.KDF)
	}
	switch s.AEAD {
	case AEADAES128GCM:
		si.aead, si.nk = hpke.AES128GCM(), 16
	case AEADAES256GCM:
		si.aead, si.nk = hpke.AES256GCM(), 32
	case AEADChaCha20Poly1305:
		si.aead, si.nk = hpke.ChaCha20Poly1305(), 32
	default:
		return si, fmt.Errorf("HPKE AEAD 0x%04x is not supported (use AES-128-GCM, AES-256-GCM or ChaCha20-Poly1305)", s.AEAD)
	}
	si.nn = 12
	si.secretN = max(si.nk, si.nn)
	return si, nil
}

func kdfName(id uint16) string {
	switch id {
	case KDFHKDFSHA256:
		return "HKDF-SHA256"
	case KDFHKDFSHA384:
		return "HKDF-SHA384"
	case KDFHKDFSHA512:
		return "HKDF-SHA512"
	}
	return fmt.Sprintf("KDF(0x%04x)", id)
}

func aeadName(id uint16) string {
	switch id {
	case AEADAES128GCM:
		return "AES-128-GCM"
	case AEADAES256GCM:
		return "AES-256-GCM"
	case AEADChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	}
	return fmt.Sprintf("AEAD(0x%04x)", id)
}

// KEMName names a KEM identifier.
func KEMName(id uint16) string {
	switch id {
	case KEMX25519:
		return "DHKEM(X25519, HKDF-SHA256)"
	case KEMXWing:
		return "ML-KEM-768+X25519 (X-Wing)"
	}
	return fmt.Sprintf("KEM(0x%04x)", id)
}
