package tdx

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
)

// IntelSGXRootSPKI is the hex SHA-256 of the SubjectPublicKeyInfo of
// Intel's SGX Root CA ("Intel SGX Root CA", ECDSA P-256), which certifies
// every PCK chain and the signers of TCB info, QE identity and the CRLs.
const IntelSGXRootSPKI = "a0af031289f5d5d4132f9186068a7fc13628633ba235777472e29b6b6c67a49e"

// Roots is a set of trusted roots for TDX evidence, pinned by the SHA-256
// of their SubjectPublicKeyInfo: the root certificate a chain ends in must
// be self-signed and carry a pinned key.
type Roots struct {
	// Simulated is true for sworn's simulated roots.
	Simulated bool
	spki      map[[32]byte]bool
}

// ProductionRoots returns Intel's production root.
func ProductionRoots() *Roots {
	var pin [32]byte
	if n, err := hex.Decode(pin[:], []byte(IntelSGXRootSPKI)); err != nil || n != len(pin) {
		panic("tdx: bad pinned root SPKI hash")
	}
	return &Roots{spki: map[[32]byte]bool{pin: true}}
}

// Trusts reports whether c is a CA certificate with a pinned key. (The
// Verifier also checks that it is self-signed.)
func (r *Roots) Trusts(c *x509.Certificate) bool {
	return c.IsCA && r.spki[sha256.Sum256(c.RawSubjectPublicKeyInfo)]
}

// SPKIHash returns the hex SHA-256 of a certificate's SubjectPublicKeyInfo.
func SPKIHash(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
}
