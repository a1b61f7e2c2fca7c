// Package nvgpu verifies NVIDIA confidential GPUs (Hopper, Blackwell)
// locally, offline, from raw evidence: the SPDM 1.1 measurement report that
// the GPU signs, its device certificate chain to the NVIDIA Device Identity
// CA, the FWID that ties the report to the chain, stapled OCSP responses,
// and the signed reference measurements (RIMs) of the driver and the VBIOS.
//
// The package follows the parse → verify → validate layout of
// google/go-sev-guest: [ParseReport] and [ParseOpaque] read bytes into typed
// values with every size bounded and every offset computed from the
// structure; [VerifyReport], [VerifyRIM] and [VerifyOCSP] check the
// cryptography to pinned roots at a given time; [CompareMeasurements] and
// the [Verifier] turn the result into claims and apply the policy.
//
// The GPU's requester nonce is derived from the node binding:
// SHA-256(binding ‖ GPU index as a 4-byte big-endian integer); see [Nonce].
//
// A simulator ([Simulator]) emits the same wire formats signed by simulated
// roots, and a collector ([Collect], [Gate]) reads evidence through NVML on
// real hardware. Nothing here reads the wall clock.
package nvgpu
