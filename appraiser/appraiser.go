// Package appraiser is sworn's one appraisal: every evidence verifier (AMD
// SEV-SNP, Intel TDX, TPM 2.0, NVIDIA GPUs) and the release-log verifier, composed
// once. `sworn verify`, the node's self-check, the client and the key
// broker all call it, so no daemon re-implements a check.
package appraiser

import (
	"context"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tdx"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
)

// Appraiser appraises bundles. It holds the verifiers and their caches
// (parsed chains, CRLs, RIMs), and a cache of whole appraisals; it is safe
// for concurrent use.
//
// The appraisal cache is keyed by the SHA-256 of the bundle's encoding,
// the nonce and the revocation proofs, and by the policy value (a policy
// must not be changed once it has been passed to Appraise: parse a new
// one). An appraisal made at the time t answers later appraisals of the
// same inputs up to the end of the bundle's epoch (or the policy's
// max_age; for a challenge-mode bundle, ten minutes), once an appraisal
// at that end gave the same outcome: every time check (certificate,
// CRL, OCSP and epoch windows) holds on an interval of time, so a check
// that passes at t and at the end passes in between. The cache holds
// DefaultCacheEntries appraisals, the least recently used going first.
type Appraiser struct {
	verifiers []attest.Verifier
	cache     *cache
}

// New returns an Appraiser with every evidence verifier of this build.
func New() *Appraiser {
	return &Appraiser{
		verifiers: []attest.Verifier{snp.NewVerifier(), tdx.NewVerifier(), tpm.NewVerifier(), nvgpu.NewVerifier(nvgpu.NewCache(0))},
		cache:     newCache(DefaultCacheEntries),
	}
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

// Appraise runs the appraisal pipeline over a bundle (see attest.Appraise),
// or answers from the appraisal cache. The result is the caller's: one
// from the cache is a copy, whose At is the time it was computed at.
func (a *Appraiser) Appraise(ctx context.Context, b *attest.Bundle, o Options) *attest.Result {
	if a.cache == nil || o.At.IsZero() {
		return a.appraise(ctx, b, o, o.At)
	}
	k, ok := key(b, o)
	if !ok {
		return a.appraise(ctx, b, o, o.At)
	}
	if e := a.cache.get(k, o.At); e != nil {
		if !o.At.Equal(e.at) {
			e.once.Do(func() { e.confirmed = sameOutcome(e.res, a.appraise(ctx, b, o, e.horizon)) })
		}
		if o.At.Equal(e.at) || e.confirmed {
			return cloneResult(e.res)
		}
		// The outcome changes before the horizon (a certificate or an
		// OCSP response expires within the epoch): appraise afresh.
		a.cache.drop(e)
	}
	r := a.appraise(ctx, b, o, o.At)
	if ctx.Err() == nil {
		a.cache.put(&entry{key: k, res: cloneResult(r), at: o.At, horizon: horizon(b, o.Policy, o.At)})
	}
	return r
}

func (a *Appraiser) appraise(ctx context.Context, b *attest.Bundle, o Options, at time.Time) *attest.Result {
	return attest.Appraise(ctx, b, attest.Options{
		At: at, Policy: o.Policy, Nonce: o.Nonce, Verifiers: a.verifiers,
		Release: tlog.BundleVerifier{Revocations: o.Revocations},
	})
}
