// Package appraiser is sworn's one appraisal: every evidence verifier (AMD
// SEV-SNP, TPM 2.0, NVIDIA GPUs) and the release-log verifier, composed
// once. `sworn verify`, the node's self-check, the client and the key
// broker all call it, so no daemon re-implements a check.
package appraiser

import (
	"context"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
)

// Appraiser appraises bundles. It holds the verifiers and their caches
// (parsed chains, CRLs, RIMs), and is safe for concurrent use.
type Appraiser struct {
	verifiers []attest.Verifier
}

// New returns an Appraiser with every evidence verifier of this build.
func New() *Appraiser {
	return &Appraiser{verifiers: []attest.Verifier{snp.NewVerifier(), tpm.NewVerifier(), nvgpu.NewVerifier(nvgpu.NewCache(0))}}
}

// Verifiers returns the evidence verifiers, for appraising a single piece
// of evidence (attest.VerifyEntry).
func (a *Appraiser) Verifiers() []attest.Verifier { return a.verifiers }

// Verifier returns the verifier of one evidence kind, or nil.
func (a *Appraiser) Verifier(kind string) attest.Verifier {
	for _, v := range a.verifiers {
		if v.Kind() == kind {
			return v
		}
	}
	return nil
}

// Release returns the release-log verifier, for pipelines that appraise a
// bundle around something else (receipt.Appraise).
func (a *Appraiser) Release() attest.ReleaseVerifier { return tlog.BundleVerifier{} }

// Options are the inputs of one appraisal besides the bundle.
type Options struct {
	// At is the time of the appraisal. Required.
	At time.Time
	// Policy to apply. Required.
	Policy *policy.Policy
	// Nonce is the nonce a challenge-mode bundle must answer.
	Nonce []byte
	// Revocations are revocation proofs from the release log.
	Revocations [][]byte
}

// Appraise runs the appraisal pipeline over a bundle (see attest.Appraise).
func (a *Appraiser) Appraise(ctx context.Context, b *attest.Bundle, o Options) *attest.Result {
	return attest.Appraise(ctx, b, attest.Options{
		At: o.At, Policy: o.Policy, Nonce: o.Nonce, Verifiers: a.verifiers,
		Release: tlog.BundleVerifier{Revocations: o.Revocations},
	})
}
