// Package tpm appraises TPM 2.0 and vTPM evidence for sworn: quotes
// (TPMS_ATTEST + TPMT_SIGNATURE under an attestation key, RSASSA, RSAPSS or
// ECDSA, SHA-256/384 PCR banks), the TCG PC Client event log replayed
// against the quoted PCRs with go-eventlog, the trust in the attestation key
// (bound to the CPU TEE report, certified by a cloud vTPM CA, or pinned in
// the policy), and reference values for a systemd UKI boot.
//
// The layout follows google/go-sev-guest: parse (ParseEvidence, ParseAK,
// ParseQuote) → verify (VerifySignature, CheckPCRDigest, AK trust) →
// claims and validation (ReplayEventLog, the policy's tpm section).
// Verifier plugs it into the attest pipeline. Nothing here reads the wall
// clock or needs cgo; the simulator lives in attest/tpm/tpmsim.
package tpm
