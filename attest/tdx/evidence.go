package tdx

import (
	"crypto/x509"
	"fmt"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/snp"
)

// Evidence is the body of a "tdx" bundle entry: the quote exactly as the
// Quoting Enclave produced it, and the DCAP collateral (JSON, see
// [Collateral]) needed to verify it offline. Decoded, its fields alias the
// entry body.
type Evidence struct {
	// Quote is a TDX quote, version 4 or 5.
	Quote attest.Bytes `cbor:"1,keyasint"`
	// Collateral is the collateral JSON; empty when none is stapled.
	Collateral attest.Bytes `cbor:"2,keyasint,omitempty"`
	// CCEL is the TD's Confidential Computing event log (the ACPI CCEL
	// table's log area, /sys/firmware/acpi/tables/data/CCEL), replayed
	// against RTMR0–3; empty when none is stapled.
	CCEL attest.Bytes `cbor:"3,keyasint,omitempty"`
	// CCELTable is the CCEL ACPI table (/sys/firmware/acpi/tables/CCEL).
	CCELTable attest.Bytes `cbor:"4,keyasint,omitempty"`
	// HCL is, on an Azure TDX confidential VM, the paravisor's HCL report
	// (vTPM NV index 0x01400001): its runtime data carries the vTPM's
	// attestation key and the user-data, and the quote's REPORTDATA must be
	// SHA-256(runtime data) ‖ 32 zero bytes.
	HCL attest.Bytes `cbor:"5,keyasint,omitempty"`
}

// Marshal encodes the evidence as a bundle entry body.
func (e *Evidence) Marshal() ([]byte, error) { return attest.MarshalCBOR(e) }

// Attestation is parsed TDX evidence.
type Attestation struct {
	// Quote is the parsed quote.
	Quote *Quote
	// PCK is the PCK chain from the quote, leaf first.
	PCK []*x509.Certificate
	// Collateral is nil when none was stapled.
	Collateral *ParsedCollateral
	// CCEL and CCELTable are the event log and its ACPI table, or nil.
	CCEL, CCELTable []byte
	// HCL is the parsed Azure HCL report, or nil.
	HCL *snp.HCLReport
}

// ParseEvidence decodes an entry body and parses it. The result aliases
// body.
func ParseEvidence(body []byte) (*Attestation, error) {
	var e Evidence
	if err := attest.UnmarshalCBOR(body, &e); err != nil {
		return nil, fmt.Errorf("TDX evidence is malformed: %v", err)
	}
	return Parse(&e)
}

// Parse parses a quote and its collateral.
func Parse(e *Evidence) (*Attestation, error) { return parse(e, plainParsers) }

// parsers parse the pieces of evidence; the Verifier's reuse earlier parses.
type parsers struct {
	quote func([]byte) (*Quote, error)
	cert  func([]byte) (*x509.Certificate, error)
	crl   func([]byte) (*x509.RevocationList, error)
	chain func([]byte) ([]*x509.Certificate, error)
	coll  func([]byte) (*ParsedCollateral, error)
}

var plainParsers = parsers{
	quote: ParseQuote,
	cert:  x509.ParseCertificate,
	crl:   x509.ParseRevocationList,
	chain: func(pem []byte) ([]*x509.Certificate, error) {
		return parseChain(pem, x509.ParseCertificate)
	},
	coll: ParseCollateral,
}

func parse(e *Evidence, ps parsers) (*Attestation, error) {
	q, err := ps.quote(e.Quote)
	if err != nil {
		return nil, err
	}
	if len(e.CCEL) > MaxCCELSize {
		return nil, fmt.Errorf("the CCEL event log is %d bytes; the limit is %d", len(e.CCEL), MaxCCELSize)
	}
	if len(e.CCELTable) > MaxCCELTableSize {
		return nil, fmt.Errorf("the CCEL ACPI table is %d bytes; the limit is %d", len(e.CCELTable), MaxCCELTableSize)
	}
	if len(e.CCELTable) > 0 && len(e.CCEL) == 0 {
		return nil, fmt.Errorf("a CCEL ACPI table without its event log; staple both or neither")
	}
	a := &Attestation{Quote: q}
	if len(e.CCEL) > 0 {
		a.CCEL, a.CCELTable = e.CCEL, e.CCELTable
	}
	if len(e.HCL) > 0 {
		if len(e.HCL) > snp.MaxReportSize+snp.MaxHCLRuntimeData {
			return nil, fmt.Errorf("the HCL report is %d bytes; the limit is %d", len(e.HCL), snp.MaxReportSize+snp.MaxHCLRuntimeData)
		}
		if a.HCL, err = snp.ParseTDXHCLReport(e.HCL); err != nil {
			return nil, err
		}
	}
	if a.PCK, err = ps.chain(q.PCKChain); err != nil {
		return nil, fmt.Errorf("the quote's PCK certificate chain: %v", err)
	}
	if len(e.Collateral) > 0 {
		if a.Collateral, err = ps.coll(e.Collateral); err != nil {
			return nil, err
		}
	}
	return a, nil
}
