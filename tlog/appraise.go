package tlog

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

// Claims are what a node's evidence says it runs, in the terms of a
// release record. Nil or empty fields were not measured and are not
// compared.
type Claims struct {
	// SNPMeasurement is the SEV-SNP launch measurement (48 bytes).
	SNPMeasurement []byte
	// TDX is the TDX MRTD and RTMRs (48 bytes each; a nil RTMR is not
	// compared).
	TDX *TDXClaims
	// PCRs are the quoted TPM PCR values. Non-nil means a TPM was appraised:
	// every PCR the release lists must then be among them.
	PCRs []PCR
	// Components maps a component name (firmware, kernel, initrd, cmdline,
	// uki, node) to its measured digest ("sha256:<hex>").
	Components map[string]string
	// Containers maps a container name to its image digest.
	Containers map[string]string
	// GPUs is the number of GPU devices appraised.
	GPUs int
	// GPUDrivers and GPUVBIOS are each GPU's driver and VBIOS versions.
	GPUDrivers, GPUVBIOS []string
	// Models are the digests of the models the node serves.
	Models []string

	// conflicts are disagreements between devices that ClaimsFromDevices
	// found; any makes release.match fail.
	conflicts []string
}

// TDXClaims are measured TDX registers.
type TDXClaims struct {
	MRTD  []byte
	RTMRs [4][]byte
}

// ClaimsFromDevices collects the claims that release records speak of from
// appraised device sections: the launch measurement of kind snp; the MRTD
// and RTMRs of kind tdx; the quoted PCRs, node software and booted UKI of
// kind tpm (see tpmClaims); the driver and VBIOS versions of kind nvgpu
// (attest.Claim* names). Devices are read in name order. When two devices
// of a kind disagree on a claim that is kept once (two CPU measurements,
// two booted UKIs), the release cannot match: the disagreement is recorded
// and release.match fails. Models must be set by the caller.
func ClaimsFromDevices(devs map[string]*attest.Section) *Claims {
	c := &Claims{}
	hexClaim := func(s *attest.Section, k string) []byte {
		v, _ := s.Claims[k].(string)
		b, err := hex.DecodeString(v)
		if err != nil || len(b) == 0 {
			return nil
		}
		return b
	}
	names := make([]string, 0, len(devs))
	for n := range devs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s := devs[n]
		if s == nil {
			continue
		}
		switch s.Kind {
		case attest.KindSNP:
			m := hexClaim(s, attest.ClaimMeasurement)
			if c.SNPMeasurement != nil && !bytes.Equal(c.SNPMeasurement, m) {
				c.conflicts = append(c.conflicts, fmt.Sprintf("%s's SNP measurement differs from another CPU's", n))
			}
			c.SNPMeasurement = m
		case attest.KindTDX:
			t := &TDXClaims{MRTD: hexClaim(s, attest.ClaimMRTD)}
			for i := range t.RTMRs {
				t.RTMRs[i] = hexClaim(s, fmt.Sprintf("%s%d", attest.ClaimRTMR, i))
			}
			if c.TDX != nil {
				c.conflicts = append(c.conflicts, fmt.Sprintf("%s is a second TDX CPU", n))
			}
			c.TDX = t
		case attest.KindTPM:
			tpmClaims(c, n, s)
		case attest.KindNVGPU:
			c.GPUs++
			if v, ok := s.Claims[attest.ClaimGPUDriverVersion].(string); ok {
				c.GPUDrivers = append(c.GPUDrivers, v)
			} else {
				c.conflicts = append(c.conflicts, fmt.Sprintf("%s has no driver version claim", n))
			}
			if v, ok := s.Claims[attest.ClaimGPUVBIOSVersion].(string); ok {
				c.GPUVBIOS = append(c.GPUVBIOS, v)
			} else {
				c.conflicts = append(c.conflicts, fmt.Sprintf("%s has no VBIOS version claim", n))
			}
		}
	}
	return c
}

// AppraiseOptions are the optional inputs of a release appraisal.
type AppraiseOptions struct {
	// Revocations are stapled proofs of revocation records; each is
	// verified like the release proof, and one that revokes the release
	// makes it contraindicated.
	Revocations [][]byte
	// State, when set, is the client's last-seen checkpoint store: a split
	// view fails the release.consistency step.
	State *State
	// Prove supplies consistency proofs for State (nil: offline).
	Prove ConsistencyFunc
}

// AppraiseRelease appraises a stapled release proof under the policy's log
// section at time at and returns the "release" section with the steps
// release.signature, release.inclusion, release.witnesses, release.match
// and release.revocation (and release.consistency when opts.State is set).
// claims are the node's appraised claims; nil means that no node is being
// appraised (sworn verify release), and release.match is then an optional
// skip. It never panics on bad input and fails closed. ledger may be nil.
func AppraiseRelease(proof []byte, pol *policy.Log, at time.Time, claims *Claims, ledger *attest.Ledger, opts *AppraiseOptions) *attest.Section {
	s := &attest.Section{Kind: "release"}
	if ledger == nil {
		ledger = &attest.Ledger{}
	}
	v, err := NewVerifier(pol)
	if err != nil {
		for _, id := range []string{StepSignature, StepInclusion, StepWitnesses, StepMatch, StepRevocation} {
			s.Add(id, attest.Skip, "%v", err)
		}
		ledger.Assume("release.unchecked", "The node's software is assumed to be a published release: no release log is pinned in the policy.")
		s.Finish()
		return s
	}
	v.Appraise(s, proof, at, claims, ledger, opts)
	s.Finish()
	return s
}

// Appraise adds the release.* steps for a stapled proof to s; see
// AppraiseRelease.
func (v *Verifier) Appraise(s *attest.Section, proofBytes []byte, at time.Time, claims *Claims, ledger *attest.Ledger, opts *AppraiseOptions) {
	if opts == nil {
		opts = &AppraiseOptions{}
	}
	skipRest := func(from int, why string) {
		ids := []string{StepSignature, StepInclusion, StepWitnesses, StepMatch, StepRevocation}
		for _, id := range ids[from:] {
			s.Add(id, attest.Skip, "%s", why)
		}
	}
	p, err := ParseProof(proofBytes)
	if err != nil {
		s.Add(StepSignature, attest.Fail, "release proof cannot be read: %v", err)
		skipRest(1, "not checked: the release proof cannot be read")
		return
	}
	rec, err := v.VerifyRecord(p.Record)
	if err != nil {
		s.Add(StepSignature, attest.Fail, "%v", err)
		skipRest(1, "not checked: the release record is not validly signed")
		return
	}
	if rec.Type != TypeRelease {
		s.Add(StepSignature, attest.Fail, "the proof's record is a %s record, not a release", rec.Type)
		skipRest(1, "not checked: the record is not a release")
		return
	}
	r := rec.Release
	s.Claims = map[string]any{"release": r.Key(), "publisher": rec.Publisher, "index": p.Index}
	if len(v.publishers) == 0 {
		s.AddOptional(StepSignature, attest.Skip, "no publisher key is pinned: the signature by %s was not checked; the log's publisher allow-list is trusted", rec.Publisher)
		ledger.Assume("release.publisher", "The release log only accepts releases from legitimate publishers: no publisher key is pinned.")
	} else {
		s.Add(StepSignature, attest.Pass, "release %s is signed by allowed publisher %s", r.Key(), rec.Publisher)
		ledger.Verify("release.signature", fmt.Sprintf("Release %s was signed by publisher key %s.", r.Key(), rec.Publisher))
	}

	cp, err := v.VerifyCheckpoint(p.Checkpoint)
	if err == nil {
		err = VerifyInclusion(cp, p.Index, p.Hashes, p.Record)
	}
	if err != nil {
		s.Add(StepInclusion, attest.Fail, "%v", err)
		skipRest(2, "not checked: the release is not proven to be in the log")
		return
	}
	s.Add(StepInclusion, attest.Pass, "release is entry %d of log %s, under a checkpoint of size %d signed by the log", p.Index, v.origin, cp.Size)
	ledger.Verify("release.inclusion", fmt.Sprintf("Release %s is entry %d of the append-only log %s.", r.Key(), p.Index, v.origin))

	if opts.State != nil {
		checked, err := opts.State.Update(cp, opts.Prove)
		var sv *SplitViewError
		switch {
		case errors.As(err, &sv):
			s.Add(StepConsistency, attest.Fail, "%v", err)
		case err != nil:
			s.Add(StepConsistency, attest.Fail, "last-seen checkpoint: %v", err)
		case !checked:
			s.Add(StepConsistency, attest.Warn, "checkpoint of size %d differs in size from the last one seen; consistency needs the log online (sworn monitor) and was not checked", cp.Size)
		default:
			s.Add(StepConsistency, attest.Pass, "checkpoint of size %d is consistent with the last one seen", cp.Size)
		}
	}

	n, err := v.CheckQuorum(cp, at)
	switch {
	case err != nil:
		s.Add(StepWitnesses, attest.Fail, "%v", err)
	case v.quorum == 0:
		s.Add(StepWitnesses, attest.Warn, "the policy requires no witness (quorum 0); %d known cosignature(s) present", len(cp.Cosignatures))
		ledger.Assume("release.witnesses", "The log operator is assumed not to show different histories to different clients: no witness quorum is required.")
	default:
		names := make([]string, 0, len(cp.Cosignatures))
		for _, c := range cp.Cosignatures {
			names = append(names, c.Witness+" at "+c.Time.Format(time.RFC3339))
		}
		s.Add(StepWitnesses, attest.Pass, "%d of %d pinned witnesses cosigned (quorum %d): %s", n, len(v.witnesses), v.quorum, strings.Join(names, ", "))
		ledger.Verify("release.witnesses", fmt.Sprintf("%d independent %s saw the same log history (quorum %d).", n, plural(n, "witness", "witnesses"), v.quorum))
		ledger.Assume("release.witness-collusion", fmt.Sprintf("Fewer than %d of the pinned witnesses collude with the log operator.", v.quorum))
	}

	if r.GPU.Count != nil {
		s.Claims[attest.ClaimGPUCount] = *r.GPU.Count
	}
	if claims == nil {
		s.AddOptional(StepMatch, attest.Skip, "no node claims to compare: only the release proof was verified")
	} else if ok, detail := match(r, claims); ok {
		s.Add(StepMatch, attest.Pass, "%s", detail)
		ledger.Verify("release.match", fmt.Sprintf("The node's measurements are those of release %s.", r.Key()))
	} else {
		s.Add(StepMatch, attest.Fail, "%s", detail)
	}

	v.appraiseRevocation(s, rec, cp.Size, at, ledger, opts.Revocations)
}

func (v *Verifier) appraiseRevocation(s *attest.Section, rec *Record, size uint64, at time.Time, ledger *attest.Ledger, stapled [][]byte) {
	r := rec.Release
	if at.After(r.NotAfter) {
		s.Add(StepRevocation, attest.Fail, "release %s expired at %s (appraised at %s)", r.Key(), r.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		return
	}
	if at.Add(MaxClockSkew).Before(r.Created) {
		s.Add(StepRevocation, attest.Fail, "release %s is dated %s, after the appraisal time %s", r.Key(), r.Created.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		return
	}
	if v.revoked[r.Key()] {
		s.Add(StepRevocation, attest.Fail, "release %s is revoked by the policy (log.revoked)", r.Key())
		return
	}
	var bad []string
	for i, b := range stapled {
		p, err := ParseProof(b)
		if err != nil {
			bad = append(bad, fmt.Sprintf("revocation proof %d: %v", i+1, err))
			continue
		}
		rv, err := v.VerifyRecord(p.Record)
		if err == nil {
			_, err = v.VerifyProof(p, at)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("revocation proof %d: %v", i+1, err))
			continue
		}
		if rv.Type == TypeRevocation && rv.Revocation.ReleaseID == r.ID && rv.Revocation.Version == r.Version {
			s.Add(StepRevocation, attest.Fail, "release %s was revoked at %s (log entry %d): %s", r.Key(), rv.Revocation.Created.UTC().Format(time.RFC3339), p.Index, rv.Revocation.Reason)
			return
		}
	}
	if len(bad) > 0 {
		s.Add(StepRevocation, attest.Warn, "release %s is not expired, but some stapled revocation proofs do not verify: %s", r.Key(), strings.Join(bad, "; "))
		return
	}
	s.Add(StepRevocation, attest.Pass, "release %s is valid until %s and not revoked by the policy or by any of %d revocation proof(s) given", r.Key(), r.NotAfter.UTC().Format(time.RFC3339), len(stapled))
	switch {
	case v.maxAge > 0:
		ledger.Assume("release.revocation-freshness", fmt.Sprintf("Revocations logged after checkpoint %d are not known offline; the policy's max_checkpoint_age (%s) bounds how old its cosignatures may be, and sworn monitor shows later revocations.", size, v.maxAge))
	case len(stapled) == 0:
		ledger.Assume("release.revocation-unchecked", fmt.Sprintf("Revocations after checkpoint %d are not checked: no revocation proof was given and the policy sets no log.max_checkpoint_age, so a revoked release keeps verifying with an old proof.", size))
	default:
		ledger.Assume("release.revocation-freshness", fmt.Sprintf("Revocations logged after checkpoint %d and after the given revocation proofs are not known offline; sworn monitor shows them.", size))
	}
}

// match compares a node's claims with a release and reports whether every
// measured claim is allowed and every value the release pins was measured,
// with a sentence saying what was compared.
func match(r *Release, c *Claims) (bool, string) {
	var checked []string
	bad := slices.Clone(c.conflicts)
	if c.SNPMeasurement != nil {
		checked = append(checked, "SNP measurement")
		if !slices.ContainsFunc(r.TEE.SNPMeasurements, func(m HexBytes) bool { return bytes.Equal(m, c.SNPMeasurement) }) {
			bad = append(bad, fmt.Sprintf("SNP measurement %x is not one the release allows", c.SNPMeasurement))
		}
	}
	if c.TDX != nil {
		checked = append(checked, "TDX registers")
		if !slices.ContainsFunc(r.TEE.TDX, func(t TDX) bool { return tdxMatch(t, c.TDX) }) {
			bad = append(bad, fmt.Sprintf("TDX MRTD %x and RTMRs match no register set of the release", c.TDX.MRTD))
		}
	}
	if c.SNPMeasurement == nil && c.TDX == nil && (len(r.TEE.SNPMeasurements) > 0 || len(r.TEE.TDX) > 0) {
		bad = append(bad, "the release pins the CPU TEE's launch measurement, but the node has no CPU TEE claim")
	}
	for _, want := range r.PCRs {
		checked = append(checked, fmt.Sprintf("PCR %s:%d", want.Bank, want.Index))
		found := false
		for _, p := range c.PCRs { // every TPM's value must match
			if p.Bank != want.Bank || p.Index != want.Index {
				continue
			}
			found = true
			if !bytes.Equal(p.Digest, want.Digest) {
				bad = append(bad, fmt.Sprintf("PCR %s:%d is %x; the release expects %x", want.Bank, want.Index, p.Digest, want.Digest))
			}
		}
		switch {
		case c.PCRs == nil:
			bad = append(bad, fmt.Sprintf("the release pins PCR %s:%d, but the node has no TPM claims", want.Bank, want.Index))
		case !found:
			bad = append(bad, fmt.Sprintf("PCR %s:%d is not among the node's quoted PCRs", want.Bank, want.Index))
		}
	}
	for _, set := range []struct {
		what  string
		got   map[string]string
		allow []Component
	}{{"component", c.Components, r.Components}, {"container", c.Containers, r.Containers}} {
		for _, name := range sortedKeys(set.got) {
			checked = append(checked, set.what+" "+name)
			i := slices.IndexFunc(set.allow, func(x Component) bool { return x.Name == name })
			if i < 0 {
				bad = append(bad, fmt.Sprintf("%s %s is not part of the release", set.what, name))
			} else if set.allow[i].Digest != set.got[name] {
				bad = append(bad, fmt.Sprintf("%s %s is %s; the release has %s", set.what, name, set.got[name], set.allow[i].Digest))
			}
		}
		for _, pin := range set.allow {
			if _, ok := set.got[pin.Name]; !ok {
				bad = append(bad, fmt.Sprintf("the release pins %s %s (%s), but no evidence of the node measured it", set.what, pin.Name, pin.Digest))
			}
		}
	}
	if n := r.GPU.Count; n != nil {
		checked = append(checked, "GPU count")
		if c.GPUs != *n {
			bad = append(bad, fmt.Sprintf("the release's machine shape has %d GPU(s); the node's evidence has %d", *n, c.GPUs))
		}
	} else if c.GPUs == 0 && (len(r.GPU.DriverVersions) > 0 || len(r.GPU.VBIOSVersions) > 0) {
		bad = append(bad, "the release names GPU driver or VBIOS versions, but the node's evidence has no GPU")
	}
	for _, l := range []struct {
		what  string
		got   []string
		allow []string
	}{{"GPU driver", c.GPUDrivers, r.GPU.DriverVersions}, {"GPU VBIOS", c.GPUVBIOS, r.GPU.VBIOSVersions}} {
		for _, g := range l.got {
			checked = append(checked, l.what+" "+g)
			if !slices.Contains(l.allow, g) {
				bad = append(bad, fmt.Sprintf("%s %s is not allowed by the release", l.what, g))
			}
		}
	}
	for _, m := range c.Models {
		checked = append(checked, "model "+m)
		if !slices.ContainsFunc(r.Models, func(x Component) bool { return x.Digest == m }) {
			bad = append(bad, fmt.Sprintf("model %s is not one the release may serve", m))
		}
	}
	switch {
	case len(bad) > 0:
		return false, fmt.Sprintf("node does not match release %s: %s", r.Key(), strings.Join(bad, "; "))
	case len(checked) == 0:
		return false, fmt.Sprintf("no node claim could be compared with release %s: the evidence measured nothing the release speaks of", r.Key())
	}
	return true, fmt.Sprintf("node matches release %s: %s", r.Key(), strings.Join(checked, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func tdxMatch(t TDX, c *TDXClaims) bool {
	if !bytes.Equal(t.MRTD, c.MRTD) {
		return false
	}
	for i, want := range t.RTMRs {
		if len(want) > 0 && !bytes.Equal(want, c.RTMRs[i]) {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
