package snp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/verifycache"
	"github.com/sworn-dev/sworn/policy"
)

// Verifier appraises SEV-SNP evidence. It caches verified certificate
// chains and CRL signatures (by content hash, within their validity), so
// that appraising many reports from the same chips costs little more than
// the report signatures. It is safe for concurrent use.
type Verifier struct {
	production *Roots
	simulated  *Roots

	passed verifycache.Passed
	certs  verifycache.Parsed[x509.Certificate]
	crls   verifycache.Parsed[x509.RevocationList]
	exts   verifycache.Parsed[kds.Extensions]
}

// NewVerifier returns a Verifier that trusts AMD's production roots, and
// sworn's simulated roots only when a policy says roots.amd: simulated.
func NewVerifier() *Verifier {
	return &Verifier{production: ProductionRoots(), simulated: SimulatedRoots()}
}

// Kind returns attest.KindSNP.
func (v *Verifier) Kind() string { return attest.KindSNP }

// Verify appraises one "snp" bundle entry.
func (v *Verifier) Verify(_ context.Context, e attest.Entry, env *attest.Env) *attest.Section {
	a, err := parseEvidence(e.Body, v.parseCert, v.parseCRL)
	if err != nil {
		s := &attest.Section{Kind: attest.KindSNP}
		s.Add("snp.parse", attest.Fail, "%v", err)
		return s
	}
	return v.Appraise(a, env)
}

// Appraise appraises parsed evidence. What the report shows is entered in
// the ledger as verified only when its signature and chain passed: a
// report nobody vouches for proves nothing.
func (v *Verifier) Appraise(a *Attestation, env *attest.Env) *attest.Section {
	return attest.Vouched(env, func(env *attest.Env) *attest.Section { return v.appraise(a, env) }, "snp.signature", "snp.chain")
}

func (v *Verifier) appraise(a *Attestation, env *attest.Env) *attest.Section {
	s := &attest.Section{Kind: attest.KindSNP}
	r := a.Report
	form := "raw"
	if a.HCL != nil {
		form = "Azure HCL"
	}
	if a.SVSMManifest != nil {
		form = "SVSM vTPM (EK manifest)"
	}
	s.Add("snp.parse", attest.Pass, "%s report, version %d, VMPL %d, %d certificate(s), %d CRL(s)", form, r.GetVersion(), r.GetVmpl(), len(a.Certs), len(a.CRLs))

	roots := v.production
	if env.Policy != nil && env.Policy.Roots.AMD == policy.Simulated {
		roots = v.simulated
		env.Simulated = true
		env.Ledger.Assume("snp.simulated", "SIMULATED: the AMD roots are sworn's simulated roots; this proves nothing about real hardware.")
	}

	info, infoErr := abi.ParseSignerInfo(r.GetSignerInfo())
	ek := findEndorsementKey(a.Certs, info.SigningKey)
	var exts *kds.Extensions
	var extsErr error
	if ek != nil {
		exts, extsErr = v.extensions(ek, info.SigningKey)
	}
	ch := v.checkChain(a, info, infoErr, ek, exts, extsErr, roots, env.At)

	// The signature is checked against the presented key whatever the chain
	// says: any change to the signed bytes must fail here.
	switch {
	case ek == nil:
		s.Add("snp.signature", attest.Fail, "no %s certificate in the evidence to check the signature with; add it (from the extended report or AMD KDS)", signerName(info.SigningKey))
	default:
		if err := verify.SnpReportSignature(a.Raw, ek); err != nil {
			s.Add("snp.signature", attest.Fail, "report signature does not verify under the %s: %v", signerName(info.SigningKey), err)
		} else {
			s.Add("snp.signature", attest.Pass, "report signature verifies under the %s (ECDSA P-384)", signerName(info.SigningKey))
		}
	}
	if ch.err != nil {
		s.Add("snp.chain", attest.Fail, "%v", ch.err)
	} else {
		s.Add("snp.chain", attest.Pass, "%s → %s → %s (pinned, SPKI %s…), valid at %s; certificate matches the report's chip and TCB", signerName(info.SigningKey), ch.ica.Subject.CommonName, ch.ark.Subject.CommonName, SPKIHash(ch.ark)[:16], attest.FormatAt(env.At))
		env.Ledger.Verify("snp.report", fmt.Sprintf("The CPU report was signed by an AMD %s chip whose key AMD certified (%s).", ch.product, ch.ark.Subject.CommonName))
		env.Ledger.Assume("amd.root", "AMD's SEV-SNP firmware and the chip's protection of its keys are honest (the AMD root of trust).")
	}
	v.checkRevocation(s, a, ch, env)
	checkBinding(s, a, env)
	if a.HCL != nil && s.Step("snp.binding").Status != attest.Fail {
		env.Ledger.Assume("azure.paravisor", "Azure's paravisor (HCL) at VMPL0 is honest: it wrote the runtime data and runs the vTPM.")
	}
	if a.SVSMManifest != nil && s.Step("snp.binding").Status != attest.Fail {
		env.Ledger.Assume(LedgerSVSMHonest, "The SVSM at VMPL0 is honest: it reports its own vTPM's EK and keeps the vTPM's keys from the guest OS and the host (its code is what the launch measurement covers).")
	}
	product := ch.product
	if product == "" {
		product = productOf(a, exts)
	}
	checkTCB(s, r.GetReportedTcb(), product, env.Policy)
	checkGuestPolicy(s, a, env.Policy)
	checkMeasurement(s, r.GetMeasurement(), env)
	s.Claims = claims(a, info, product)
	return s
}

// chain is the outcome of the chain check.
type chain struct {
	err      error
	ark, ica *x509.Certificate
	ek       *x509.Certificate
	product  string
}

func (v *Verifier) checkChain(a *Attestation, info abi.SignerInfo, infoErr error, ek *x509.Certificate, exts *kds.Extensions, extsErr error, roots *Roots, at time.Time) chain {
	fail := func(format string, args ...any) chain { return chain{err: fmt.Errorf(format, args...)} }
	if infoErr != nil {
		return fail("report signer info is invalid: %v", infoErr)
	}
	if info.SigningKey != abi.VcekReportSigner && info.SigningKey != abi.VlekReportSigner {
		return fail("report is signed by %v; only VCEK and VLEK signers can be verified", info.SigningKey)
	}
	if ek == nil {
		return fail("no %s certificate in the evidence; add it (from the extended report or AMD KDS)", signerName(info.SigningKey))
	}
	if extsErr != nil {
		return fail("%s certificate extensions: %v", signerName(info.SigningKey), extsErr)
	}
	product := productOf(a, exts)
	pr := roots.line(product)
	if pr == nil {
		return fail("no trusted AMD roots for product line %q (trusted: %s)", product, strings.Join(roots.ProductLines(), ", "))
	}
	ica := pr.ask
	if info.SigningKey == abi.VlekReportSigner {
		ica = pr.asvk
	}
	if ica == nil {
		return fail("no trusted %s intermediate for %s", product, signerName(info.SigningKey))
	}
	for _, c := range a.Certs {
		if c == ek || !c.IsCA {
			continue
		}
		if !c.Equal(pr.ark) && !c.Equal(pr.ask) && (pr.asvk == nil || !c.Equal(pr.asvk)) {
			if !roots.Simulated && SimulatedRoots().contains(c) {
				return fail("the evidence is signed under sworn's SIMULATED AMD roots, which this policy does not trust (roots.amd is production): a simulated root is not trusted")
			}
			return fail("certificate %q in the evidence is not one of the trusted AMD %s roots", c.Subject.CommonName, product)
		}
	}
	key := sha256.Sum256(bytes.Join([][]byte{ek.Raw, ica.Raw, pr.ark.Raw}, nil))
	if !v.passed.Holds(key, at) {
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(pr.ark)
		inter.AddCert(ica)
		if _, err := ek.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fail("%s certificate does not chain to the trusted %s at %s: %v", signerName(info.SigningKey), pr.ark.Subject.CommonName, attest.FormatAt(at), err)
		}
		if pub, ok := ek.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P384() {
			return fail("%s certificate key is not ECDSA P-384", signerName(info.SigningKey))
		}
		v.passed.Store(key, verifycache.ChainWindow(ek, ica, pr.ark))
	}
	if l := kds.ProductLineOfProductName(exts.ProductName); l != product {
		return fail("%s certificate is for product %q, but the report comes from %s", signerName(info.SigningKey), exts.ProductName, product)
	}
	if info.SigningKey == abi.VcekReportSigner && !info.MaskChipKey && !bytes.Equal(exts.HWID, a.Report.GetChipId()) {
		return fail("VCEK is for chip %s…, but the report comes from chip %s…: the certificate belongs to another chip", hex.EncodeToString(exts.HWID)[:16], hex.EncodeToString(a.Report.GetChipId())[:16])
	}
	if uint64(exts.TCBVersion) != a.Report.GetReportedTcb() {
		return fail("%s certificate is for TCB 0x%016x, but the report's REPORTED_TCB is 0x%016x: fetch the certificate for this TCB", signerName(info.SigningKey), uint64(exts.TCBVersion), a.Report.GetReportedTcb())
	}
	return chain{ark: pr.ark, ica: ica, ek: ek, product: product}
}

func (v *Verifier) checkRevocation(s *attest.Section, a *Attestation, ch chain, env *attest.Env) {
	const id = "snp.revocation"
	if env.Policy != nil && env.Policy.SNP.SkipRevocation {
		s.AddOptional(id, attest.Skip, "the policy turns the CRL check off")
		env.Ledger.Assume("snp.no-revocation", "AMD has not revoked the chip's intermediate or endorsement key: revocation was not checked.")
		return
	}
	if len(a.CRLs) == 0 {
		if env.Policy == nil {
			s.Add(id, attest.Skip, "no CRL given (pass --crl with the CRL from AMD KDS)")
		} else {
			s.Add(id, attest.Fail, "no CRL is stapled, so revocation cannot be checked; staple AMD's CRL or set snp.skip_revocation in the policy")
		}
		env.Ledger.Assume("snp.no-revocation", "AMD has not revoked the chip's intermediate or endorsement key: revocation was not checked.")
		return
	}
	if ch.err != nil {
		s.Add(id, attest.Skip, "the certificate chain did not verify (see snp.chain), so there is nothing to check against the CRL")
		return
	}
	var crl *x509.RevocationList
	for _, c := range a.CRLs {
		if v.crlSignedBy(c, ch.ark, env.At) {
			crl = c
			break
		}
	}
	if crl == nil {
		s.Add(id, attest.Fail, "no stapled CRL is signed by %s; fetch the %s CRL from AMD KDS", ch.ark.Subject.CommonName, ch.product)
		return
	}
	if env.At.Before(crl.ThisUpdate) {
		s.Add(id, attest.Fail, "the CRL is not valid until %s (its thisUpdate), after the appraisal time %s", attest.FormatAt(crl.ThisUpdate), attest.FormatAt(env.At))
		return
	}
	if crl.NextUpdate.IsZero() || !env.At.Before(crl.NextUpdate) {
		s.Add(id, attest.Fail, "the CRL is stale: its nextUpdate was %s, before the appraisal time %s; fetch a fresh CRL from AMD KDS (%s)", attest.FormatAt(crl.NextUpdate), attest.FormatAt(env.At), kds.CrlLinkByKey(ch.product, abi.VcekReportSigner))
		return
	}
	for _, rc := range crl.RevokedCertificateEntries {
		for _, c := range []*x509.Certificate{ch.ica, ch.ek} {
			if rc.SerialNumber != nil && rc.SerialNumber.Cmp(c.SerialNumber) == 0 {
				s.Add(id, attest.Fail, "%s (serial %s) was revoked by AMD at %s", c.Subject.CommonName, c.SerialNumber, attest.FormatAt(rc.RevocationTime))
				return
			}
		}
	}
	s.Add(id, attest.Pass, "CRL signed by %s, valid %s to %s, lists neither %s nor %s (%d entries)", ch.ark.Subject.CommonName, attest.FormatAt(crl.ThisUpdate), attest.FormatAt(crl.NextUpdate), ch.ica.Subject.CommonName, ch.ek.Subject.CommonName, len(crl.RevokedCertificateEntries))
	env.Ledger.Verify("snp.revocation", "AMD's current CRL revokes neither the chip's endorsement key nor its intermediate.")
}

func (v *Verifier) crlSignedBy(crl *x509.RevocationList, ark *x509.Certificate, at time.Time) bool {
	key := sha256.Sum256(append(append([]byte("crl"), crl.Raw...), ark.Raw...))
	if v.passed.Holds(key, at) {
		return true
	}
	if err := crl.CheckSignatureFrom(ark); err != nil {
		return false
	}
	// The signature holds forever; freshness is checked on every appraisal.
	v.passed.Store(key, verifycache.Forever)
	return true
}

// parseCert parses a certificate, reusing an earlier parse of the same bytes.
func (v *Verifier) parseCert(der []byte) (*x509.Certificate, error) {
	return v.certs.Get(der, x509.ParseCertificate)
}

// parseCRL parses a CRL, reusing an earlier parse of the same bytes.
func (v *Verifier) parseCRL(der []byte) (*x509.RevocationList, error) {
	return v.crls.Get(der, x509.ParseRevocationList)
}

// Ledger sentence IDs of the SVSM vTPM binding.
const (
	LedgerSVSMBound  = "snp.svsm"
	LedgerSVSMHonest = "svsm.vtpm"
)

// ClaimSVSMEK is the claim that holds the SVSM vTPM's EK public area
// (TPMT_PUBLIC, hex) of a report that carries an SVSM manifest; the TPM
// verifier (tpm.ClaimSVSMEK) trusts it only when snp.binding passed.
const ClaimSVSMEK = "svsm_vtpm_ek"

func checkBinding(s *attest.Section, a *Attestation, env *attest.Env) {
	const id = "snp.binding"
	rd := a.Report.GetReportData()
	if a.SVSMManifest != nil {
		checkSVSMBinding(s, a, env)
		return
	}
	if a.HCL != nil {
		if err := a.HCL.CheckBinding(rd); err != nil {
			s.Add(id, attest.Fail, "%v", err)
			return
		}
		env.Ledger.Verify("snp.hcl", "The vTPM key in the Azure HCL runtime data is bound to the hardware report.")
		if !env.ExpectBinding() {
			s.Add(id, attest.Skip, "HCL runtime data matches REPORT_DATA, but no expected value was given to compare with its user-data")
			return
		}
		ud, err := a.HCL.UserData()
		if err != nil {
			s.Add(id, attest.Fail, "%v", err)
			return
		}
		if !bytes.Equal(ud, env.Binding[:]) {
			s.Add(id, attest.Fail, "HCL runtime data matches REPORT_DATA, but its user-data %s is not the expected %s", shortHex(ud), shortHex(env.Binding[:]))
			return
		}
		s.Add(id, attest.Pass, "HCL runtime data matches REPORT_DATA, and its user-data is the expected %s", shortHex(env.Binding[:]))
		env.Ledger.Verify("snp.binding", "The CPU report is bound to this node's keys and freshness.")
		return
	}
	if !env.ExpectBinding() {
		s.Add(id, attest.Skip, "no expected REPORT_DATA was given (--report-data)")
		return
	}
	if !bytes.Equal(rd, env.Binding[:]) {
		s.Add(id, attest.Fail, "REPORT_DATA is %s, not the expected %s: the report belongs to other keys or another nonce", shortHex(rd), shortHex(env.Binding[:]))
		return
	}
	s.Add(id, attest.Pass, "REPORT_DATA equals the expected %s", shortHex(env.Binding[:]))
	env.Ledger.Verify("snp.binding", "The CPU report is bound to this node's keys and freshness.")
}

// checkSVSMBinding checks an SVSM vTPM attestation: a VMPL0 report whose
// REPORT_DATA is SHA-512(binding ‖ manifest).
func checkSVSMBinding(s *attest.Section, a *Attestation, env *attest.Env) {
	const id = "snp.binding"
	if v := a.Report.GetVmpl(); v != 0 {
		s.Add(id, attest.Fail, "the report carries an SVSM vTPM manifest but comes from VMPL %d, not VMPL0: only the SVSM at VMPL0 can vouch for its vTPM's EK, and a lower-privileged guest could have chosen this one", v)
		return
	}
	if !env.ExpectBinding() {
		s.Add(id, attest.Skip, "VMPL0 SVSM vTPM report, but no expected nonce was given (--report-data), so REPORT_DATA = SHA-512(nonce ‖ manifest) was not checked")
		return
	}
	want := SVSMReportData(env.Binding[:], a.SVSMManifest)
	if rd := a.Report.GetReportData(); !bytes.Equal(rd, want[:]) {
		s.Add(id, attest.Fail, "REPORT_DATA is %s, not SHA-512(binding ‖ SVSM manifest) = %s: the manifest (the vTPM EK) was altered, or the report belongs to other keys or another nonce", shortHex(rd), shortHex(want[:]))
		return
	}
	s.Add(id, attest.Pass, "VMPL0 SVSM report; REPORT_DATA = SHA-512(binding %s ‖ vTPM EK manifest of %d bytes)", shortHex(env.Binding[:]), len(a.SVSMManifest))
	env.Ledger.Verify("snp.binding", "The CPU report is bound to this node's keys and freshness.")
	env.Ledger.Verify(LedgerSVSMBound, "The SVSM vTPM's endorsement key is bound in a VMPL0 SNP report (REPORT_DATA = SHA-512(binding ‖ EK)).")
}

func checkTCB(s *attest.Section, reported uint64, product string, p *policy.Policy) {
	const id = "snp.tcb"
	if p == nil {
		s.Add(id, attest.Skip, "no policy given, so no TCB floor to check")
		return
	}
	got := DecodeTCB(reported, product)
	min := p.SNP.MinTCB
	var low []string
	for _, c := range []struct {
		name     string
		got, min uint8
	}{{"bootloader", got.Bootloader, min.Bootloader}, {"tee", got.TEE, min.TEE}, {"snp", got.SNP, min.SNP}, {"microcode", got.Microcode, min.Microcode}, {"fmc", got.FMC, min.FMC}} {
		if c.got < c.min {
			low = append(low, fmt.Sprintf("%s %d < %d", c.name, c.got, c.min))
		}
	}
	if len(low) > 0 {
		s.Add(id, attest.Fail, "reported TCB is below the policy floor: %s; the host must update its firmware", strings.Join(low, ", "))
		return
	}
	s.Add(id, attest.Pass, "reported TCB (bootloader %d, tee %d, snp %d, microcode %d) meets the floor (%d, %d, %d, %d)", got.Bootloader, got.TEE, got.SNP, got.Microcode, min.Bootloader, min.TEE, min.SNP, min.Microcode)
}

func checkGuestPolicy(s *attest.Section, a *Attestation, p *policy.Policy) {
	const id = "snp.policy"
	if p == nil {
		s.Add(id, attest.Skip, "no policy given, so the guest policy (debug, SMT, migration agent, VMPL) is not checked")
		return
	}
	gp, err := abi.ParseSnpPolicy(a.Report.GetPolicy())
	if err != nil {
		s.Add(id, attest.Fail, "guest policy 0x%x is invalid: %v", a.Report.GetPolicy(), err)
		return
	}
	var bad []string
	if gp.Debug && !p.SNP.AllowDebug {
		bad = append(bad, "the guest policy allows debugging (the host can read guest memory)")
	}
	if gp.MigrateMA && !p.SNP.AllowMigrationAgent {
		bad = append(bad, "the guest policy allows a migration agent")
	}
	if gp.SMT && !p.SNP.AllowSMT {
		bad = append(bad, "the guest policy allows SMT (set snp.allow_smt to accept it)")
	}
	if p.SNP.VMPL != nil && int(a.Report.GetVmpl()) != *p.SNP.VMPL {
		bad = append(bad, fmt.Sprintf("the report comes from VMPL %d, the policy requires VMPL %d", a.Report.GetVmpl(), *p.SNP.VMPL))
	}
	if len(bad) > 0 {
		s.Add(id, attest.Fail, "%s", strings.Join(bad, "; "))
		return
	}
	s.Add(id, attest.Pass, "guest policy 0x%x: debug %s, migration agent %s, SMT %s; VMPL %d", a.Report.GetPolicy(), onOff(gp.Debug), onOff(gp.MigrateMA), onOff(gp.SMT), a.Report.GetVmpl())
}

func checkMeasurement(s *attest.Section, m []byte, env *attest.Env) {
	const id = "snp.measurement"
	p := env.Policy
	switch {
	case p == nil:
		s.Add(id, attest.Skip, "no policy given, so the launch measurement %s is not checked", hex.EncodeToString(m))
	case len(p.SNP.Measurements) == 0:
		s.Add(id, attest.Skip, "the policy lists no allowed launch measurements, so %s is not checked", hex.EncodeToString(m))
	default:
		for _, want := range p.SNP.Measurements {
			if bytes.Equal(m, want) {
				s.Add(id, attest.Pass, "launch measurement %s is allowed by the policy", hex.EncodeToString(m))
				env.Ledger.Verify("snp.measurement", "The guest's launch image is one the policy allows.")
				return
			}
		}
		s.Add(id, attest.Fail, "launch measurement %s is not among the %d the policy allows", hex.EncodeToString(m), len(p.SNP.Measurements))
		return
	}
	env.Ledger.Assume("snp.measurement.unchecked", "The guest's launch image was not compared with an allow-list.")
}

// findEndorsementKey returns the VCEK or VLEK among certs.
func findEndorsementKey(certs []*x509.Certificate, signer abi.ReportSigner) *x509.Certificate {
	want := "SEV-VCEK"
	if signer == abi.VlekReportSigner {
		want = "SEV-VLEK"
	}
	for _, c := range certs {
		if !c.IsCA && c.Subject.CommonName == want {
			return c
		}
	}
	return nil
}

// productOf returns the product line (Milan, Genoa, Turin) from the report
// (version 3 and later carry the CPUID) or else from the endorsement key's
// product-name extension (exts may be nil).
func productOf(a *Attestation, exts *kds.Extensions) string {
	if fms := a.Report.GetCpuid1EaxFms(); fms != 0 {
		return kds.ProductLineFromFms(fms)
	}
	if exts != nil {
		return kds.ProductLineOfProductName(exts.ProductName)
	}
	return "Unknown"
}

// extensions returns the AMD KDS extensions of an endorsement key
// certificate, reusing an earlier parse of the same certificate and signer.
func (v *Verifier) extensions(ek *x509.Certificate, signer abi.ReportSigner) (*kds.Extensions, error) {
	return v.exts.Get(append([]byte{byte(signer)}, ek.Raw...), func([]byte) (*kds.Extensions, error) {
		return kds.CertificateExtensions(ek, signer)
	})
}

func signerName(s abi.ReportSigner) string {
	if s == abi.VlekReportSigner {
		return "VLEK"
	}
	return "VCEK"
}

func onOff(b bool) string {
	if b {
		return "allowed"
	}
	return "off"
}

func shortHex(b []byte) string {
	h := hex.EncodeToString(b)
	if len(h) > 32 {
		return h[:32] + "…"
	}
	return h
}
