package nvgpu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/pemblocks"
)

// Chain limits.
const (
	// MaxChainCerts bounds a certificate chain (NVIDIA's have 5 for a
	// device and 4 for a RIM).
	MaxChainCerts = 8
	// MaxChainSize bounds a chain's encoding (NVML's buffer is 5 KiB of PEM).
	MaxChainSize = 64 << 10
)

// SPKIHash is the SHA-256 of a certificate's SubjectPublicKeyInfo: how
// roots are pinned, so that a root re-issued with the same key still
// verifies.
type SPKIHash [32]byte

// String returns the hash in hex.
func (h SPKIHash) String() string { return hex.EncodeToString(h[:]) }

// SPKIOf returns the SPKI hash of a certificate.
func SPKIOf(c *x509.Certificate) SPKIHash { return sha256.Sum256(c.RawSubjectPublicKeyInfo) }

// Roots are the pinned trust anchors of GPU evidence.
type Roots struct {
	// Device pins the device identity root (NVIDIA Device Identity CA).
	Device SPKIHash
	// RIM pins the RIM signing root (NVIDIA CoRIM signing Root CA).
	RIM SPKIHash
	// Simulated marks sworn's simulated roots.
	Simulated bool
}

func mustSPKI(s string) SPKIHash {
	var h SPKIHash
	if b, err := hex.DecodeString(s); err != nil || len(b) != len(h) {
		panic("bad pinned SPKI " + s)
	} else {
		copy(h[:], b)
	}
	return h
}

// ProductionRoots are NVIDIA's real roots, pinned by SPKI SHA-256.
var ProductionRoots = Roots{
	Device: mustSPKI("a90c4eb5acfd3e3d03a25db6a26b84f720ad0503196c627c21ddd48dd85b06a4"),
	RIM:    mustSPKI("dec1dc316477aa851eebdf51327ae9f864bc8d89254657ed1e7eb9168af1e1a3"),
}

// ParseCertChain parses a certificate chain, leaf first: PEM text (as NVML
// returns it) or concatenated DER.
func ParseCertChain(data []byte) ([]*x509.Certificate, error) {
	if len(data) > MaxChainSize {
		return nil, fmt.Errorf("certificate chain is %d bytes; the limit is %d", len(data), MaxChainSize)
	}
	if pemblocks.IsPEM(data) {
		ders, err := pemblocks.Decode(data, "CERTIFICATE", MaxChainCerts)
		if err != nil {
			return nil, fmt.Errorf("certificate chain: %v", err)
		}
		return ParseDERChain(ders)
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("certificate chain is neither PEM nor DER: %v", err)
	}
	if len(certs) > MaxChainCerts {
		return nil, fmt.Errorf("certificate chain has %d certificates; the limit is %d", len(certs), MaxChainCerts)
	}
	return certs, nil
}

// ParseDERChain parses a list of DER certificates, leaf first.
func ParseDERChain(ders [][]byte) ([]*x509.Certificate, error) {
	if len(ders) == 0 {
		return nil, errors.New("certificate chain is empty")
	}
	if len(ders) > MaxChainCerts {
		return nil, fmt.Errorf("certificate chain has %d certificates; the limit is %d", len(ders), MaxChainCerts)
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the chain: %v", i, err)
		}
		certs[i] = c
	}
	return certs, nil
}

// VerifyChain checks a chain, leaf first and root last: the root's SPKI
// hash must equal pin (the pinned key is the trust anchor, so the root's
// self-signature is not needed), and crypto/x509 must build exactly this
// path, each certificate signed by the next, valid at the time at. It returns the chain's earliest expiry.
func VerifyChain(certs []*x509.Certificate, pin SPKIHash, at time.Time) (time.Time, error) {
	if len(certs) < 2 {
		return time.Time{}, fmt.Errorf("chain has %d certificate(s); it needs at least a leaf and the root", len(certs))
	}
	root := certs[len(certs)-1]
	if got := SPKIOf(root); got != pin {
		return time.Time{}, fmt.Errorf("chain ends at %q, whose key (SPKI SHA-256 %s) is not the pinned root %s", root.Subject.CommonName, got, pin)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range certs[1 : len(certs)-1] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("chain does not verify at %s: %v", attest.FormatAt(at), err)
	}
	// The path must be the chain as given, each certificate signed by the
	// next: no certificate skipped or reordered.
	if !slices.ContainsFunc(chains, func(ch []*x509.Certificate) bool {
		return slices.EqualFunc(ch, certs, func(a, b *x509.Certificate) bool { return a.Equal(b) })
	}) {
		return time.Time{}, errors.New("the certificates are not in order (leaf first, each signed by the next, root last)")
	}
	exp := root.NotAfter
	for _, c := range certs {
		if c.NotAfter.Before(exp) {
			exp = c.NotAfter
		}
	}
	return exp, nil
}

// ChainArch returns the architecture named by a device chain's leaf
// ("GH100 A01 GSP FMC LF" is Hopper; "GB100 …", "GB20X …" Blackwell).
func ChainArch(leaf *x509.Certificate) Arch {
	cn := leaf.Subject.CommonName
	switch {
	case strings.HasPrefix(cn, "GH1"):
		return Hopper
	case strings.HasPrefix(cn, "GB1"), strings.HasPrefix(cn, "GB2"):
		return Blackwell
	}
	return ArchUnknown
}

// The FWID extensions of the device leaf certificate.
var (
	oidHopperFWID    = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1}
	oidBlackwellFWID = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1, 1}
	oidSHA384        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
)

// LeafFWID returns the FWID the device leaf certificate carries: for Hopper
// the digest of the RIoT composite-device-ID extension 2.23.133.5.4.1, for
// Blackwell fwids[0] of the DICE TcbInfo extension 2.23.133.5.4.1.1.
func LeafFWID(leaf *x509.Certificate, arch Arch) ([]byte, error) {
	var oid asn1.ObjectIdentifier
	switch arch {
	case Hopper:
		oid = oidHopperFWID
	case Blackwell:
		oid = oidBlackwellFWID
	default:
		return nil, fmt.Errorf("unknown architecture %q", arch)
	}
	for _, e := range leaf.Extensions {
		if !e.Id.Equal(oid) {
			continue
		}
		var fwid []byte
		var ok bool
		if arch == Hopper {
			fwid, ok = parseRIoTFWID(e.Value)
		} else {
			fwid, ok = parseTcbInfoFWID(e.Value)
		}
		if !ok {
			return nil, fmt.Errorf("leaf FWID extension %v is malformed", e.Id)
		}
		return fwid, nil
	}
	return nil, fmt.Errorf("leaf certificate %q has no FWID extension %v for %s", leaf.Subject.CommonName, oid, arch)
}

// readFWID reads SEQUENCE { OID sha384, OCTET STRING(48) }.
func readFWID(s *cryptobyte.String) ([]byte, bool) {
	var f cryptobyte.String
	var oid asn1.ObjectIdentifier
	var d []byte
	if !s.ReadASN1(&f, cbasn1.SEQUENCE) || !f.ReadASN1ObjectIdentifier(&oid) ||
		!f.ReadASN1Bytes(&d, cbasn1.OCTET_STRING) || !f.Empty() {
		return nil, false
	}
	if !oid.Equal(oidSHA384) || len(d) != opaqueFWIDSize {
		return nil, false
	}
	return d, true
}

// parseRIoTFWID reads SEQUENCE { INTEGER, SubjectPublicKeyInfo, FWID }.
func parseRIoTFWID(v []byte) ([]byte, bool) {
	s := cryptobyte.String(v)
	var seq, spki cryptobyte.String
	var ver int64
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() ||
		!seq.ReadASN1Integer(&ver) || !seq.ReadASN1(&spki, cbasn1.SEQUENCE) {
		return nil, false
	}
	fwid, ok := readFWID(&seq)
	return fwid, ok && seq.Empty()
}

// parseTcbInfoFWID reads DiceTcbInfo and returns fwids[0].
func parseTcbInfoFWID(v []byte) ([]byte, bool) {
	s := cryptobyte.String(v)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, false
	}
	for !seq.Empty() {
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&el, &tag) {
			return nil, false
		}
		if tag == cbasn1.Tag(6).ContextSpecific().Constructed() {
			return readFWID(&el)
		}
	}
	return nil, false
}

// VerifyReportSignature checks the report's ECDSA P-384 signature (raw
// r‖s) over SHA-384 of the signed bytes with the leaf certificate's key.
func VerifyReportSignature(rep *Report, leaf *x509.Certificate) error {
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return fmt.Errorf("leaf certificate %q does not hold a P-384 ECDSA key", leaf.Subject.CommonName)
	}
	if !verifyRawP384(pub, rep.Signed(), rep.Response.Signature) {
		return fmt.Errorf("report signature does not verify with the key of %q (serial %x): the report was altered or comes from another GPU", leaf.Subject.CommonName, leaf.SerialNumber)
	}
	return nil
}

func verifyRawP384(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	d := sha512.Sum384(msg)
	var buf [2 + 2*(2+1+48)]byte
	return ecdsa.VerifyASN1(pub, d[:], rawToDER(buf[:0], sig[:48], sig[48:]))
}

// rawToDER appends the DER ECDSA-Sig-Value SEQUENCE { INTEGER r, INTEGER s }
// of big-endian r and s (each at most 48 bytes, so every length fits one
// byte): leading zeros dropped, a zero byte added where the top bit is set.
func rawToDER(dst, r, s []byte) []byte {
	integer := func(dst, v []byte) []byte {
		for len(v) > 1 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) == 0 {
			v = []byte{0}
		}
		if v[0]&0x80 != 0 {
			dst = append(dst, 0x02, byte(len(v)+1), 0)
		} else {
			dst = append(dst, 0x02, byte(len(v)))
		}
		return append(dst, v...)
	}
	start := len(dst)
	dst = append(dst, 0x30, 0)
	dst = integer(dst, r)
	dst = integer(dst, s)
	dst[start+1] = byte(len(dst) - start - 2)
	return dst
}

// Nonce returns the requester nonce of GPU index under a node binding:
// SHA-256(binding ‖ index as 4-byte big-endian).
func Nonce(b attest.Binding, index uint32) [NonceSize]byte {
	h := sha256.New()
	h.Write(b[:])
	h.Write(binary.BigEndian.AppendUint32(nil, index))
	var n [NonceSize]byte
	h.Sum(n[:0])
	return n
}
