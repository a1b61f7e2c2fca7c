package snp

import (
	"bytes"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-tpm/tpm2"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/pemblocks"
)

// Size bounds of the pieces of SNP evidence.
const (
	MaxReportSize = 8 << 10   // an HCL report is 2600 bytes; a raw report 1184
	MaxCerts      = 8         // VCEK/VLEK, ASK/ASVK, ARK, with room to spare
	MaxCertSize   = 16 << 10  // one DER certificate
	MaxCRLs       = 4         // one per ARK
	MaxCRLSize    = 256 << 10 // AMD's CRLs are under 1 KiB today
	// MaxSVSMManifestSize bounds an SVSM service manifest; the vTPM's is
	// its EK public area, a few hundred bytes.
	MaxSVSMManifestSize = 4 << 10
)

// Evidence is the body of an "snp" bundle entry: the report exactly as the
// hardware (or the Azure paravisor) produced it, and the collateral needed
// to verify it offline.
type Evidence struct {
	// Report is a raw 1184-byte SEV-SNP report or an Azure HCL report.
	Report []byte `cbor:"1,keyasint"`
	// Certs are DER certificates: the VCEK or VLEK, optionally with the
	// ASK/ASVK and ARK.
	Certs [][]byte `cbor:"2,keyasint,omitempty"`
	// CRLs are DER CRLs issued by the ARK.
	CRLs [][]byte `cbor:"3,keyasint,omitempty"`
	// SVSMManifest, when present, makes the report the SVSM's attestation
	// of its vTPM service (AMD SVSM "attest" protocol, vTPM service,
	// manifest version 0): the manifest is the vTPM EK's public area
	// (TPMT_PUBLIC), and the report must come from VMPL0 with REPORT_DATA
	// = SHA-512(binding ‖ manifest) (see SVSMReportData).
	SVSMManifest []byte `cbor:"4,keyasint,omitempty"`
}

// Marshal encodes the evidence as a bundle entry body.
func (e *Evidence) Marshal() ([]byte, error) { return attest.MarshalCBOR(e) }

// Attestation is parsed SEV-SNP evidence.
type Attestation struct {
	// Raw is the 1184-byte SEV-SNP report.
	Raw []byte
	// Report is the parsed report.
	Report *spb.Report
	// HCL is set when the report came wrapped in an Azure HCL report.
	HCL *HCLReport
	// Certs and CRLs are the parsed collateral.
	Certs []*x509.Certificate
	CRLs  []*x509.RevocationList
	// SVSMManifest is the SVSM vTPM service manifest (the EK's TPMT_PUBLIC),
	// checked to be a restricted decryption key; nil for other reports.
	SVSMManifest []byte
}

// ParseEvidence decodes an entry body and parses it.
func ParseEvidence(body []byte) (*Attestation, error) {
	return parseEvidence(body, x509.ParseCertificate, x509.ParseRevocationList)
}

func parseEvidence(body []byte, parseCert func([]byte) (*x509.Certificate, error), parseCRL func([]byte) (*x509.RevocationList, error)) (*Attestation, error) {
	var e Evidence
	if err := attest.UnmarshalCBOR(body, &e); err != nil {
		return nil, fmt.Errorf("SNP evidence is malformed: %v", err)
	}
	return parse(&e, parseCert, parseCRL)
}

// Parse parses a report (raw or HCL) with its certificates and CRLs.
func Parse(e *Evidence) (*Attestation, error) {
	return parse(e, x509.ParseCertificate, x509.ParseRevocationList)
}

func parse(e *Evidence, parseCert func([]byte) (*x509.Certificate, error), parseCRL func([]byte) (*x509.RevocationList, error)) (*Attestation, error) {
	a, err := ParseReport(e.Report)
	if err != nil {
		return nil, err
	}
	if len(e.Certs) > MaxCerts {
		return nil, fmt.Errorf("%d certificates; the limit is %d", len(e.Certs), MaxCerts)
	}
	for i, der := range e.Certs {
		if len(der) > MaxCertSize {
			return nil, fmt.Errorf("certificate %d is %d bytes; the limit is %d", i, len(der), MaxCertSize)
		}
		c, err := parseCert(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", i, err)
		}
		a.Certs = append(a.Certs, c)
	}
	if len(e.CRLs) > MaxCRLs {
		return nil, fmt.Errorf("%d CRLs; the limit is %d", len(e.CRLs), MaxCRLs)
	}
	for i, der := range e.CRLs {
		if len(der) > MaxCRLSize {
			return nil, fmt.Errorf("CRL %d is %d bytes; the limit is %d", i, len(der), MaxCRLSize)
		}
		c, err := parseCRL(der)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %v", i, err)
		}
		a.CRLs = append(a.CRLs, c)
	}
	if e.SVSMManifest != nil {
		if a.HCL != nil {
			return nil, errors.New("an Azure HCL report cannot carry an SVSM manifest (snp body key 4): the paravisor, not an SVSM, runs Azure's vTPM; drop the manifest")
		}
		if err := CheckSVSMManifest(e.SVSMManifest); err != nil {
			return nil, err
		}
		a.SVSMManifest = e.SVSMManifest
	}
	return a, nil
}

// SVSMReportData returns the REPORT_DATA the SVSM puts in its attestation
// of a service: SHA-512(nonce ‖ manifest), nonce being sworn's 64-byte
// binding.
func SVSMReportData(nonce, manifest []byte) [64]byte {
	h := sha512.New()
	h.Write(nonce)
	h.Write(manifest)
	var out [64]byte
	h.Sum(out[:0])
	return out
}

// CheckSVSMManifest checks that an SVSM vTPM service manifest (version 0)
// is what the SVSM puts there: the EK's public area, a TPMT_PUBLIC of an
// RSA or ECC restricted decryption key, encoded canonically.
func CheckSVSMManifest(m []byte) (err error) {
	if len(m) == 0 || len(m) > MaxSVSMManifestSize {
		return fmt.Errorf("SVSM manifest (snp body key 4) is %d bytes; it must be 1 to %d", len(m), MaxSVSMManifestSize)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("SVSM manifest (snp body key 4) is not a TPMT_PUBLIC (malformed: %v); the vTPM service manifest must be the EK public area", r)
		}
	}()
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](m)
	if err != nil {
		return fmt.Errorf("SVSM manifest (snp body key 4) is not a TPMT_PUBLIC: %v; the vTPM service manifest must be the EK public area", err)
	}
	if !bytes.Equal(tpm2.Marshal(*pub), m) {
		return errors.New("SVSM manifest (snp body key 4) is not exactly one canonically encoded TPMT_PUBLIC (trailing or non-canonical bytes); send the EK public area as the SVSM returned it")
	}
	if pub.Type != tpm2.TPMAlgRSA && pub.Type != tpm2.TPMAlgECC {
		return fmt.Errorf("SVSM manifest (snp body key 4) is a TPMT_PUBLIC of type 0x%04x, not an RSA or ECC key: it is not a vTPM EK", uint16(pub.Type))
	}
	if a := pub.ObjectAttributes; !a.Restricted || !a.Decrypt || a.SignEncrypt {
		return fmt.Errorf("SVSM manifest (snp body key 4) is not an endorsement key: an EK is a restricted decryption key, this one has restricted=%v decrypt=%v sign=%v", a.Restricted, a.Decrypt, a.SignEncrypt)
	}
	return nil
}

// ParseReport parses a raw SEV-SNP report or an Azure HCL report.
func ParseReport(data []byte) (*Attestation, error) {
	if len(data) > MaxReportSize {
		return nil, fmt.Errorf("report is %d bytes; the limit is %d", len(data), MaxReportSize)
	}
	a := &Attestation{Raw: data}
	if IsHCLReport(data) {
		h, err := ParseHCLReport(data)
		if err != nil {
			return nil, err
		}
		a.HCL, a.Raw = h, h.Report
	} else if len(data) != abi.ReportSize {
		return nil, fmt.Errorf("report is %d bytes; a raw SEV-SNP report is %d bytes and an Azure HCL report starts with \"HCLA\"", len(data), abi.ReportSize)
	}
	r, err := abi.ReportToProto(a.Raw)
	if err != nil {
		return nil, fmt.Errorf("not a valid SEV-SNP report: %v", err)
	}
	if r.GetVersion() < 2 {
		return nil, fmt.Errorf("report version %d is not supported (want 2 or later)", r.GetVersion())
	}
	if algo := abi.SignatureAlgo(a.Raw); algo != abi.SignEcdsaP384Sha384 {
		return nil, fmt.Errorf("report signature algorithm %d is not supported (want 1, ECDSA P-384 with SHA-384)", algo)
	}
	a.Report = r
	return a, nil
}

// ParseCertificates reads certificates in PEM (any number of blocks) or DER
// (one certificate) form and returns them as DER.
func ParseCertificates(data []byte) ([][]byte, error) {
	return parseDERorPEM(data, "CERTIFICATE", func(der []byte) error {
		_, err := x509.ParseCertificate(der)
		return err
	})
}

// ParseCRLs reads CRLs in PEM (any number of "X509 CRL" blocks) or DER form
// and returns them as DER.
func ParseCRLs(data []byte) ([][]byte, error) {
	return parseDERorPEM(data, "X509 CRL", func(der []byte) error {
		_, err := x509.ParseRevocationList(der)
		return err
	})
}

func parseDERorPEM(data []byte, blockType string, check func([]byte) error) ([][]byte, error) {
	if !pemblocks.IsPEM(data) {
		if err := check(data); err != nil {
			return nil, fmt.Errorf("neither PEM nor a DER %s: %v", blockType, err)
		}
		return [][]byte{data}, nil
	}
	out, err := pemblocks.Decode(data, blockType, 0)
	if err != nil {
		return nil, err
	}
	for i, der := range out {
		if err := check(der); err != nil {
			return nil, fmt.Errorf("PEM block %d: %v", i+1, err)
		}
	}
	return out, nil
}
