package attest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/wire"
)

// Verifier appraises one kind of evidence: it parses an entry's body,
// verifies it to the roots the policy trusts, checks the binding, extracts
// claims and applies the kind's part of the policy. It returns the device's
// section; it never panics on bad input, and reports it as a failed
// "<kind>.parse" step.
type Verifier interface {
	Kind() string
	Verify(ctx context.Context, e Entry, env *Env) *Section
}

// ReleaseVerifier appraises the release proof stapled to a bundle — the
// release.* steps — against the claims of the devices appraised before it
// (env.Devices). proof is nil when the bundle staples none.
type ReleaseVerifier interface {
	VerifyRelease(ctx context.Context, proof []byte, env *Env) *Section
}

// Env is what a Verifier needs besides the entry itself.
type Env struct {
	// At is the time of the appraisal: certificates, CRLs and evidence
	// ages are judged at this time.
	At time.Time
	// Binding is the value every piece of evidence must carry.
	Binding Binding
	// Policy is the policy being applied. It is nil only when a single
	// piece of evidence is verified without a policy (sworn verify snp
	// without --policy): verifiers then skip their policy checks, with the
	// reason.
	Policy *policy.Policy
	// Ledger collects what was verified and what is assumed.
	Ledger *Ledger
	// Devices holds the sections of the devices appraised so far, so that a
	// later kind can use an earlier kind's claims (the TPM appraisal uses
	// the vTPM key bound in the CPU TEE report).
	Devices map[string]*Section
	// Freshness is the bundle's freshness (zero outside a bundle).
	Freshness Freshness
	// Simulated is set by a verifier that trusted simulated roots.
	Simulated bool

	noBinding bool
}

// Options configure an appraisal.
type Options struct {
	// At is the time of the appraisal. Required.
	At time.Time
	// Policy to apply. Required.
	Policy *policy.Policy
	// Nonce is the client's expected nonce (challenge mode). When nil, a
	// challenge-mode bundle's freshness cannot be checked.
	Nonce []byte
	// Verifiers by kind.
	Verifiers []Verifier
	// Release appraises the stapled release proof. When nil, or when the
	// policy pins no release log and the bundle staples no proof, there is
	// no release section.
	Release ReleaseVerifier
}

// Appraise runs the appraisal pipeline over a bundle. It never fails: every
// problem is a step in the Result, and the verdict fails closed.
func Appraise(ctx context.Context, b *Bundle, opts Options) *Result {
	r := &Result{At: opts.At.UTC(), Devices: map[string]*Section{}}
	if noTime(r, opts.At) {
		return r
	}
	env := &Env{At: opts.At, Policy: opts.Policy, Ledger: &r.Ledger, Devices: r.Devices}
	if env.Policy == nil {
		env.Policy = policy.Default()
	}
	if err := b.Validate(); err != nil {
		r.Bundle = &Section{}
		r.Bundle.Add("bundle.parse", Fail, "%v", err)
		r.Finish()
		return r
	}
	r.Bundle = appraiseBundle(b, opts, env)
	env.Binding = b.Binding()
	env.Freshness = b.Freshness

	byKind := map[string]Verifier{}
	for _, v := range opts.Verifiers {
		byKind[v.Kind()] = v
	}
	for _, kind := range knownKinds {
		var es []Entry
		for _, e := range b.Evidence {
			if e.Kind == kind {
				es = append(es, e)
			}
		}
		v, ok := byKind[kind]
		if !ok {
			for _, e := range es {
				s := &Section{Kind: kind}
				s.Add(StepPrefix(kind)+".parse", Fail, "this sworn cannot appraise %s evidence; the device cannot be trusted", kind)
				r.Devices[e.Device] = s
			}
			continue
		}
		verifyKind(ctx, v, kind, es, env)
	}
	switch {
	case opts.Release != nil && (b.Release != nil || env.Policy.Log != nil):
		r.Release = opts.Release.VerifyRelease(ctx, b.Release, env)
	case env.Policy.Log != nil:
		r.Release = &Section{Kind: "release"}
		r.Release.Add("release.inclusion", Fail, "the policy pins a release log, but this appraiser cannot check release proofs")
	}
	r.Simulated = env.Simulated || env.Policy.SimulatedRoots()
	kinds := make([]string, 0, len(b.Evidence))
	for _, e := range b.Evidence {
		kinds = append(kinds, e.Kind)
	}
	r.Policy = appraisePolicy(kinds, env, false, r.Release)
	r.Finish()
	return r
}

// parallelKinds are the kinds whose entries are appraised concurrently:
// a GPU's appraisal reads only the claims of the CPU and TPM appraised
// before it, never another GPU's.
var parallelKinds = []string{KindNVGPU}

// sequential, set by tests, appraises every entry in turn.
var sequential bool

// verifyKind appraises the entries of one kind into env.Devices. Entries
// of a parallel kind are verified concurrently, at most GOMAXPROCS at a
// time, each with its own copy of env and its own ledger; the ledgers and
// the Simulated marks are then merged in bundle order, so the result is
// the one a sequential appraisal gives.
func verifyKind(ctx context.Context, v Verifier, kind string, es []Entry, env *Env) {
	workers := min(runtime.GOMAXPROCS(0), len(es))
	if sequential || workers < 2 || !slices.Contains(parallelKinds, kind) {
		for _, e := range es {
			s := v.Verify(ctx, e, env)
			s.Kind = kind
			env.Devices[e.Device] = s
		}
		return
	}
	secs := make([]*Section, len(es))
	envs := make([]Env, len(es))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				envs[i] = *env
				envs[i].Ledger = &Ledger{}
				envs[i].Simulated = false
				secs[i] = v.Verify(ctx, es[i], &envs[i])
			}
		})
	}
	for i := range es {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, e := range es {
		secs[i].Kind = kind
		env.Devices[e.Device] = secs[i]
		for _, l := range envs[i].Ledger.Verified {
			env.Ledger.Verify(l.ID, l.Text)
		}
		for _, l := range envs[i].Ledger.Assumed {
			env.Ledger.Assume(l.ID, l.Text)
		}
		env.Simulated = env.Simulated || envs[i].Simulated
	}
}

func appraiseBundle(b *Bundle, opts Options, env *Env) *Section {
	s := &Section{}
	cs, _ := b.Keys.Configs() // Validate parsed them
	var names []string
	for _, c := range cs {
		names = append(names, fmt.Sprintf("key %d %s", c.ID, wire.KEMName(c.KEM)))
	}
	s.Add("bundle.keys", Pass, "request keys (%s) and Ed25519 receipt key are well formed; every piece of evidence must carry their binding", strings.Join(names, ", "))
	f := b.Freshness
	switch {
	case f.Nonce != nil && opts.Nonce != nil:
		if subtle.ConstantTimeCompare(f.Nonce, opts.Nonce) == 1 {
			s.Add("bundle.freshness", Pass, "bundle answers the given nonce %s", hex.EncodeToString(f.Nonce))
			env.Ledger.Verify("fresh.nonce", "The evidence was produced after the client chose its nonce.")
		} else {
			s.Add("bundle.freshness", Fail, "bundle answers nonce %s, not the given nonce %s: it may be a replay", hex.EncodeToString(f.Nonce), hex.EncodeToString(opts.Nonce))
		}
	case f.Nonce != nil:
		s.Add("bundle.freshness", Skip, "bundle answers nonce %s, but no --nonce was given to check it against", hex.EncodeToString(f.Nonce))
		env.Ledger.Assume("fresh.unchecked", "The bundle is assumed to be fresh: its nonce was not compared with one the verifier chose.")
	case f.Epoch != nil:
		if opts.Nonce != nil {
			s.Add("bundle.freshness", Fail, "a nonce was given, but the bundle is a passport-mode bundle (epoch), not an answer to that nonce")
			break
		}
		nb, na := time.Unix(f.Epoch.NotBefore, 0).UTC(), time.Unix(f.Epoch.NotAfter, 0).UTC()
		if !f.Epoch.Contains(opts.At) {
			s.Add("bundle.freshness", Fail, "bundle epoch %s to %s does not contain the appraisal time %s", nb.Format(time.RFC3339), na.Format(time.RFC3339), opts.At.UTC().Format(time.RFC3339))
			break
		}
		if max := time.Duration(env.Policy.MaxAge); max > 0 && opts.At.Sub(nb) > max {
			s.Add("bundle.freshness", Fail, "bundle epoch began %s, older than the policy's max_age %s", nb.Format(time.RFC3339), max)
			break
		}
		s.Add("bundle.freshness", Pass, "bundle epoch %s to %s contains the appraisal time", nb.Format(time.RFC3339), na.Format(time.RFC3339))
		env.Ledger.Verify("fresh.epoch", "The evidence belongs to the current epoch (passport mode).")
		if bytes.Equal(f.Epoch.Checkpoint, make([]byte, 32)) {
			env.Ledger.Assume("fresh.no-log", "The epoch is not tied to a release-log checkpoint.")
		}
	}
	return s
}

// appraisePolicy checks the kinds of evidence present against those the
// policy requires, and evaluates its rules. single is set when one piece of
// evidence is verified on its own: the other required kinds are then not
// expected. release is the release section, or nil.
func appraisePolicy(kinds []string, env *Env, single bool, release *Section) *Section {
	s := &Section{}
	p := env.Policy
	if single {
		for _, k := range append(p.CPUAllowed(), p.Required()...) {
			if k == kinds[0] {
				s.Add("policy.require."+k, Pass, "the policy requires %s evidence and it is present", k)
			} else {
				s.AddOptional("policy.require."+k, Skip, "the policy requires %s evidence; one piece of %s evidence is verified here on its own", k, kinds[0])
			}
		}
	} else {
		requireCPU(s, kinds, env)
		for _, k := range p.Required() {
			if slices.Contains(kinds, k) {
				s.Add("policy.require."+k, Pass, "the policy requires %s evidence and it is present", k)
				continue
			}
			why := "require lists it"
			if !slices.Contains(p.Require, k) {
				why = fmt.Sprintf("the policy has a %s: section; add \"optional: true\" to it to accept bundles without", k)
			}
			s.Add("policy.require."+k, Fail, "the policy requires %s evidence (%s); the bundle has none", k, why)
		}
		if !slices.Contains(kinds, KindTPM) {
			env.Ledger.Assume("tpm.absent", "The guest OS's measured boot was not verified: the bundle carries no TPM evidence.")
		}
		gpus := 0
		for _, k := range kinds {
			if k == KindNVGPU {
				gpus++
			}
		}
		if set, ok, why := p.NVGPU.CheckCount(gpus); set {
			if ok {
				s.Add("policy.nvgpu.count", Pass, "%s", why)
				env.Ledger.Verify("nvgpu.count", fmt.Sprintf("The node has the %d GPU(s) the policy expects, each appraised.", gpus))
			} else {
				s.Add("policy.nvgpu.count", Fail, "%s: a GPU's evidence was left out, or the node is not the machine shape the policy expects", why)
			}
		} else if release == nil || release.Claims[ClaimGPUCount] == nil {
			env.Ledger.Assume("nvgpu.count", "The number of GPUs is not attested: neither the policy (nvgpu.count) nor the release names it, so a node could leave a GPU's evidence out.")
		}
	}
	if len(p.Rules) > 0 {
		claims := map[string]map[string]any{}
		for name, d := range env.Devices {
			claims[name] = d.Claims
		}
		for _, o := range p.EvalRules(claims) {
			id := "policy.rule." + o.Rule.Name
			switch {
			case o.Err != nil:
				s.Add(id, Fail, "%s (the rule could not be evaluated: %v)", o.Rule.Message, o.Err)
			case o.OK:
				s.Add(id, Pass, "rule %s holds", o.Rule.Name)
			default:
				s.Add(id, Fail, "%s", o.Rule.Message)
			}
		}
	}
	if len(s.Steps) == 0 {
		return nil
	}
	return s
}

// requireCPU adds policy.require.cpu: a bundle affirms only with exactly
// one CPU TEE entry, of a kind the policy names, whose binding of the
// node's keys verified. Nothing else protects those keys.
func requireCPU(s *Section, kinds []string, env *Env) {
	const id = "policy.require.cpu"
	var cpus []string
	for name, d := range env.Devices {
		if slices.Contains(policy.CPUKinds, d.Kind) {
			cpus = append(cpus, name)
		}
	}
	allowed := env.Policy.CPUAllowed()
	switch {
	case len(allowed) == 0:
		s.Add(id, Fail, "the policy requires no CPU TEE; add snp or tdx to require: without one, nothing protects the node's keys")
	case len(cpus) == 0:
		s.Add(id, Fail, "the bundle carries no CPU TEE evidence (%s): nothing protects the node's keys", strings.Join(allowed, " or "))
	case len(cpus) > 1:
		slices.Sort(cpus)
		s.Add(id, Fail, "the bundle carries %d CPU TEE entries (%s); a node has exactly one", len(cpus), strings.Join(cpus, ", "))
	default:
		d := env.Devices[cpus[0]]
		if !slices.Contains(allowed, d.Kind) {
			s.Add(id, Fail, "%s is %s evidence; the policy accepts %s", cpus[0], d.Kind, strings.Join(allowed, " or "))
			return
		}
		if st := d.Step(StepPrefix(d.Kind) + ".binding"); st == nil || st.Status != Pass {
			s.Add(id, Fail, "%s is %s evidence, but its binding of the node's keys did not verify", cpus[0], d.Kind)
			return
		}
		s.Add(id, Pass, "%s is the one CPU TEE (%s), and its report binds the node's keys", cpus[0], d.Kind)
	}
}

// VerifyEntry appraises a single piece of evidence outside a bundle (as
// `sworn verify snp` does). binding is the expected binding, or nil when
// none is known, in which case the kind skips its binding step.
func VerifyEntry(ctx context.Context, v Verifier, e Entry, at time.Time, p *policy.Policy, binding *Binding) *Result {
	r := &Result{At: at.UTC(), Devices: map[string]*Section{}}
	if noTime(r, at) {
		return r
	}
	env := &Env{At: at, Policy: p, Ledger: &r.Ledger, Devices: r.Devices}
	if binding != nil {
		env.Binding = *binding
	}
	env.noBinding = binding == nil
	s := v.Verify(ctx, e, env)
	s.Kind = v.Kind()
	r.Devices[e.Device] = s
	r.Simulated = env.Simulated || (p != nil && p.SimulatedRoots())
	if p != nil {
		r.Policy = appraisePolicy([]string{v.Kind()}, env, true, nil)
	}
	r.Finish()
	return r
}

// noTime fails a result whose appraisal time is not set: certificates,
// CRLs and epochs are judged at the appraisal time, and nothing falls back
// to the wall clock.
func noTime(r *Result, at time.Time) bool {
	if !at.IsZero() {
		return false
	}
	r.Policy = &Section{}
	r.Policy.Add("policy.time", Fail, "no appraisal time was given; pass the time to appraise at (sworn: --at, default now)")
	r.Finish()
	return true
}

// StepPrefix returns the prefix of a kind's step ids ("gpu" for nvgpu).
func StepPrefix(kind string) string {
	if kind == KindNVGPU {
		return "gpu"
	}
	return kind
}

// ExpectBinding reports whether the expected binding is known. When it is
// not, a verifier skips its binding step with the reason that none was given.
func (env *Env) ExpectBinding() bool { return !env.noBinding }

// FormatAt renders an appraisal time for messages.
func FormatAt(t time.Time) string { return t.UTC().Format(time.RFC3339) }
