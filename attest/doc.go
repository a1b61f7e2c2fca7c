// Package attest is the core of sworn's appraisal: the evidence bundle that a
// node staples together, the binding that ties every piece of evidence to the
// node's keys, the appraisal pipeline that turns evidence into a verdict, and
// the Result that says what was verified and what is still assumed.
//
// Each evidence kind (AMD SEV-SNP, TPM, NVIDIA GPU, …) lives in its own
// package under attest/ and plugs into the pipeline through the [Verifier]
// interface. Verification code is identical for real and simulated evidence;
// only the trust roots differ, and a Result produced under simulated roots is
// marked Simulated.
//
// The appraisal time is always an input: nothing in this package or its
// sub-packages reads the wall clock.
package attest
