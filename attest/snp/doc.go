// Package snp appraises AMD SEV-SNP attestation reports, on
// google/go-sev-guest.
//
// It follows the shape of go-sev-guest itself: [Parse] turns bytes (a raw
// report or an Azure CVM HCL report, its certificates and CRLs) into an
// [Attestation]; the [Verifier] checks the report signature, the VCEK or
// VLEK chain to a pinned AMD root, revocation from a stapled CRL (including
// its freshness, which go-sev-guest does not check), the REPORT_DATA binding,
// the TCB floors and the guest policy, and turns the report into claims.
//
// Step IDs: snp.parse, snp.signature, snp.chain, snp.revocation,
// snp.binding, snp.tcb, snp.policy, snp.measurement.
package snp
