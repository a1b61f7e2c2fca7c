package tpm

import (
	"errors"
	"fmt"

	"github.com/sworn-dev/sworn/attest"
)

// EvidenceVersion is the only version of the TPM entry body this package
// reads and writes.
const EvidenceVersion = 1

// Evidence is the body of a "tpm" bundle entry, encoded as deterministic
// CBOR with attest.MarshalCBOR: the attestation key, one quote per PCR
// bank (or one quote over several banks), the TCG event log, and what
// establishes trust in the AK.
type Evidence struct {
	Version uint `cbor:"1,keyasint"`
	// AK is the attestation key: its TPMT_PUBLIC (or, for keys taken from
	// elsewhere, a PEM public key).
	AK []byte `cbor:"2,keyasint"`
	// Quotes are TPM2_Quote results, each with the PCR values it covers.
	Quotes []Quote `cbor:"3,keyasint"`
	// EventLog is the TCG PC Client (crypto-agile) event log, possibly
	// with events the node software appended (see docs/tpm.md).
	EventLog []byte `cbor:"4,keyasint,omitempty"`
	// AKCerts is an optional AK certificate chain (DER), leaf first, as a
	// cloud vTPM CA issues it; the root is never taken from here.
	AKCerts [][]byte `cbor:"5,keyasint,omitempty"`
	// EK is the endorsement key's TPMT_PUBLIC, for the SVSM vTPM binding
	// (the EK is bound in a VMPL0 SNP report, the AK to the EK by
	// credential activation).
	EK []byte `cbor:"6,keyasint,omitempty"`
	// AKParent is the qualified name of the AK's parent (tpm2_readpublic
	// -c PARENT -q) when the AK is a child key, as tpm2_createak makes it
	// under the EK: the quote's qualifiedSigner is checked against the AK
	// under this parent. Without it, the AK must be a primary key.
	AKParent []byte `cbor:"7,keyasint,omitempty"`
}

// Marshal encodes the evidence as an entry body.
func (e *Evidence) Marshal() ([]byte, error) {
	if e.Version == 0 {
		e.Version = EvidenceVersion
	}
	return attest.MarshalCBOR(e)
}

// Entry returns the evidence as a bundle entry for the given device ("tpm0").
func (e *Evidence) Entry(device string) (attest.Entry, error) {
	body, err := e.Marshal()
	if err != nil {
		return attest.Entry{}, err
	}
	return attest.Entry{Kind: attest.KindTPM, Device: device, Body: body}, nil
}

// ParseEvidence decodes an entry body strictly and checks its sizes.
func ParseEvidence(body []byte) (*Evidence, error) {
	if len(body) == 0 {
		return nil, errors.New("TPM evidence is empty")
	}
	if len(body) > attest.MaxEntrySize {
		return nil, fmt.Errorf("TPM evidence is %d bytes; the limit is %d", len(body), attest.MaxEntrySize)
	}
	var e Evidence
	if err := attest.UnmarshalCBOR(body, &e); err != nil {
		return nil, fmt.Errorf("TPM evidence is not a valid CBOR TPM entry: %v", err)
	}
	if e.Version != EvidenceVersion {
		return nil, fmt.Errorf("TPM evidence version %d is not supported (this sworn reads version %d); upgrade sworn", e.Version, EvidenceVersion)
	}
	if len(e.AK) == 0 || len(e.AK) > MaxPublicSize {
		return nil, fmt.Errorf("TPM evidence: attestation key is %d bytes; it must be 1 to %d", len(e.AK), MaxPublicSize)
	}
	if len(e.Quotes) == 0 || len(e.Quotes) > MaxQuotes {
		return nil, fmt.Errorf("TPM evidence has %d quotes; it must have 1 to %d", len(e.Quotes), MaxQuotes)
	}
	if len(e.EventLog) > MaxEventLogSize {
		return nil, fmt.Errorf("TPM evidence: event log is %d bytes; the limit is %d", len(e.EventLog), MaxEventLogSize)
	}
	if len(e.AKCerts) > MaxCerts {
		return nil, fmt.Errorf("TPM evidence: AK chain has %d certificates; the limit is %d", len(e.AKCerts), MaxCerts)
	}
	for i, c := range e.AKCerts {
		if len(c) == 0 || len(c) > MaxCertSize {
			return nil, fmt.Errorf("TPM evidence: AK certificate %d is %d bytes; it must be 1 to %d", i, len(c), MaxCertSize)
		}
	}
	if len(e.EK) > MaxPublicSize {
		return nil, fmt.Errorf("TPM evidence: EK is %d bytes; the limit is %d", len(e.EK), MaxPublicSize)
	}
	if n := len(e.AKParent); n != 0 && (n < 4 || n > MaxNameSize) {
		return nil, fmt.Errorf("TPM evidence: the AK parent's qualified name is %d bytes; it must be 4 (a hierarchy handle) to %d", n, MaxNameSize)
	}
	return &e, nil
}
