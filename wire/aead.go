package wire

import (
	"crypto/aes"
	"crypto/cipher"

	"golang.org/x/crypto/chacha20poly1305"
)

// newAEAD makes the suite's AEAD for the response keys that OHTTP derives
// outside HPKE (RFC 9458 §4.4).
func newAEAD(si suiteInfo, key []byte) (cipher.AEAD, error) {
	if si.aead.ID() == AEADChaCha20Poly1305 {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
