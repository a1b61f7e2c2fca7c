// Package tdx appraises Intel TDX quotes (versions 4 and 5) offline, with
// stapled DCAP collateral, on google/go-tdx-guest.
//
// [ParseQuote] reads a quote strictly (version 4 also through go-tdx-guest's
// abi package; version 5, whose TDX 1.5 body go-tdx-guest's released
// versions cannot read, by sworn's own parser; everything after parsing is
// shared). The [Verifier] checks the quote signature by the attestation
// key, the QE report's signature by the PCK key and its binding of the
// attestation key, the PCK chain to Intel's SGX Root CA pinned by SPKI hash,
// the collateral (TCB info, QE identity, PCK and root CRLs, each signed
// under the pinned root and fresh at the appraisal time), revocation, the
// TCB status of the platform and of the Quoting Enclave (mapped to a
// warning or a refusal by the policy), the REPORTDATA binding, the TD
// attributes (DEBUG is always refused) and the measurement registers, and
// turns the quote into claims. sworn, not go-tdx-guest, decides TCB status.
// A stapled CCEL event log is replayed against RTMR0–3 (with go-eventlog),
// and an Azure TDX VM's HCL report binds its vTPM's key. The [Collector]
// gets quotes through configfs-tsm; [SimPlatform] signs real-format quotes
// under sworn's simulated Intel roots. See docs/tdx.md.
//
// Step IDs: tdx.parse, tdx.signature, tdx.chain, tdx.collateral,
// tdx.revocation, tdx.tcb, tdx.qe, tdx.binding, tdx.policy,
// tdx.measurements, tdx.replay.
package tdx
