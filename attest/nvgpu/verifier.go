package nvgpu

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

// Evidence limits.
const (
	maxEvidenceRIMs = 4
	maxCertSize     = 16 << 10
)

// Evidence is the body of an nvgpu bundle entry, encoded as deterministic
// CBOR: the raw report, the device chain, and the stapled collateral.
type Evidence struct {
	// Report is the raw attestation report (SPDM request ‖ response).
	Report []byte `cbor:"1,keyasint"`
	// Certs is the device certificate chain, DER, leaf first, root last.
	Certs [][]byte `cbor:"2,keyasint"`
	// RIMs are the driver and VBIOS RIM documents (XML), in any order.
	RIMs [][]byte `cbor:"3,keyasint,omitempty"`
	// OCSP are DER OCSP responses for the device and RIM chains.
	OCSP [][]byte `cbor:"4,keyasint,omitempty"`
}

// Marshal encodes the evidence as an entry body.
func (e *Evidence) Marshal() ([]byte, error) { return attest.MarshalCBOR(e) }

// ParseEvidence decodes an entry body strictly, with every size bounded.
func ParseEvidence(body []byte) (*Evidence, error) {
	var e Evidence
	if err := attest.UnmarshalCBOR(body, &e); err != nil {
		return nil, fmt.Errorf("GPU evidence is not valid CBOR: %v", err)
	}
	if err := e.checkSizes(); err != nil {
		return nil, err
	}
	return &e, nil
}

// checkSizes bounds every part of decoded evidence.
func (e *Evidence) checkSizes() error {
	switch {
	case len(e.Report) == 0 || len(e.Report) > MaxReportSize:
		return fmt.Errorf("GPU evidence report is %d bytes; it must be 1 to %d", len(e.Report), MaxReportSize)
	case len(e.Certs) == 0 || len(e.Certs) > MaxChainCerts:
		return fmt.Errorf("GPU evidence has %d certificates; it must have 1 to %d", len(e.Certs), MaxChainCerts)
	case len(e.RIMs) > maxEvidenceRIMs:
		return fmt.Errorf("GPU evidence has %d RIMs; at most %d", len(e.RIMs), maxEvidenceRIMs)
	case len(e.OCSP) > MaxOCSPResponses:
		return fmt.Errorf("GPU evidence has %d OCSP responses; at most %d", len(e.OCSP), MaxOCSPResponses)
	}
	for i, c := range e.Certs {
		if len(c) > maxCertSize {
			return fmt.Errorf("GPU evidence certificate %d is %d bytes; at most %d", i, len(c), maxCertSize)
		}
	}
	for i, r := range e.RIMs {
		if len(r) > MaxRIMSize {
			return fmt.Errorf("GPU evidence RIM %d is %d bytes; at most %d", i, len(r), MaxRIMSize)
		}
	}
	for i, o := range e.OCSP {
		if len(o) > MaxOCSPSize {
			return fmt.Errorf("GPU evidence OCSP response %d is %d bytes; at most %d", i, len(o), MaxOCSPSize)
		}
	}
	return nil
}

// DeviceIndex returns N of a device name "gpuN".
func DeviceIndex(device string) (uint32, bool) {
	s, ok := strings.CutPrefix(device, "gpu")
	if !ok || s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint32(n), err == nil
}

// Verifier appraises NVIDIA GPU evidence; it implements attest.Verifier.
type Verifier struct {
	cache *Cache
	nonce []byte
}

// NewVerifier returns a GPU verifier. cache, when not nil, keeps verified
// chains and RIMs between appraisals (share one per process).
func NewVerifier(cache *Cache) *Verifier { return &Verifier{cache: cache} }

// WithNonce returns a verifier that expects this requester nonce instead of
// the one derived from the binding (sworn verify gpu --nonce).
func (v *Verifier) WithNonce(nonce []byte) *Verifier {
	c := *v
	c.nonce = nonce
	return &c
}

// Kind returns attest.KindNVGPU.
func (v *Verifier) Kind() string { return attest.KindNVGPU }

// gpuAppraisal carries one appraisal's state.
type gpuAppraisal struct {
	s     *attest.Section
	env   *attest.Env
	pol   *policy.Policy
	roots Roots
	c     map[string]any
	cache *Cache
}

// Verify appraises one GPU entry. Steps, in order: gpu.parse, gpu.trailing
// (only when there are bytes after the signature), gpu.arch,
// gpu.signature, gpu.chain, gpu.fwid, gpu.nonce, gpu.ocsp, gpu.rim.driver,
// gpu.rim.vbios, gpu.measurements, gpu.policy.
func (v *Verifier) Verify(ctx context.Context, e attest.Entry, env *attest.Env) *attest.Section {
	a := &gpuAppraisal{s: &attest.Section{Kind: attest.KindNVGPU}, env: env, pol: env.Policy, roots: ProductionRoots, c: map[string]any{}, cache: v.cache}
	a.s.Claims = a.c
	if a.pol != nil && a.pol.Roots.NVIDIA == policy.Simulated {
		a.roots = SimulatedRoots()
		env.Simulated = true
	}
	v.verify(a, e)
	return a.s
}

func (v *Verifier) verify(a *gpuAppraisal, e attest.Entry) {
	s, env, c := a.s, a.env, a.c
	at := env.At
	c["x-nvidia-device-type"] = "gpu"

	// 1. Parse.
	ev, err := ParseEvidence(e.Body)
	var rep *Report
	if err == nil {
		rep, err = ParseReport(ev.Report)
		if err != nil {
			err = fmt.Errorf("GPU report: %v", err)
		}
	}
	if err != nil {
		c["x-nvidia-gpu-attestation-report-parsed"] = false
		s.Add("gpu.parse", attest.Fail, "%v; collect the report again with sworn gpu probe or NVML", err)
		return
	}
	op := rep.Response.Opaque
	driver, vbios := op.DriverVersion(), op.VBIOSVersion()
	c["x-nvidia-gpu-attestation-report-parsed"] = true
	c[attest.ClaimGPUDriverVersion] = driver
	c[attest.ClaimGPUVBIOSVersion] = vbios
	c["eat_nonce"] = hex.EncodeToString(rep.Request.Nonce[:])
	if f := op.FWID(); f != nil {
		c["fwid"] = hex.EncodeToString(f)
	}
	if m := op.Mode(); m != ModeUnknown {
		c["x-nvidia-gpu-mode"] = string(m)
	}
	if p := op.SwitchPDIs(); len(p) > 0 {
		c["x-nvidia-gpu-switch-pdis"] = p
	}
	s.Add("gpu.parse", attest.Pass, "SPDM 1.1 report, %d measurement blocks, %d opaque fields, %d-byte signed part; driver %s, VBIOS %s; %d certificates, %d RIMs, %d OCSP responses",
		len(rep.Response.Blocks), len(rep.Response.Opaque.Fields), rep.SignedLength, driver, vbios, len(ev.Certs), len(ev.RIMs), len(ev.OCSP))
	if rep.Trailing > 0 {
		if a.pol != nil && a.pol.NVGPU.TrailingIsFatal() {
			s.Add("gpu.trailing", attest.Fail, "%d bytes follow the signature; they are not authenticated and the policy makes them fatal", rep.Trailing)
		} else {
			s.Add("gpu.trailing", attest.Warn, "%d bytes follow the signature; they are not authenticated and were ignored (set nvgpu.trailing_bytes: fatal to refuse them)", rep.Trailing)
		}
	}

	// 2. Architecture, and the chain's parse and verification (the
	// signature step needs the leaf, the chain step says whether to trust it).
	certs, chainExp, chainErr := v.cache.verifyChainDER(ev.Certs, a.roots.Device, at)
	if certs == nil {
		s.Add("gpu.arch", attest.Fail, "device certificate chain does not parse: %v", chainErr)
		s.Add("gpu.chain", attest.Fail, "device certificate chain does not parse: %v", chainErr)
		return
	}
	leaf := certs[0]
	arch := ChainArch(leaf)
	repArch := op.Arch()
	switch {
	case arch == ArchUnknown:
		c["x-nvidia-gpu-arch-check"] = false
		s.Add("gpu.arch", attest.Fail, "leaf certificate %q names no supported architecture (Hopper GH100, Blackwell GB1xx/GB20x)", leaf.Subject.CommonName)
	case repArch != ArchUnknown && repArch != arch:
		c["x-nvidia-gpu-arch-check"] = false
		s.Add("gpu.arch", attest.Fail, "the report is from a %s GPU but the certificate chain is %s's (%q): they do not belong together", repArch, arch, leaf.Subject.CommonName)
	default:
		c["x-nvidia-gpu-arch-check"] = true
		c["arch"] = string(arch)
		s.Add("gpu.arch", attest.Pass, "%s (leaf %q, report GPU_INFO agrees)", arch, leaf.Subject.CommonName)
	}
	if len(certs) > 1 {
		c["hwmodel"] = certs[1].Subject.CommonName
	}
	c["ueid"] = leaf.SerialNumber.String()

	// 3. Signature.
	if err := VerifyReportSignature(rep, leaf); err != nil {
		c["x-nvidia-gpu-attestation-report-signature-verified"] = false
		s.Add("gpu.signature", attest.Fail, "%v", err)
	} else {
		c["x-nvidia-gpu-attestation-report-signature-verified"] = true
		s.Add("gpu.signature", attest.Pass, "ECDSA P-384 signature over the %d-byte transcript verifies with the leaf key of %q", rep.SignedLength, leaf.Subject.CommonName)
	}

	// 4. Chain.
	chainClaim := map[string]any{}
	c["x-nvidia-gpu-attestation-report-cert-chain"] = chainClaim
	if chainErr != nil {
		chainClaim["x-nvidia-cert-status"] = "invalid"
		c["x-nvidia-gpu-attestation-report-cert-chain-validated"] = false
		s.Add("gpu.chain", attest.Fail, "device %v", chainErr)
	} else {
		chainClaim["x-nvidia-cert-status"] = "valid"
		chainClaim["x-nvidia-cert-expiration-date"] = chainExp.UTC().Format(time.RFC3339)
		c["x-nvidia-gpu-attestation-report-cert-chain-validated"] = true
		s.Add("gpu.chain", attest.Pass, "%d certificates from %q to the pinned %sNVIDIA device root (SPKI %s…), valid at %s", len(certs), leaf.Subject.CommonName, simLabel(a.roots), a.roots.Device.String()[:16], attest.FormatAt(at))
		env.Ledger.Verify("nvgpu.chain", "Each GPU's attestation key is certified by NVIDIA's device identity root.")
	}

	// 5. FWID.
	if f := op.FWID(); f == nil {
		s.AddOptional("gpu.fwid", attest.Skip, "the report carries no FWID (drivers before 550 omit it); nothing to compare with the leaf certificate")
	} else if arch == ArchUnknown {
		s.Add("gpu.fwid", attest.Fail, "cannot find the leaf FWID of an unknown architecture")
	} else if lf, err := LeafFWID(leaf, arch); err != nil {
		c["x-nvidia-gpu-attestation-report-cert-chain-fwid-match"] = false
		s.Add("gpu.fwid", attest.Fail, "%v", err)
	} else if subtle.ConstantTimeCompare(lf, f) != 1 {
		c["x-nvidia-gpu-attestation-report-cert-chain-fwid-match"] = false
		s.Add("gpu.fwid", attest.Fail, "report FWID %x differs from the leaf certificate's %x: the report and the chain are from different firmware", f, lf)
	} else {
		c["x-nvidia-gpu-attestation-report-cert-chain-fwid-match"] = true
		s.Add("gpu.fwid", attest.Pass, "report FWID equals the leaf certificate's FWID %x…", f[:8])
	}

	// 6. Nonce.
	v.checkNonce(a, rep, e.Device)

	// 7. RIMs (parsed and verified before OCSP, which covers their chains).
	rims := v.verifyRIMs(a, ev, rep, arch)

	// 8. OCSP.
	a.checkOCSP(ev, certs, chainErr == nil, rims)

	// 9. Measurements.
	a.checkMeasurements(rep, rims)

	// 10. Policy.
	a.checkPolicy(driver, vbios)
}

func simLabel(r Roots) string {
	if r.Simulated {
		return "SIMULATED "
	}
	return ""
}

func (v *Verifier) checkNonce(a *gpuAppraisal, rep *Report, device string) {
	s, env := a.s, a.env
	got := rep.Request.Nonce[:]
	var want []byte
	var from string
	switch {
	case v.nonce != nil:
		want, from = v.nonce, "the given --nonce"
	case env.ExpectBinding():
		idx, ok := DeviceIndex(device)
		if !ok {
			s.Add("gpu.nonce", attest.Fail, "device name %q is not gpuN, so its binding nonce cannot be derived", device)
			return
		}
		n := Nonce(env.Binding, idx)
		want, from = n[:], fmt.Sprintf("SHA-256(binding ‖ %d)", idx)
	default:
		s.Add("gpu.nonce", attest.Skip, "no binding or --nonce given: the report's nonce %x was not checked, so it may be a replay", got)
		env.Ledger.Assume("nvgpu.fresh", "The GPU report is assumed fresh: its nonce was not checked.")
		return
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		a.c["x-nvidia-gpu-attestation-report-nonce-match"] = false
		s.Add("gpu.nonce", attest.Fail, "report nonce %x is not %s = %x: the report answers another request (replayed or from another node)", got, from, want)
		return
	}
	a.c["x-nvidia-gpu-attestation-report-nonce-match"] = true
	if !authenticated(s) {
		// The nonce matches, but in bytes nothing vouches for: it proves
		// nothing, and the ledger does not say it does.
		s.Add("gpu.nonce", attest.Pass, "report nonce equals %s, but the report is not authenticated (see gpu.signature and gpu.chain), so this proves nothing", from)
		return
	}
	s.Add("gpu.nonce", attest.Pass, "report nonce equals %s", from)
	if v.nonce == nil {
		env.Ledger.Verify("nvgpu.binding", "Each GPU report answers a nonce derived from the node's binding.")
	}
}

// verifiedRIM is one RIM of the entry and its outcome.
type verifiedRIM struct {
	rim *RIM
	exp time.Time
	err error
}

type rimSet struct {
	driver, vbios *verifiedRIM
}

// isVBIOSVersion reports whether v looks like a VBIOS version
// (96.00.9F.00.01) rather than a driver version (550.90.07).
func isVBIOSVersion(v string) bool {
	f := strings.Split(v, ".")
	if len(f) != 5 {
		return false
	}
	for _, x := range f {
		if len(x) != 2 || !isHexDigit(x[0]) || !isHexDigit(x[1]) {
			return false
		}
	}
	return true
}

// verifyRIMs verifies every RIM of the entry, then matches each to the
// report's driver or VBIOS version. A RIM that fails, or that is for
// another version, fails its step.
func (v *Verifier) verifyRIMs(a *gpuAppraisal, ev *Evidence, rep *Report, arch Arch) rimSet {
	s, op := a.s, rep.Response.Opaque
	var set rimSet
	driver, vbios := op.DriverVersion(), op.VBIOSVersion()
	ids := map[string]string{"driver": DriverRIMID(op, arch), "vbios": VBIOSRIMID(op)}
	failed := map[string]bool{}
	for i, doc := range ev.RIMs {
		r, exp, err := v.cache.verifyRIM(doc, a.roots.RIM, a.env.At)
		if r == nil {
			s.Add("gpu.rim.driver", attest.Fail, "RIM %d does not parse: %v", i, err)
			failed["driver"] = true
			continue
		}
		which, want := "driver", driver
		if isVBIOSVersion(r.ColloquialVersion) {
			which, want = "vbios", vbios
		}
		vr := &verifiedRIM{rim: r, exp: exp, err: err}
		switch {
		case err != nil:
			a.rimStep(which, ids[which], vr, arch)
			failed[which] = true
		case !strings.EqualFold(r.ColloquialVersion, want):
			a.c["x-nvidia-gpu-"+which+"-rim-version-match"] = false
			s.Add("gpu.rim."+which, attest.Fail, "the %s RIM given is for version %s, but the GPU reports %s; fetch %s", which, r.ColloquialVersion, want, ids[which])
			failed[which] = true
		case (which == "driver" && set.driver != nil) || (which == "vbios" && set.vbios != nil):
			s.Add("gpu.rim."+which, attest.Fail, "two %s RIMs were given; give one", which)
			failed[which] = true
		case which == "driver":
			set.driver = vr
		default:
			set.vbios = vr
		}
	}
	if !failed["driver"] {
		a.rimStep("driver", ids["driver"], set.driver, arch)
	}
	if !failed["vbios"] {
		a.rimStep("vbios", ids["vbios"], set.vbios, arch)
	}
	if failed["driver"] {
		set.driver = nil
	}
	if failed["vbios"] {
		set.vbios = nil
	}
	return set
}

func (a *gpuAppraisal) rimStep(which, rimID string, vr *verifiedRIM, arch Arch) {
	s, c := a.s, a.c
	id := "gpu.rim." + which
	pfx := "x-nvidia-gpu-" + which + "-rim-"
	c[pfx+"fetched"] = vr != nil
	if vr == nil {
		if a.pol != nil && a.pol.NVGPU.RIMsOptional {
			s.AddOptional(id, attest.Skip, "no %s RIM (%s) given; the policy makes RIMs optional", which, rimID)
			a.env.Ledger.Assume("nvgpu.rims", "GPU firmware and driver measurements were not compared with NVIDIA's signed reference values.")
		} else {
			s.Add(id, attest.Skip, "no %s RIM given: fetch %s (sworn gpu rims fetch) and pass it with --rim", which, rimID)
		}
		return
	}
	r := vr.rim
	c[pfx+"version-match"] = true
	chain := map[string]any{}
	c[pfx+"cert-chain"] = chain
	if vr.err != nil {
		c[pfx+"signature-verified"] = false
		chain["x-nvidia-cert-status"] = "invalid"
		if strings.Contains(vr.err.Error(), "expired") || strings.Contains(vr.err.Error(), "not yet valid") {
			chain["x-nvidia-cert-status"] = "expired"
		}
		s.Add(id, attest.Fail, "%s RIM %s: %v", which, rimID, vr.err)
		return
	}
	if !productMatches(r.Product, arch) {
		vr.err = fmt.Errorf("RIM product %q does not match %s", r.Product, arch)
		s.Add(id, attest.Fail, "%s RIM %s is for product %q, not a %s GPU", which, rimID, r.Product, arch)
		return
	}
	c[pfx+"signature-verified"] = true
	c[pfx+"measurements-available"] = true
	chain["x-nvidia-cert-status"] = "valid"
	chain["x-nvidia-cert-expiration-date"] = vr.exp.UTC().Format(time.RFC3339)
	if which == "driver" && r.FirmwareManufacturerID != "" {
		c["oemid"] = r.FirmwareManufacturerID
	}
	s.Add(id, attest.Pass, "%s RIM %s (version %s) has a valid XML signature by %q, chained to the pinned %sNVIDIA RIM root, valid at %s",
		which, rimID, r.ColloquialVersion, r.Certs[0].Subject.CommonName, simLabel(a.roots), attest.FormatAt(a.env.At))
	a.env.Ledger.Verify("nvgpu.rims", "GPU reference measurements are signed by NVIDIA's RIM root.")
}

func productMatches(product string, arch Arch) bool {
	switch arch {
	case Hopper:
		return strings.HasPrefix(product, "GH1")
	case Blackwell:
		return strings.HasPrefix(product, "GB")
	}
	return false
}

func (a *gpuAppraisal) checkOCSP(ev *Evidence, certs []*x509.Certificate, chainOK bool, rims rimSet) {
	s, pol := a.s, a.pol
	type check struct {
		chain string
		st    OCSPStatus
	}
	var checks []check
	// Device chain: every certificate but the per-boot leaf and the root.
	for i := 1; i+1 < len(certs); i++ {
		checks = append(checks, check{"device", a.cache.verifyOCSP(ev.OCSP, certs[i], certs[i+1], a.env.At)})
	}
	for _, r := range []struct {
		name string
		vr   *verifiedRIM
	}{{"driver RIM", rims.driver}, {"VBIOS RIM", rims.vbios}} {
		if r.vr == nil || r.vr.err != nil {
			continue
		}
		rc := r.vr.rim.Certs
		for i := 0; i+1 < len(rc); i++ {
			checks = append(checks, check{r.name, a.cache.verifyOCSP(ev.OCSP, rc[i], rc[i+1], a.env.At)})
		}
	}
	var missing, bad, notAllowed, warned, good []string
	for _, ch := range checks {
		name := fmt.Sprintf("%s %q", ch.chain, ch.st.Cert.Subject.CommonName)
		switch {
		case ch.st.Err != nil:
			bad = append(bad, ch.st.Err.Error())
		case ch.st.State == "":
			missing = append(missing, name)
		case pol == nil && ch.st.State != policy.OCSPGood,
			pol != nil && !pol.NVGPU.OCSPAllowed(ch.st.State):
			notAllowed = append(notAllowed, name+" is "+ch.st.State)
		case ch.st.State == policy.OCSPRevoked || ch.st.State == policy.OCSPHold:
			warned = append(warned, name+" is "+ch.st.State)
		default:
			good = append(good, name+" "+ch.st.State)
		}
	}
	ocspClaim := "good"
	defer func() { a.c["x-nvidia-gpu-ocsp-status"] = ocspClaim }()
	switch {
	case len(bad) > 0:
		ocspClaim = "invalid"
		s.Add("gpu.ocsp", attest.Fail, "%s", strings.Join(bad, "; "))
	case len(notAllowed) > 0:
		ocspClaim = "revoked-or-unknown"
		s.Add("gpu.ocsp", attest.Fail, "%s; the policy does not allow it (nvgpu.ocsp_allow)", strings.Join(notAllowed, "; "))
	case len(missing) > 0 && pol != nil && pol.NVGPU.SkipRevocation:
		ocspClaim = "unchecked"
		s.AddOptional("gpu.ocsp", attest.Skip, "no stapled OCSP response for %s; the policy skips revocation checks", strings.Join(missing, ", "))
		a.env.Ledger.Assume("nvgpu.revocation", "The GPU and RIM certificates were not checked for revocation.")
	case len(missing) > 0:
		ocspClaim = "unchecked"
		s.Add("gpu.ocsp", attest.Skip, "no stapled OCSP response for %s: revocation was not checked (staple responses, or set nvgpu.skip_revocation)", strings.Join(missing, ", "))
		a.env.Ledger.Assume("nvgpu.revocation", "The GPU and RIM certificates were not checked for revocation.")
	case len(warned) > 0:
		ocspClaim = "revoked"
		s.Add("gpu.ocsp", attest.Warn, "%s; the policy allows it, but it is never silent", strings.Join(warned, "; "))
	case !chainOK:
		s.Add("gpu.ocsp", attest.Skip, "the device chain did not verify, so its revocation status means nothing")
	default:
		s.Add("gpu.ocsp", attest.Pass, "%d certificates have valid stapled OCSP responses: %s", len(good), strings.Join(good, ", "))
		a.env.Ledger.Verify("nvgpu.revocation", "No GPU or RIM certificate was revoked, per NVIDIA's signed OCSP responses.")
	}
}

func (a *gpuAppraisal) checkMeasurements(rep *Report, rims rimSet) {
	s, c := a.s, a.c
	var drv, vb *RIM
	if rims.driver != nil && rims.driver.err == nil {
		drv = rims.driver.rim
	}
	if rims.vbios != nil && rims.vbios.err == nil {
		vb = rims.vbios.rim
	}
	if drv == nil && vb == nil {
		c["measres"] = "fail"
		s.Add("gpu.measurements", attest.Skip, "no verified RIM, so the %d measurements were not compared with reference values", len(rep.Response.Blocks))
		return
	}
	cmp, err := CompareMeasurements(rep, drv, vb)
	if err != nil {
		c["measres"] = "fail"
		c["x-nvidia-gpu-vbios-index-no-conflict"] = !strings.Contains(err.Error(), "active in both")
		s.Add("gpu.measurements", attest.Fail, "%v", err)
		return
	}
	c["x-nvidia-gpu-vbios-index-no-conflict"] = true
	if len(cmp.Mismatches) > 0 {
		c["measres"] = "fail"
		var recs []map[string]any
		var idx []string
		for _, m := range cmp.Mismatches {
			idx = append(idx, strconv.Itoa(m.Index))
			recs = append(recs, map[string]any{"index": m.Index, "source": strings.ToUpper(m.Source), "runtime": hex.EncodeToString(m.Runtime)})
		}
		c["x-nvidia-mismatch-measurement-records"] = recs
		s.Add("gpu.measurements", attest.Fail, "%d of %d reference measurements do not match, at RIM index %s; first: %s", len(cmp.Mismatches), cmp.Compared, strings.Join(idx, ", "), cmp.Mismatches[0])
		return
	}
	if drv == nil || vb == nil {
		c["measres"] = "fail"
		s.Add("gpu.measurements", attest.Skip, "%d reference measurements match, but the %s RIM is missing or invalid, so part of the GPU is unchecked", cmp.Compared, map[bool]string{true: "driver", false: "VBIOS"}[drv == nil])
		return
	}
	c["measres"] = "success"
	c["secboot"] = true
	c["dbgstat"] = "disabled"
	skipped := ""
	if len(cmp.Skipped) > 0 {
		skipped = fmt.Sprintf(" (index %v skipped: NVDEC0 disabled)", cmp.Skipped)
	}
	s.Add("gpu.measurements", attest.Pass, "all %d active reference measurements of the driver and VBIOS RIMs match the report%s", cmp.Compared, skipped)
	a.env.Ledger.Verify("nvgpu.measurements", "Each GPU runs firmware and a driver whose measurements NVIDIA signed.")
	a.env.Ledger.Assume("nvgpu.cc-mode", "A GPU's CC mode and debug state are not in its signed report; like NVIDIA, sworn infers them from all reference measurements matching.")
}

func (a *gpuAppraisal) checkPolicy(driver, vbios string) {
	s := a.s
	if a.pol == nil {
		s.Add("gpu.policy", attest.Skip, "no policy given: driver and VBIOS floors were not checked")
		return
	}
	n := a.pol.NVGPU
	var fails, notes []string
	if n.MinDriver != "" {
		if cmp, err := policy.CompareVersions(driver, n.MinDriver, 10); err != nil {
			fails = append(fails, fmt.Sprintf("driver version %q cannot be compared: %v", driver, err))
		} else if cmp < 0 {
			fails = append(fails, fmt.Sprintf("driver %s is below the floor %s", driver, n.MinDriver))
		} else {
			notes = append(notes, fmt.Sprintf("driver %s ≥ %s", driver, n.MinDriver))
		}
	}
	if n.MinVBIOS != "" {
		if cmp, err := policy.CompareVersions(vbios, n.MinVBIOS, 16); err != nil {
			fails = append(fails, fmt.Sprintf("VBIOS version %q cannot be compared: %v", vbios, err))
		} else if cmp < 0 {
			fails = append(fails, fmt.Sprintf("VBIOS %s is below the floor %s", vbios, n.MinVBIOS))
		} else {
			notes = append(notes, fmt.Sprintf("VBIOS %s ≥ %s", vbios, n.MinVBIOS))
		}
	}
	switch {
	case len(fails) > 0:
		s.Add("gpu.policy", attest.Fail, "%s", strings.Join(fails, "; "))
	case len(notes) == 0:
		s.Add("gpu.policy", attest.Pass, "the policy sets no driver or VBIOS floor")
	default:
		s.Add("gpu.policy", attest.Pass, "%s", strings.Join(notes, "; "))
	}
}

// authenticated reports whether the section's report signature and device
// chain both verified.
func authenticated(s *attest.Section) bool {
	for _, id := range []string{"gpu.signature", "gpu.chain"} {
		if st := s.Step(id); st == nil || st.Status != attest.Pass {
			return false
		}
	}
	return true
}
