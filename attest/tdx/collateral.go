package tdx

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-tdx-guest/pcs"

	"github.com/sworn-dev/sworn/internal/pemblocks"
)

// Size bounds of the collateral.
const (
	// MaxCollateralSize bounds the collateral JSON. Intel's PCK CRLs are
	// under 8 KiB today; TCB info under 8 KiB.
	MaxCollateralSize = 1 << 20
	// MaxIssuerChain bounds the certificates of one issuer chain.
	MaxIssuerChain = 4
	// MaxCRLSize bounds one CRL.
	MaxCRLSize = 512 << 10
)

// Collateral is Intel DCAP collateral for one quote, in the JSON shape
// that Phala's dcap-qvl uses (and Intel PCS's responses carry, split into
// fields): the TCB info and QE identity exactly as signed, their
// signatures (hex r ‖ s) and issuer chains (PEM), the PCK CRL of the PCK's
// issuing CA and the root CA's CRL (hex DER), the PCK CRL's issuer chain.
type Collateral struct {
	// PCKCRLIssuerChain is PEM: the PCK CA and the root.
	PCKCRLIssuerChain string `json:"pck_crl_issuer_chain"`
	// RootCACRL and PCKCRL are hex DER (or PEM).
	RootCACRL string `json:"root_ca_crl"`
	PCKCRL    string `json:"pck_crl"`
	// TCBInfoIssuerChain is PEM: Intel's TCB Signing certificate and the root.
	TCBInfoIssuerChain string `json:"tcb_info_issuer_chain"`
	// TCBInfo is the tcbInfo JSON exactly as signed; TCBInfoSignature its
	// signature, hex r ‖ s.
	TCBInfo          string `json:"tcb_info"`
	TCBInfoSignature string `json:"tcb_info_signature"`
	// QEIdentityIssuerChain, QEIdentity and QEIdentitySignature are the
	// same for the TD Quoting Enclave's identity (enclaveIdentity JSON).
	QEIdentityIssuerChain string `json:"qe_identity_issuer_chain"`
	QEIdentity            string `json:"qe_identity"`
	QEIdentitySignature   string `json:"qe_identity_signature"`
}

// Marshal encodes the collateral as JSON.
func (c *Collateral) Marshal() ([]byte, error) { return json.Marshal(c) }

// PCSResponses are Intel PCS (or PCCS) answers, as fetched: the bodies of
// GET /tdx/certification/v4/tcb?fmspc=… and /tdx/certification/v4/qe/identity
// with their issuer-chain headers (PEM, URL-decoded), the PCK CRL of
// /sgx/certification/v4/pckcrl?ca=… (DER or PEM) with its header, and the
// root CA CRL (DER or PEM).
type PCSResponses struct {
	TCBInfo, TCBInfoIssuerChain       []byte
	QEIdentity, QEIdentityIssuerChain []byte
	PCKCRL, PCKCRLIssuerChain         []byte
	RootCACRL                         []byte
}

// CollateralFromPCS assembles collateral from PCS responses, keeping the
// signed JSON exactly as PCS sent it.
func CollateralFromPCS(r PCSResponses) (*Collateral, error) {
	var ti struct {
		TCBInfo   json.RawMessage `json:"tcbInfo"`
		Signature string          `json:"signature"`
	}
	var qi struct {
		EnclaveIdentity json.RawMessage `json:"enclaveIdentity"`
		Signature       string          `json:"signature"`
	}
	if err := strictJSON(r.TCBInfo, &ti); err != nil || len(ti.TCBInfo) == 0 {
		return nil, fmt.Errorf("the TCB info response is not {\"tcbInfo\": …, \"signature\": …}: %v", err)
	}
	if err := strictJSON(r.QEIdentity, &qi); err != nil || len(qi.EnclaveIdentity) == 0 {
		return nil, fmt.Errorf("the QE identity response is not {\"enclaveIdentity\": …, \"signature\": …}: %v", err)
	}
	crl := func(b []byte) string {
		if pemblocks.IsPEM(b) {
			return string(b)
		}
		return hex.EncodeToString(b)
	}
	return &Collateral{
		TCBInfo: string(ti.TCBInfo), TCBInfoSignature: ti.Signature, TCBInfoIssuerChain: string(r.TCBInfoIssuerChain),
		QEIdentity: string(qi.EnclaveIdentity), QEIdentitySignature: qi.Signature, QEIdentityIssuerChain: string(r.QEIdentityIssuerChain),
		PCKCRL: crl(r.PCKCRL), PCKCRLIssuerChain: string(r.PCKCRLIssuerChain), RootCACRL: crl(r.RootCACRL),
	}, nil
}

// ParsedCollateral is collateral whose pieces are decoded (not verified).
type ParsedCollateral struct {
	// Raw is the JSON it was parsed from; Digest its SHA-256.
	Raw    []byte
	Digest [32]byte
	// TCBInfoRaw and QEIdentityRaw are the signed bytes.
	TCBInfoRaw, QEIdentityRaw []byte
	// TCBInfo and QEIdentity are them decoded.
	TCBInfo    pcs.TcbInfo
	QEIdentity pcs.EnclaveIdentity
	// TCBInfoSignature and QEIdentitySignature are raw r ‖ s.
	TCBInfoSignature, QEIdentitySignature []byte
	// TCBInfoChain, QEIdentityChain and PCKCRLChain are the issuer chains,
	// signer first.
	TCBInfoChain, QEIdentityChain []*x509.Certificate
	PCKCRLChain                   []*x509.Certificate
	// PCKCRL and RootCRL are the CRLs.
	PCKCRL, RootCRL *x509.RevocationList
}

// ParseCollateral decodes collateral JSON strictly: every field present,
// no unknown field, each piece decodable.
func ParseCollateral(data []byte) (*ParsedCollateral, error) {
	return parseCollateral(data, x509.ParseCertificate, x509.ParseRevocationList)
}

func parseCollateral(data []byte, parseCert func([]byte) (*x509.Certificate, error), parseCRL func([]byte) (*x509.RevocationList, error)) (*ParsedCollateral, error) {
	if len(data) > MaxCollateralSize {
		return nil, fmt.Errorf("collateral is %d bytes; the limit is %d", len(data), MaxCollateralSize)
	}
	var c Collateral
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("collateral is not the JSON of Intel DCAP collateral (fields tcb_info, tcb_info_signature, tcb_info_issuer_chain, qe_identity, …): %v", err)
	}
	if dec.More() {
		return nil, errors.New("collateral has data after its JSON object")
	}
	p := &ParsedCollateral{Raw: data, Digest: sha256.Sum256(data), TCBInfoRaw: []byte(c.TCBInfo), QEIdentityRaw: []byte(c.QEIdentity)}
	var err error
	for _, f := range []struct {
		name string
		val  string
	}{{"tcb_info", c.TCBInfo}, {"tcb_info_signature", c.TCBInfoSignature}, {"tcb_info_issuer_chain", c.TCBInfoIssuerChain},
		{"qe_identity", c.QEIdentity}, {"qe_identity_signature", c.QEIdentitySignature}, {"qe_identity_issuer_chain", c.QEIdentityIssuerChain},
		{"pck_crl", c.PCKCRL}, {"pck_crl_issuer_chain", c.PCKCRLIssuerChain}, {"root_ca_crl", c.RootCACRL}} {
		if strings.TrimSpace(f.val) == "" {
			return nil, fmt.Errorf("collateral field %s is missing; fetch the complete collateral from Intel PCS (or a PCCS)", f.name)
		}
	}
	if err := strictJSON(p.TCBInfoRaw, &p.TCBInfo); err != nil {
		return nil, fmt.Errorf("collateral tcb_info: %v", err)
	}
	if err := strictJSON(p.QEIdentityRaw, &p.QEIdentity); err != nil {
		return nil, fmt.Errorf("collateral qe_identity: %v", err)
	}
	if p.TCBInfoSignature, err = decodeSig(c.TCBInfoSignature); err != nil {
		return nil, fmt.Errorf("collateral tcb_info_signature: %v", err)
	}
	if p.QEIdentitySignature, err = decodeSig(c.QEIdentitySignature); err != nil {
		return nil, fmt.Errorf("collateral qe_identity_signature: %v", err)
	}
	for _, ch := range []struct {
		name string
		pem  string
		out  *[]*x509.Certificate
	}{{"tcb_info_issuer_chain", c.TCBInfoIssuerChain, &p.TCBInfoChain}, {"qe_identity_issuer_chain", c.QEIdentityIssuerChain, &p.QEIdentityChain}, {"pck_crl_issuer_chain", c.PCKCRLIssuerChain, &p.PCKCRLChain}} {
		if *ch.out, err = parseChain([]byte(ch.pem), parseCert); err != nil {
			return nil, fmt.Errorf("collateral %s: %v", ch.name, err)
		}
	}
	if p.PCKCRL, err = decodeCRL(c.PCKCRL, parseCRL); err != nil {
		return nil, fmt.Errorf("collateral pck_crl: %v", err)
	}
	if p.RootCRL, err = decodeCRL(c.RootCACRL, parseCRL); err != nil {
		return nil, fmt.Errorf("collateral root_ca_crl: %v", err)
	}
	return p, nil
}

// pieceKey identifies one signed piece of the collateral (its bytes, its
// signature and its issuer chain all lie in Raw).
func (p *ParsedCollateral) pieceKey(piece string) [32]byte {
	return sha256.Sum256(append([]byte("sworn tdx collateral "+piece+"\x00"), p.Digest[:]...))
}

// strictJSON decodes one JSON value, refusing trailing data.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

func decodeSig(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not hex: %v", err)
	}
	if len(b) != sigSize {
		return nil, fmt.Errorf("is %d bytes; an ECDSA P-256 signature (r ‖ s) is %d", len(b), sigSize)
	}
	return b, nil
}

// decodeCRL decodes a CRL given as hex DER, or as PEM.
func decodeCRL(s string, parse func([]byte) (*x509.RevocationList, error)) (*x509.RevocationList, error) {
	s = strings.TrimSpace(s)
	if len(s) > 2*MaxCRLSize {
		return nil, fmt.Errorf("is %d characters; the limit is %d", len(s), 2*MaxCRLSize)
	}
	var der []byte
	if pemblocks.IsPEM([]byte(s)) {
		ders, err := pemblocks.Decode([]byte(s), "X509 CRL", 1)
		if err != nil {
			return nil, err
		}
		if len(ders) != 1 {
			return nil, fmt.Errorf("holds %d CRLs; want one", len(ders))
		}
		der = ders[0]
	} else {
		var err error
		if der, err = hex.DecodeString(s); err != nil {
			return nil, fmt.Errorf("neither PEM nor hex DER: %v", err)
		}
	}
	crl, err := parse(der)
	if err != nil {
		return nil, fmt.Errorf("not a CRL: %v", err)
	}
	return crl, nil
}

// parseChain parses a PEM certificate chain, leaf first, of at most
// MaxIssuerChain certificates.
func parseChain(data []byte, parse func([]byte) (*x509.Certificate, error)) ([]*x509.Certificate, error) {
	ders, err := pemblocks.Decode(data, "CERTIFICATE", MaxIssuerChain)
	if err != nil {
		return nil, err
	}
	if len(ders) < 2 {
		return nil, fmt.Errorf("holds %d certificate(s); a chain is the signer and Intel's root at least", len(ders))
	}
	out := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		c, err := parse(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}
