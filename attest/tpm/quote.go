package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"
)

// Size bounds of the TPM structures this package parses. They are far
// above what a TPM produces and keep hostile input cheap to refuse.
const (
	MaxAttestSize    = 2048     // TPMS_ATTEST
	MaxSignatureSize = 1024     // TPMT_SIGNATURE
	MaxPublicSize    = 2048     // TPMT_PUBLIC / TPM2B_PUBLIC
	MaxEventLogSize  = 4 << 20  // a TCG PC Client event log
	MaxQuotes        = 8        // quotes in one piece of evidence
	MaxPCRValues     = 24 * 5   // PCR values carried with one quote
	MaxCertSize      = 16 << 10 // one DER certificate
	MaxCerts         = 8        // certificates in an AK chain
	NumPCRs          = 24       // PCRs of a PC Client TPM
)

// Alg is a TPM hash algorithm identifier (TPM_ALG_ID) of a PCR bank.
type Alg uint16

// The PCR banks sworn knows.
const (
	SHA1   Alg = Alg(tpm2.TPMAlgSHA1)
	SHA256 Alg = Alg(tpm2.TPMAlgSHA256)
	SHA384 Alg = Alg(tpm2.TPMAlgSHA384)
	SHA512 Alg = Alg(tpm2.TPMAlgSHA512)
)

// Hash returns the Go hash of the bank, or 0 when it is unknown.
func (a Alg) Hash() crypto.Hash {
	switch a {
	case SHA1:
		return crypto.SHA1
	case SHA256:
		return crypto.SHA256
	case SHA384:
		return crypto.SHA384
	case SHA512:
		return crypto.SHA512
	}
	return 0
}

// String returns the bank's name as policies and tpm2-tools write it ("sha256").
func (a Alg) String() string {
	switch a {
	case SHA1:
		return "sha1"
	case SHA256:
		return "sha256"
	case SHA384:
		return "sha384"
	case SHA512:
		return "sha512"
	}
	return fmt.Sprintf("alg-0x%04x", uint16(a))
}

// ParseAlg returns the bank named s ("sha1", "sha256", "sha384", "sha512").
func ParseAlg(s string) (Alg, error) {
	for _, a := range []Alg{SHA1, SHA256, SHA384, SHA512} {
		if a.String() == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown PCR bank %q (use sha1, sha256, sha384 or sha512)", s)
}

// PCR is one PCR value of one bank.
type PCR struct {
	Alg    Alg    `cbor:"1,keyasint" json:"alg"`
	Index  uint8  `cbor:"2,keyasint" json:"index"`
	Digest []byte `cbor:"3,keyasint" json:"digest"`
}

// PCRs maps bank → index → value.
type PCRs map[Alg]map[int][]byte

// Set records a value.
func (p PCRs) Set(alg Alg, idx int, v []byte) {
	if p[alg] == nil {
		p[alg] = map[int][]byte{}
	}
	p[alg][idx] = v
}

// List returns the values sorted by bank, then index.
func (p PCRs) List() []PCR {
	var out []PCR
	for alg, m := range p {
		for i, v := range m {
			out = append(out, PCR{alg, uint8(i), v})
		}
	}
	slices.SortFunc(out, func(a, b PCR) int {
		if a.Alg != b.Alg {
			return int(a.Alg) - int(b.Alg)
		}
		return int(a.Index) - int(b.Index)
	})
	return out
}

// PCRsFromList indexes a list of PCR values, refusing duplicates, unknown
// banks, indices outside 0–23 and digests of the wrong size.
func PCRsFromList(list []PCR) (PCRs, error) {
	if len(list) > MaxPCRValues {
		return nil, fmt.Errorf("%d PCR values; the limit is %d", len(list), MaxPCRValues)
	}
	p := PCRs{}
	for _, v := range list {
		h := v.Alg.Hash()
		if h == 0 {
			return nil, fmt.Errorf("PCR %d: unknown bank 0x%04x", v.Index, uint16(v.Alg))
		}
		if int(v.Index) >= NumPCRs {
			return nil, fmt.Errorf("PCR index %d is out of range (0 to %d)", v.Index, NumPCRs-1)
		}
		if len(v.Digest) != h.Size() {
			return nil, fmt.Errorf("PCR %s:%d is %d bytes, want %d", v.Alg, v.Index, len(v.Digest), h.Size())
		}
		if _, dup := p[v.Alg][int(v.Index)]; dup {
			return nil, fmt.Errorf("PCR %s:%d is given twice", v.Alg, v.Index)
		}
		p.Set(v.Alg, int(v.Index), v.Digest)
	}
	return p, nil
}

// AK is a parsed attestation key.
type AK struct {
	// Public is the TPMT_PUBLIC area, nil when the key came as PEM/DER.
	Public *tpm2.TPMTPublic
	// Raw is the TPMT_PUBLIC encoding, nil when the key came as PEM/DER.
	Raw []byte
	// Key is the crypto public key (*rsa.PublicKey or *ecdsa.PublicKey).
	Key crypto.PublicKey
}

// Fingerprint returns SHA-256 of the key's PKIX (SubjectPublicKeyInfo) DER
// encoding: the form in which policies pin AKs, independent of how the key
// was carried.
func (ak *AK) Fingerprint() [32]byte {
	der, err := x509.MarshalPKIXPublicKey(ak.Key)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256(der)
}

// Equal reports whether the AK is the given public key.
func (ak *AK) Equal(k crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	e, ok := ak.Key.(eq)
	return ok && e.Equal(k)
}

// PEM returns the key as a PEM "PUBLIC KEY" block.
func (ak *AK) PEM() string {
	der, err := x509.MarshalPKIXPublicKey(ak.Key)
	if err != nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// ParseAK parses an attestation key given as TPMT_PUBLIC, TPM2B_PUBLIC (as
// tpm2_createak writes it), or a PEM or DER SubjectPublicKeyInfo. A TPM
// key must be a restricted signing key: an AK that may sign arbitrary
// data could forge quotes.
func ParseAK(data []byte) (*AK, error) {
	if len(data) == 0 {
		return nil, errors.New("attestation key is empty")
	}
	if len(data) > MaxPublicSize*4 {
		return nil, fmt.Errorf("attestation key is %d bytes; the limit is %d", len(data), MaxPublicSize*4)
	}
	if blk, _ := pem.Decode(data); blk != nil {
		return akFromPKIX(blk.Bytes)
	}
	if data[0] == 0x30 { // DER SEQUENCE; no TPMT_PUBLIC starts with 0x30xx (alg IDs are small)
		if ak, err := akFromPKIX(data); err == nil {
			return ak, nil
		}
	}
	if len(data) > MaxPublicSize {
		return nil, fmt.Errorf("attestation key is %d bytes; a TPM public area is at most %d", len(data), MaxPublicSize)
	}
	// TPM2B_PUBLIC: a 2-byte size that covers the rest exactly.
	if len(data) >= 2 && int(data[0])<<8|int(data[1]) == len(data)-2 {
		if ak, err := parseTPMTPublic(data[2:]); err == nil {
			return ak, nil
		}
	}
	return parseTPMTPublic(data)
}

func akFromPKIX(der []byte) (*AK, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("attestation key is not a PKIX public key: %v", err)
	}
	if err := checkKey(k); err != nil {
		return nil, err
	}
	return &AK{Key: k}, nil
}

func checkKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 || k.N.BitLen() > 4096 {
			return fmt.Errorf("attestation key is RSA-%d; sworn accepts 2048 to 4096 bits", k.N.BitLen())
		}
		if k.E < 3 || k.E&1 == 0 {
			return fmt.Errorf("attestation key has an invalid RSA exponent %d", k.E)
		}
	case *ecdsa.PublicKey:
		if _, err := k.ECDH(); err != nil {
			return fmt.Errorf("attestation key is not a valid ECC point: %v", err)
		}
	default:
		return fmt.Errorf("attestation key type %T is not supported (RSA or ECC)", k)
	}
	return nil
}

func parseTPMTPublic(data []byte) (ak *AK, err error) {
	pub, err := unmarshalStrict[tpm2.TPMTPublic](data)
	if err != nil {
		return nil, fmt.Errorf("attestation key is not a TPMT_PUBLIC, TPM2B_PUBLIC or PEM public key: %v", err)
	}
	a := pub.ObjectAttributes
	if !a.SignEncrypt || !a.Restricted || a.Decrypt {
		return nil, fmt.Errorf("attestation key is not a restricted signing key (sign=%v restricted=%v decrypt=%v): a TPM quote must be signed by an AK", a.SignEncrypt, a.Restricted, a.Decrypt)
	}
	if !a.FixedTPM {
		return nil, errors.New("attestation key is not fixedTPM: it may have been imported into the TPM, and could be known outside it")
	}
	k, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, fmt.Errorf("attestation key: %v", err)
	}
	if err := checkKey(k); err != nil {
		return nil, err
	}
	return &AK{Public: pub, Raw: slices.Clone(data), Key: k}, nil
}

// unmarshalStrict decodes a TPM structure and requires that it re-encodes
// to exactly the input: trailing bytes and non-canonical encodings are
// errors. go-tpm's decoder is reflective; a panic in it is an error here.
func unmarshalStrict[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](data []byte) (v *T, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed TPM structure (%v)", r)
		}
	}()
	v, err = tpm2.Unmarshal[T, P](data)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(*v), data) {
		return nil, errors.New("trailing or non-canonical bytes after the structure")
	}
	return v, nil
}

// Quote is a TPM2_Quote result: the TPMS_ATTEST bytes, the TPMT_SIGNATURE
// over them, and the PCR values the quote covers.
type Quote struct {
	Attest    []byte `cbor:"1,keyasint"`
	Signature []byte `cbor:"2,keyasint"`
	PCRs      []PCR  `cbor:"3,keyasint"`
}

// ParsedQuote is a quote whose structures were decoded.
type ParsedQuote struct {
	Attest    *tpm2.TPMSAttest
	Info      *tpm2.TPMSQuoteInfo
	Signature *tpm2.TPMTSignature
	// SigHash is the hash of the signature scheme.
	SigHash crypto.Hash
	// Banks are the banks the quote selects, in selection order.
	Banks []Alg
	// Selected lists, per bank, the selected PCR indices in ascending order.
	Selected map[Alg][]int
	// Values are the PCR values carried with the quote.
	Values PCRs
}

// ParseQuote decodes a quote's TPMS_ATTEST, TPMT_SIGNATURE and PCR values
// and checks their form (not the signature).
func ParseQuote(q Quote) (*ParsedQuote, error) {
	if len(q.Attest) == 0 || len(q.Attest) > MaxAttestSize {
		return nil, fmt.Errorf("quote (TPMS_ATTEST) is %d bytes; it must be 1 to %d", len(q.Attest), MaxAttestSize)
	}
	if len(q.Signature) == 0 || len(q.Signature) > MaxSignatureSize {
		return nil, fmt.Errorf("quote signature (TPMT_SIGNATURE) is %d bytes; it must be 1 to %d", len(q.Signature), MaxSignatureSize)
	}
	att, err := unmarshalStrict[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		return nil, fmt.Errorf("quote is not a TPMS_ATTEST: %v", err)
	}
	if att.Magic != tpm2.TPMGeneratedValue {
		return nil, fmt.Errorf("quote magic is 0x%08x, not TPM_GENERATED_VALUE: the structure was not made by a TPM", uint32(att.Magic))
	}
	if att.Type != tpm2.TPMSTAttestQuote {
		return nil, fmt.Errorf("attestation type is 0x%04x, not a quote (TPM_ST_ATTEST_QUOTE)", uint16(att.Type))
	}
	info, err := att.Attested.Quote()
	if err != nil {
		return nil, fmt.Errorf("quote info: %v", err)
	}
	sig, err := unmarshalStrict[tpm2.TPMTSignature](q.Signature)
	if err != nil {
		return nil, fmt.Errorf("quote signature is not a TPMT_SIGNATURE: %v", err)
	}
	pq := &ParsedQuote{Attest: att, Info: info, Signature: sig, Selected: map[Alg][]int{}}
	if pq.SigHash, err = sigHash(sig); err != nil {
		return nil, err
	}
	for _, sel := range info.PCRSelect.PCRSelections {
		alg := Alg(sel.Hash)
		if alg.Hash() == 0 {
			return nil, fmt.Errorf("quote selects PCRs of unknown bank 0x%04x", uint16(sel.Hash))
		}
		if _, dup := pq.Selected[alg]; dup {
			return nil, fmt.Errorf("quote selects bank %s twice", alg)
		}
		if len(sel.PCRSelect) > 4 {
			return nil, fmt.Errorf("quote's %s selection is %d bytes; at most 4 (32 PCRs)", alg, len(sel.PCRSelect))
		}
		idx := []int{}
		for i, b := range sel.PCRSelect {
			for bit := range 8 {
				if b&(1<<bit) != 0 {
					idx = append(idx, i*8+bit)
				}
			}
		}
		pq.Banks = append(pq.Banks, alg)
		pq.Selected[alg] = idx
	}
	if pq.Values, err = PCRsFromList(q.PCRs); err != nil {
		return nil, fmt.Errorf("quote PCR values: %v", err)
	}
	return pq, nil
}

func sigHash(sig *tpm2.TPMTSignature) (crypto.Hash, error) {
	var alg tpm2.TPMIAlgHash
	switch sig.SigAlg {
	case tpm2.TPMAlgRSASSA:
		s, err := sig.Signature.RSASSA()
		if err != nil {
			return 0, err
		}
		alg = s.Hash
	case tpm2.TPMAlgRSAPSS:
		s, err := sig.Signature.RSAPSS()
		if err != nil {
			return 0, err
		}
		alg = s.Hash
	case tpm2.TPMAlgECDSA:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return 0, err
		}
		alg = s.Hash
	default:
		return 0, fmt.Errorf("quote signature scheme 0x%04x is not supported (RSASSA, RSAPSS or ECDSA)", uint16(sig.SigAlg))
	}
	h := Alg(alg).Hash()
	if h == 0 {
		return 0, fmt.Errorf("quote signature uses unknown hash 0x%04x", uint16(alg))
	}
	return h, nil
}

// OnlySHA1 reports whether the quote is signed with SHA-1 or covers only
// SHA-1 PCRs: such a quote is refused unless the policy allows SHA-1.
func (pq *ParsedQuote) OnlySHA1() bool {
	if pq.SigHash == crypto.SHA1 {
		return true
	}
	for _, b := range pq.Banks {
		if b != SHA1 && len(pq.Selected[b]) > 0 {
			return false
		}
	}
	return true
}

// ErrSignature is wrapped by VerifySignature's error when the signature
// does not verify under the AK.
var ErrSignature = errors.New("quote signature does not verify under the attestation key")

// VerifySignature checks the quote's signature under the AK.
func (pq *ParsedQuote) VerifySignature(attest []byte, ak *AK) error {
	h := pq.SigHash.New()
	h.Write(attest)
	digest := h.Sum(nil)
	switch pq.Signature.SigAlg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		pub, ok := ak.Key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("quote has an RSA signature but the attestation key is %T", ak.Key)
		}
		if pq.Signature.SigAlg == tpm2.TPMAlgRSASSA {
			s, _ := pq.Signature.Signature.RSASSA()
			if err := rsa.VerifyPKCS1v15(pub, pq.SigHash, digest, s.Sig.Buffer); err != nil {
				return fmt.Errorf("%w (RSASSA-PKCS1-v1_5 %s)", ErrSignature, pq.SigHash)
			}
			return nil
		}
		s, _ := pq.Signature.Signature.RSAPSS()
		// TPMs use a salt as long as the digest, or the maximum; accept both.
		if err := rsa.VerifyPSS(pub, pq.SigHash, digest, s.Sig.Buffer, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
			return fmt.Errorf("%w (RSASSA-PSS %s)", ErrSignature, pq.SigHash)
		}
		return nil
	case tpm2.TPMAlgECDSA:
		pub, ok := ak.Key.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("quote has an ECDSA signature but the attestation key is %T", ak.Key)
		}
		s, _ := pq.Signature.Signature.ECDSA()
		r := new(big.Int).SetBytes(s.SignatureR.Buffer)
		ss := new(big.Int).SetBytes(s.SignatureS.Buffer)
		if !ecdsa.Verify(pub, digest, r, ss) {
			return fmt.Errorf("%w (ECDSA %s)", ErrSignature, pq.SigHash)
		}
		return nil
	}
	return fmt.Errorf("quote signature scheme 0x%04x is not supported", uint16(pq.Signature.SigAlg))
}

// ErrSigner is wrapped by CheckSigner's error when the quote names another
// key than the AK as its signer.
var ErrSigner = errors.New("the quote's qualified signer is not the attestation key")

// MaxNameSize bounds a TPM name or qualified name: a 2-byte algorithm and
// a SHA-512 digest.
const MaxNameSize = 2 + 64

// hierarchies are the parents of primary keys; a hierarchy's qualified
// name is its handle.
var hierarchies = []struct {
	name   string
	handle tpm2.TPMHandle
}{{"endorsement", tpm2.TPMRHEndorsement}, {"owner", tpm2.TPMRHOwner}, {"platform", tpm2.TPMRHPlatform}, {"null", tpm2.TPMRHNull}}

// QualifiedName returns the qualified name of an object with the given
// name under a parent with the given qualified name: nameAlg ‖
// H_nameAlg(parent ‖ name), nameAlg being the object's (TPM 2.0 Part 1,
// "Qualified Name"). A hierarchy's qualified name is its 4-byte handle.
func QualifiedName(nameAlg tpm2.TPMIAlgHash, parent, name []byte) ([]byte, error) {
	h := Alg(nameAlg).Hash()
	if h == 0 {
		return nil, fmt.Errorf("name algorithm 0x%04x is not a hash sworn knows", uint16(nameAlg))
	}
	d := h.New()
	d.Write(parent)
	d.Write(name)
	return d.Sum(binary.BigEndian.AppendUint16(nil, uint16(nameAlg))), nil
}

// CheckSigner checks that the quote names the AK as its signer. The TPM
// puts the signing key's qualified name in TPMS_ATTEST's qualifiedSigner:
// H(parent's qualified name ‖ the AK's name), where the name is nameAlg ‖
// H(TPMT_PUBLIC). So a match means that the public area whose attributes
// (restricted, fixedTPM, sign) ParseAK checked is the one the TPM says it
// signed with, not one made up to look like an AK. parent is the qualified
// name of the AK's parent (tpm2_readpublic -c PARENT -q) when the AK is a
// child key; without it, the AK must be a primary key of one of the
// hierarchies (as sworn's collector and GCE make it). It returns how the
// signer was matched, or "" when the AK is a bare public key (PEM/DER):
// such a key has no public area, hence no name, and nothing is compared.
func (pq *ParsedQuote) CheckSigner(ak *AK, parent []byte) (string, error) {
	if ak.Public == nil {
		return "", nil
	}
	name, err := tpm2.ObjectName(ak.Public)
	if err != nil {
		return "", fmt.Errorf("the attestation key has no TPM name (name algorithm 0x%04x): %v", uint16(ak.Public.NameAlg), err)
	}
	got := pq.Attest.QualifiedSigner.Buffer
	match := func(parent []byte) bool {
		qn, err := QualifiedName(ak.Public.NameAlg, parent, name.Buffer)
		return err == nil && subtle.ConstantTimeCompare(qn, got) == 1
	}
	if len(parent) > 0 {
		if match(parent) {
			return "a child of the given parent " + hex.EncodeToString(parent), nil
		}
		return "", fmt.Errorf("%w: the quote names %s, which is not the AK (name %s) under the given parent %s: the AK's public area was altered (its attributes are not those of the key that signed), the quote is from another key, or the parent is another one", ErrSigner, hex.EncodeToString(got), hex.EncodeToString(name.Buffer), hex.EncodeToString(parent))
	}
	for _, h := range hierarchies {
		if match(binary.BigEndian.AppendUint32(nil, uint32(h.handle))) {
			return "a primary key of the " + h.name + " hierarchy", nil
		}
	}
	return "", fmt.Errorf("%w: the quote names %s, which is not the AK (name %s) as a primary key of any hierarchy: the AK's public area was altered (its attributes are not those of the key that signed), or the quote is from another key; if the AK is a child key (tpm2_createak -C ek.ctx), give its parent's qualified name (tpm2_readpublic -c ek.ctx -q FILE; evidence field AKParent, sworn verify tpm --ak-parent)", ErrSigner, hex.EncodeToString(got), hex.EncodeToString(name.Buffer))
}

// CheckAKScheme refuses a signature whose scheme or hash differs from the
// one fixed in the AK's public area, when the AK fixes one.
func (pq *ParsedQuote) CheckAKScheme(ak *AK) error {
	if ak.Public == nil {
		return nil
	}
	var scheme tpm2.TPMAlgID
	var hash tpm2.TPMIAlgHash
	switch ak.Public.Type {
	case tpm2.TPMAlgRSA:
		d, err := ak.Public.Parameters.RSADetail()
		if err != nil {
			return err
		}
		scheme = d.Scheme.Scheme
		switch scheme {
		case tpm2.TPMAlgRSASSA:
			s, _ := d.Scheme.Details.RSASSA()
			hash = s.HashAlg
		case tpm2.TPMAlgRSAPSS:
			s, _ := d.Scheme.Details.RSAPSS()
			hash = s.HashAlg
		}
	case tpm2.TPMAlgECC:
		d, err := ak.Public.Parameters.ECCDetail()
		if err != nil {
			return err
		}
		scheme = d.Scheme.Scheme
		if scheme == tpm2.TPMAlgECDSA {
			s, _ := d.Scheme.Details.ECDSA()
			hash = s.HashAlg
		}
	}
	if scheme == tpm2.TPMAlgNull || scheme == 0 {
		return nil
	}
	if scheme != pq.Signature.SigAlg || Alg(hash).Hash() != pq.SigHash {
		return fmt.Errorf("quote is signed with scheme 0x%04x/%s, but the attestation key is fixed to scheme 0x%04x/%s", uint16(pq.Signature.SigAlg), pq.SigHash, uint16(scheme), Alg(hash))
	}
	return nil
}

// PCRDigest computes the digest of the selected PCR values the way the TPM
// does: the hash (of the signing scheme) of the concatenated values, bank
// by bank in selection order, each bank in ascending index order.
func (pq *ParsedQuote) PCRDigest() ([]byte, error) {
	h := pq.SigHash.New()
	for _, b := range pq.Banks {
		for _, i := range pq.Selected[b] {
			v, ok := pq.Values[b][i]
			if !ok {
				return nil, fmt.Errorf("the quote covers PCR %s:%d, but its value is missing from the evidence", b, i)
			}
			h.Write(v)
		}
	}
	return h.Sum(nil), nil
}

// CheckPCRDigest checks that the PCR values given with the quote are those
// the TPM signed, and that no value is given for a PCR the quote does not
// cover (an unsigned value must not be mistaken for a quoted one).
func (pq *ParsedQuote) CheckPCRDigest() error {
	for b, m := range pq.Values {
		for i := range m {
			if !slices.Contains(pq.Selected[b], i) {
				return fmt.Errorf("PCR %s:%d is given with the quote but the quote does not cover it", b, i)
			}
		}
	}
	d, err := pq.PCRDigest()
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(d, pq.Info.PCRDigest.Buffer) != 1 {
		return fmt.Errorf("the PCR values do not match the quote's PCR digest (computed %s, quoted %s): a PCR value was altered or belongs to another quote", hex.EncodeToString(d), hex.EncodeToString(pq.Info.PCRDigest.Buffer))
	}
	return nil
}

// ExtraData returns the quote's qualifying data (the nonce or binding).
func (pq *ParsedQuote) ExtraData() []byte { return pq.Attest.ExtraData.Buffer }

// SplitPCRValues splits PCR values written as tpm2_quote -o does by
// default (the selected values concatenated, bank by bank in selection
// order, each bank in ascending index order) along the quote's selection.
func SplitPCRValues(pq *ParsedQuote, data []byte) ([]PCR, error) {
	var out []PCR
	off := 0
	for _, b := range pq.Banks {
		n := b.Hash().Size()
		for _, i := range pq.Selected[b] {
			if off+n > len(data) {
				return nil, fmt.Errorf("PCR values end at %d bytes, before PCR %s:%d; the quote selects more PCRs than the file holds", len(data), b, i)
			}
			out = append(out, PCR{b, uint8(i), slices.Clone(data[off : off+n])})
			off += n
		}
	}
	if off != len(data) {
		return nil, fmt.Errorf("PCR values are %d bytes, but the quote's selection needs %d: not the values of this quote (tpm2_quote -o, default format)", len(data), off)
	}
	return out, nil
}

// tpm2-tools' "serialized" PCR file (tpm2_quote -o, the default format):
// the TPML_PCR_SELECTION struct as laid out in memory (little endian, 16
// selections of 8 bytes), a uint32 count, then that many TPML_DIGEST
// structs (uint32 count + 8 TPM2B_DIGESTs of 2+64 bytes).
const (
	tt2SelSize    = 4 + 16*8
	tt2DigestList = 4 + 8*(2+64)
)

// ParseToolsPCRs reads PCR values in tpm2-tools' serialized format (what
// tpm2_quote -o writes by default) or, failing that, as the selected values
// concatenated (tpm2_quote -F values), along the quote's selection.
func ParseToolsPCRs(pq *ParsedQuote, data []byte) ([]PCR, error) {
	if len(data) >= tt2SelSize+4 && (len(data)-tt2SelSize-4)%tt2DigestList == 0 {
		var flat []byte
		n := int(binary.LittleEndian.Uint32(data[tt2SelSize:]))
		if n*tt2DigestList == len(data)-tt2SelSize-4 {
			for l := range n {
				off := tt2SelSize + 4 + l*tt2DigestList
				cnt := int(binary.LittleEndian.Uint32(data[off:]))
				if cnt > 8 {
					return nil, fmt.Errorf("serialized PCR file: digest list %d has %d entries (at most 8)", l, cnt)
				}
				for d := range cnt {
					p := off + 4 + d*66
					size := int(binary.LittleEndian.Uint16(data[p:]))
					if size > 64 {
						return nil, fmt.Errorf("serialized PCR file: digest size %d", size)
					}
					flat = append(flat, data[p+2:p+2+size]...)
				}
			}
			return SplitPCRValues(pq, flat)
		}
	}
	return SplitPCRValues(pq, data)
}

// SerializeToolsPCRs writes PCR values in tpm2-tools' serialized format,
// for tpm2_checkquote -f.
func SerializeToolsPCRs(pq *ParsedQuote) ([]byte, error) {
	out := make([]byte, tt2SelSize+4)
	binary.LittleEndian.PutUint32(out, uint32(len(pq.Banks)))
	var digests [][]byte
	for k, b := range pq.Banks {
		if k >= 16 {
			return nil, errors.New("more than 16 banks")
		}
		e := out[4+8*k:]
		binary.LittleEndian.PutUint16(e, uint16(b))
		e[2] = 3
		for _, i := range pq.Selected[b] {
			e[3+i/8] |= 1 << (i % 8)
			v, ok := pq.Values[b][i]
			if !ok {
				return nil, fmt.Errorf("PCR %s:%d value is missing", b, i)
			}
			digests = append(digests, v)
		}
	}
	lists := (len(digests) + 7) / 8
	binary.LittleEndian.PutUint32(out[tt2SelSize:], uint32(lists))
	for l := range lists {
		lst := make([]byte, tt2DigestList)
		chunk := digests[l*8 : min(len(digests), l*8+8)]
		binary.LittleEndian.PutUint32(lst, uint32(len(chunk)))
		for d, v := range chunk {
			binary.LittleEndian.PutUint16(lst[4+d*66:], uint16(len(v)))
			copy(lst[4+d*66+2:], v)
		}
		out = append(out, lst...)
	}
	return out, nil
}
