package tdx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/pcs"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/verifycache"
	"github.com/sworn-dev/sworn/policy"
)

// Verifier appraises TDX evidence. It caches parsed certificates, CRLs,
// collateral and attestation keys, the quote frames go-tdx-guest agreed on
// (see Quote.frame), and verified chains and collateral signatures (within
// their validity), so that appraising many quotes from the same platforms
// costs little more than the two ECDSA P-256 verifications no cache
// skips: the quote's and the QE report's. It is safe for concurrent use.
type Verifier struct {
	production *Roots
	simulated  *Roots

	passed verifycache.Passed
	certs  verifycache.Parsed[x509.Certificate]
	crls   verifycache.Parsed[x509.RevocationList]
	exts   verifycache.Parsed[pcs.PckExtensions]
	colls  verifycache.Parsed[ParsedCollateral]
	chains verifycache.Parsed[[]*x509.Certificate]
	frames frames
	keys   verifycache.Parsed[ecdsa.PublicKey]
}

// NewVerifier returns a Verifier that trusts Intel's production root, and
// sworn's simulated root only when a policy says roots.intel: simulated.
func NewVerifier() *Verifier {
	return &Verifier{
		production: ProductionRoots(), simulated: SimulatedRoots(),
	}
}

// Kind returns attest.KindTDX.
func (v *Verifier) Kind() string { return attest.KindTDX }

// Verify appraises one "tdx" bundle entry.
func (v *Verifier) Verify(_ context.Context, e attest.Entry, env *attest.Env) *attest.Section {
	a, err := v.parseEvidence(e.Body)
	if err != nil {
		s := &attest.Section{Kind: attest.KindTDX}
		s.Add("tdx.parse", attest.Fail, "%v", err)
		return s
	}
	return v.Appraise(a, env)
}

// Appraise appraises parsed evidence. What the quote shows is entered in
// the ledger as verified only when its signatures and PCK chain passed.
func (v *Verifier) Appraise(a *Attestation, env *attest.Env) *attest.Section {
	return attest.Vouched(env, func(env *attest.Env) *attest.Section { return v.appraise(a, env) }, "tdx.signature", "tdx.chain")
}

// tdxPolicy returns the policy's TDX section, or the defaults.
func tdxPolicy(p *policy.Policy) *policy.TDX {
	if p == nil {
		return &policy.TDX{}
	}
	return &p.TDX
}

func (v *Verifier) appraise(a *Attestation, env *attest.Env) *attest.Section {
	s := &attest.Section{Kind: attest.KindTDX, Steps: make([]attest.Step, 0, 12)}
	q := a.Quote
	coll := "no collateral"
	if a.Collateral != nil {
		coll = "DCAP collateral stapled"
	}
	pad := ""
	if q.Trailing > 0 {
		pad = fmt.Sprintf(" (%d unsigned bytes after the signature data ignored)", q.Trailing)
	}
	s.Add("tdx.parse", attest.Pass, "TDX quote v%d (%s body), %d-certificate PCK chain, %s%s", q.Version, bodyName(q), len(a.PCK), coll, pad)

	roots := v.production
	if env.Policy != nil && env.Policy.Roots.Intel == policy.Simulated {
		roots = v.simulated
		env.Simulated = true
		env.Ledger.Assume("tdx.simulated", "SIMULATED: the Intel roots are sworn's simulated roots; this proves nothing about real hardware.")
	}

	v.checkSignatures(s, a)
	ch := v.checkChain(a, roots, env.At)
	if ch.err != nil {
		s.Add("tdx.chain", attest.Fail, "%v", ch.err)
	} else {
		s.Add("tdx.chain", attest.Pass, "%s → %s → %s (pinned, SPKI %s…), valid at %s; FMSPC %s", a.PCK[0].Subject.CommonName, ch.ca.Subject.CommonName, ch.root.Subject.CommonName, SPKIHash(ch.root)[:16], attest.FormatAt(env.At), strings.ToLower(ch.ext.FMSPC))
		env.Ledger.Verify("tdx.quote", "The CPU quote was made by an Intel TDX platform whose Quoting Enclave Intel certified (PCK chain to the Intel SGX Root CA).")
		env.Ledger.Assume("intel.root", "Intel's TDX module, the SEAM loader, the Quoting Enclave and the CPU's protection of their keys are honest (the Intel root of trust).")
	}
	cl := v.checkCollateral(s, a, ch, roots, env)
	v.checkRevocation(s, a, ch, cl, env)
	tcb := checkTCB(s, a, ch, cl, env)
	qe := checkQE(s, a, cl, env)
	checkBinding(s, a, env)
	checkAttributes(s, a, env.Policy)
	checkMeasurements(s, a, env)
	replayed := checkReplay(s, a, env)
	s.Claims = claims(a, ch.ext, tcb, qe)
	for k, v := range replayed {
		s.Claims[k] = v
	}
	return s
}

func bodyName(q *Quote) string {
	if q.BodyType == bodyTypeTD15 {
		return "TDX 1.5"
	}
	return "TDX 1.0"
}

// checkSignatures checks what binds the quote to the PCK key: the quote
// signature by the attestation key, the QE report signature by the PCK
// key, and the QE report's REPORTDATA = SHA-256(attestation key ‖ QE
// authentication data). They are checked whatever the chain says, so
// that any change to the signed bytes fails here. The attestation key,
// which a Quoting Enclave keeps across quotes, is decoded once.
func (v *Verifier) checkSignatures(s *attest.Section, a *Attestation) {
	const id = "tdx.signature"
	q := a.Quote
	ak, err := v.keys.Get(q.AttestationKey[:], p256Key)
	if err != nil {
		s.Add(id, attest.Fail, "the quote's attestation key is not a P-256 point: %v", err)
		return
	}
	if !verifyRaw(ak, q.Signed, q.Signature[:]) {
		s.Add(id, attest.Fail, "the quote signature does not verify under its attestation key: the header or TD body was altered, or the signature is not the Quoting Enclave's")
		return
	}
	pck, ok := a.PCK[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pck.Curve != elliptic.P256() {
		s.Add(id, attest.Fail, "the PCK certificate's key is not ECDSA P-256")
		return
	}
	if !verifyRaw(pck, q.QEReportRaw, q.QEReportSignature[:]) {
		s.Add(id, attest.Fail, "the QE report signature does not verify under the PCK certificate's key: the QE report was altered, or the PCK chain belongs to another platform")
		return
	}
	h := sha256.New()
	h.Write(q.AttestationKey[:])
	h.Write(q.QEAuthData)
	want := h.Sum(nil)
	rd := q.QEReport.ReportData
	if !bytes.Equal(rd[:32], want) || !allZero(rd[32:]) {
		s.Add(id, attest.Fail, "the QE report does not certify the quote's attestation key: its REPORTDATA is not SHA-256(attestation key ‖ QE authentication data) followed by zeros")
		return
	}
	s.Add(id, attest.Pass, "quote signature verifies under the attestation key, which the QE report (signed by the PCK key) certifies (ECDSA P-256)")
}

// p256Key decodes a raw x ‖ y P-256 public key, which must be a point on
// the curve.
func p256Key(raw []byte) (*ecdsa.PublicKey, error) {
	if len(raw) != attestKeySize {
		return nil, fmt.Errorf("%d bytes, want %d", len(raw), attestKeySize)
	}
	var point [1 + attestKeySize]byte
	point[0] = 4 // uncompressed
	copy(point[1:], raw)
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:])
}

// verifyRaw checks a raw r ‖ s ECDSA signature over SHA-256(msg).
func verifyRaw(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != sigSize {
		return false
	}
	d := sha256.Sum256(msg)
	return ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

// chain is the outcome of the PCK chain check.
type chain struct {
	err      error
	ca, root *x509.Certificate
	ext      *pcs.PckExtensions
}

func (v *Verifier) checkChain(a *Attestation, roots *Roots, at time.Time) chain {
	fail := func(format string, args ...any) chain { return chain{err: fmt.Errorf(format, args...)} }
	if len(a.PCK) != 3 {
		return fail("the quote's PCK chain holds %d certificates; want 3 (PCK certificate, PCK Platform or Processor CA, Intel SGX Root CA)", len(a.PCK))
	}
	leaf, ca, root := a.PCK[0], a.PCK[1], a.PCK[2]
	if !strings.HasPrefix(leaf.Subject.CommonName, "Intel SGX PCK Certificate") || leaf.IsCA {
		return fail("the quote's PCK chain starts with %q, not an Intel SGX PCK Certificate", leaf.Subject.CommonName)
	}
	if cn := ca.Subject.CommonName; !strings.HasPrefix(cn, "Intel SGX PCK Platform CA") && !strings.HasPrefix(cn, "Intel SGX PCK Processor CA") {
		return fail("the quote's PCK certificate is issued by %q, not Intel's PCK Platform or Processor CA", cn)
	}
	if err := v.verifyChain([]*x509.Certificate{leaf, ca, root}, roots, at, "the PCK certificate"); err != nil {
		return chain{err: err}
	}
	ext, err := v.extensions(leaf)
	if err != nil {
		return fail("the PCK certificate's SGX extensions: %v", err)
	}
	return chain{ca: ca, root: root, ext: ext}
}

// verifyChain checks that chain (leaf first, root last) is valid at at and
// ends in a trusted root; what names the leaf in messages.
func (v *Verifier) verifyChain(certs []*x509.Certificate, roots *Roots, at time.Time, what string) error {
	root := certs[len(certs)-1]
	if !roots.Trusts(root) {
		if !roots.Simulated && SimulatedRoots().Trusts(root) {
			return fmt.Errorf("%s is signed under sworn's SIMULATED Intel root, which this policy does not trust (roots.intel is production)", what)
		}
		if roots.Simulated && ProductionRoots().Trusts(root) {
			return fmt.Errorf("%s chains to Intel's production root, but this policy trusts only sworn's simulated root (roots.intel: simulated)", what)
		}
		return fmt.Errorf("%s chains to %q (SPKI %s…), which is not a pinned Intel root", what, root.Subject.CommonName, SPKIHash(root)[:16])
	}
	h := sha256.New()
	h.Write([]byte("chain"))
	for _, c := range certs {
		h.Write([]byte{0})
		h.Write(c.Raw)
	}
	key := [32]byte(h.Sum(nil))
	if v.passed.Holds(key, at) {
		return nil
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("%s: the root %s is not self-signed: %v", what, root.Subject.CommonName, err)
	}
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	pool.AddCert(root)
	for _, c := range certs[1 : len(certs)-1] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%s does not chain to %s at %s: %v", what, root.Subject.CommonName, attest.FormatAt(at), err)
	}
	// Each certificate must be issued by the next, in order.
	for i := 0; i+1 < len(certs); i++ {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return fmt.Errorf("%s: certificate %d (%s) is not signed by the next one (%s): %v", what, i+1, certs[i].Subject.CommonName, certs[i+1].Subject.CommonName, err)
		}
	}
	v.passed.Store(key, verifycache.ChainWindow(certs...))
	return nil
}

// collateral is the outcome of the collateral check.
type collateral struct {
	ok bool
	c  *ParsedCollateral
}

func (v *Verifier) checkCollateral(s *attest.Section, a *Attestation, ch chain, roots *Roots, env *attest.Env) collateral {
	const id = "tdx.collateral"
	c := a.Collateral
	if c == nil {
		if env.Policy == nil {
			s.Add(id, attest.Skip, "no collateral given (pass --collateral with the TCB info, QE identity and CRLs from Intel PCS), so the TCB status is unknown")
		} else {
			s.Add(id, attest.Fail, "no DCAP collateral is stapled, so the platform's TCB status and the Quoting Enclave's identity cannot be checked; staple the TCB info, QE identity and CRLs from Intel PCS")
		}
		env.Ledger.Assume("tdx.no-collateral", "The platform's TCB is current and its Quoting Enclave is Intel's: no DCAP collateral was checked.")
		return collateral{}
	}
	fail := func(format string, args ...any) collateral {
		s.Add(id, attest.Fail, format, args...)
		return collateral{}
	}
	if len(c.PCKCRLChain) != 2 {
		return fail("the PCK CRL's issuer chain holds %d certificates; want the PCK CA and the root", len(c.PCKCRLChain))
	}
	// Every signature of the collateral depends on its bytes alone (and on
	// which roots are trusted): checked once, then cached by its digest
	// for as long as every issuer chain is valid.
	piece := "signatures under production roots"
	if roots.Simulated {
		piece = "signatures under simulated roots"
	}
	signed := c.pieceKey(piece)
	if !v.passed.Holds(signed, env.At) {
		if err := v.signedBy(c.TCBInfoRaw, c.TCBInfoSignature, c.TCBInfoChain, c.pieceKey("tcb_info"), roots, env.At, "the TCB info"); err != nil {
			return fail("%v", err)
		}
		if err := v.signedBy(c.QEIdentityRaw, c.QEIdentitySignature, c.QEIdentityChain, c.pieceKey("qe_identity"), roots, env.At, "the QE identity"); err != nil {
			return fail("%v", err)
		}
		if err := v.verifyChain(c.PCKCRLChain, roots, env.At, "the PCK CRL's issuer"); err != nil {
			return fail("%v", err)
		}
		if !v.crlSignedBy(c.PCKCRL, c.PCKCRLChain[0]) {
			return fail("the PCK CRL is not signed by its issuer chain's %s", c.PCKCRLChain[0].Subject.CommonName)
		}
		root := c.PCKCRLChain[len(c.PCKCRLChain)-1]
		if !v.crlSignedBy(c.RootCRL, root) {
			return fail("the root CA CRL is not signed by %s", root.Subject.CommonName)
		}
		v.passed.Store(signed, verifycache.ChainWindow(slices.Concat(c.TCBInfoChain, c.QEIdentityChain, c.PCKCRLChain)...))
	}
	ti, qi := &c.TCBInfo, &c.QEIdentity
	if ti.ID != "TDX" || ti.Version != 3 {
		return fail("the TCB info is %q version %d; want the TDX TCB info, version 3 (Intel PCS /tdx/certification/v4/tcb)", ti.ID, ti.Version)
	}
	if qi.ID != "TD_QE" || qi.Version != 2 {
		return fail("the QE identity is %q version %d; want the TD_QE identity, version 2 (Intel PCS /tdx/certification/v4/qe/identity)", qi.ID, qi.Version)
	}
	for _, w := range []struct {
		what       string
		from, till time.Time
	}{{"TCB info", ti.IssueDate, ti.NextUpdate}, {"QE identity", qi.IssueDate, qi.NextUpdate},
		{"PCK CRL", c.PCKCRL.ThisUpdate, c.PCKCRL.NextUpdate}, {"root CA CRL", c.RootCRL.ThisUpdate, c.RootCRL.NextUpdate}} {
		if env.At.Before(w.from) {
			return fail("the %s was issued at %s, after the appraisal time %s: the collateral is newer than the time it is judged at", w.what, attest.FormatAt(w.from), attest.FormatAt(env.At))
		}
		if w.till.IsZero() || !env.At.Before(w.till) {
			return fail("the %s expired: its nextUpdate was %s, before the appraisal time %s; fetch fresh collateral from Intel PCS", w.what, attest.FormatAt(w.till), attest.FormatAt(env.At))
		}
	}
	if ch.err != nil {
		return fail("the collateral verifies, but the PCK chain did not (see tdx.chain), so it cannot be matched to this platform")
	}
	if !strings.EqualFold(ti.Fmspc, ch.ext.FMSPC) {
		return fail("the TCB info is for FMSPC %s, but the PCK certificate is for FMSPC %s: fetch the TCB info for this platform", strings.ToLower(ti.Fmspc), strings.ToLower(ch.ext.FMSPC))
	}
	if !strings.EqualFold(ti.PceID, ch.ext.PCEID) {
		return fail("the TCB info is for PCE ID %s, but the PCK certificate is for PCE ID %s", ti.PceID, ch.ext.PCEID)
	}
	if !sameCert(c.PCKCRLChain[0], ch.ca) {
		return fail("the PCK CRL is issued by %s, not by the quote's PCK issuer %s: fetch the CRL of that CA (ca=%s)", c.PCKCRLChain[0].Subject.CommonName, ch.ca.Subject.CommonName, caParam(ch.ca))
	}
	end := slices.MinFunc([]time.Time{ti.NextUpdate, qi.NextUpdate, c.PCKCRL.NextUpdate, c.RootCRL.NextUpdate}, time.Time.Compare)
	s.Add(id, attest.Pass, "TCB info (FMSPC %s, evaluation %d), QE identity and CRLs are signed under the pinned Intel root and fresh at %s (until %s)", strings.ToLower(ti.Fmspc), ti.TcbEvaluationDataNumber, attest.FormatAt(env.At), attest.FormatAt(end))
	env.Ledger.Verify("tdx.collateral", "Intel's current TCB info and QE identity for this platform were checked.")
	return collateral{ok: true, c: c}
}

func sameCert(a, b *x509.Certificate) bool {
	return bytes.Equal(a.RawSubject, b.RawSubject) && bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo)
}

func caParam(ca *x509.Certificate) string {
	if strings.Contains(ca.Subject.CommonName, "Processor") {
		return "processor"
	}
	return "platform"
}

// signedBy checks a TCB info or QE identity: its issuer chain ends in a
// trusted root and is valid at at, and its signer signed body. key
// identifies body, sig and chain together (the cache key of the verified
// signature).
func (v *Verifier) signedBy(body, sig []byte, chain []*x509.Certificate, key [32]byte, roots *Roots, at time.Time, what string) error {
	// Only Intel's TCB Signing key, which the root certifies directly,
	// signs collateral: not a PCK key, which lives in a platform.
	if len(chain) != 2 || chain[0].IsCA || !strings.HasPrefix(chain[0].Subject.CommonName, "Intel SGX TCB Signing") {
		return fmt.Errorf("%s's issuer chain is not Intel's TCB Signing certificate under the root (it starts with %q, %d certificates): only that key signs TCB info and QE identity", what, chain[0].Subject.CommonName, len(chain))
	}
	if err := v.verifyChain(chain, roots, at, what+"'s signer"); err != nil {
		return err
	}
	signer := chain[0]
	if v.passed.Holds(key, at) {
		return nil
	}
	pub, ok := signer.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%s's signer %s does not have an ECDSA P-256 key", what, signer.Subject.CommonName)
	}
	if !verifyRaw(pub, body, sig) {
		return fmt.Errorf("%s's signature does not verify under %s: it was altered, or belongs to other collateral", what, signer.Subject.CommonName)
	}
	v.passed.Store(key, verifycache.Forever)
	return nil
}

func (v *Verifier) crlSignedBy(crl *x509.RevocationList, issuer *x509.Certificate) bool {
	key := sha256.Sum256(bytes.Join([][]byte{[]byte("crl"), crl.Raw, issuer.Raw}, []byte{0}))
	if v.passed.Holds(key, time.Time{}) {
		return true
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return false
	}
	v.passed.Store(key, verifycache.Forever)
	return true
}

func (v *Verifier) checkRevocation(s *attest.Section, a *Attestation, ch chain, cl collateral, env *attest.Env) {
	const id = "tdx.revocation"
	tp := tdxPolicy(env.Policy)
	if tp.SkipRevocation {
		s.AddOptional(id, attest.Skip, "the policy turns the CRL check off")
		env.Ledger.Assume("tdx.no-revocation", "Intel has not revoked the platform's PCK certificate or its CA: revocation was not checked.")
		return
	}
	if !cl.ok {
		if a.Collateral == nil && env.Policy == nil {
			s.Add(id, attest.Skip, "no collateral given, so no CRL to check the PCK certificate against")
		} else {
			s.Add(id, attest.Fail, "the CRLs could not be used (see tdx.collateral), so revocation of the PCK certificate is unknown")
		}
		env.Ledger.Assume("tdx.no-revocation", "Intel has not revoked the platform's PCK certificate or its CA: revocation was not checked.")
		return
	}
	c := cl.c
	check := func(crl *x509.RevocationList, certs ...*x509.Certificate) string {
		for _, rc := range crl.RevokedCertificateEntries {
			for _, cert := range certs {
				if rc.SerialNumber != nil && rc.SerialNumber.Cmp(cert.SerialNumber) == 0 {
					return fmt.Sprintf("%s (serial %x) was revoked by Intel at %s", cert.Subject.CommonName, cert.SerialNumber, attest.FormatAt(rc.RevocationTime))
				}
			}
		}
		return ""
	}
	if msg := check(c.PCKCRL, a.PCK[0]); msg != "" {
		s.Add(id, attest.Fail, "%s; the platform's key is no longer trusted", msg)
		return
	}
	signers := []*x509.Certificate{ch.ca, c.TCBInfoChain[0], c.QEIdentityChain[0]}
	if msg := check(c.RootCRL, signers...); msg != "" {
		s.Add(id, attest.Fail, "%s", msg)
		return
	}
	s.Add(id, attest.Pass, "the PCK CRL (%d entries) does not list the PCK certificate, and the root CA CRL (%d entries) lists neither %s nor the collateral signers", len(c.PCKCRL.RevokedCertificateEntries), len(c.RootCRL.RevokedCertificateEntries), ch.ca.Subject.CommonName)
	env.Ledger.Verify("tdx.revocation", "Intel's current CRLs revoke neither the platform's PCK certificate nor its CA.")
}

// checkBinding compares REPORTDATA with the binding; for an Azure TDX VM,
// REPORTDATA with the HCL runtime data, and its user-data with the binding.
func checkBinding(s *attest.Section, a *Attestation, env *attest.Env) {
	const id = "tdx.binding"
	rd := a.Quote.Body.ReportData[:]
	if a.HCL != nil {
		checkHCLBinding(s, a, env)
		return
	}
	if !env.ExpectBinding() {
		s.Add(id, attest.Skip, "no expected REPORTDATA was given (--report-data)")
		return
	}
	if !bytes.Equal(rd, env.Binding[:]) {
		s.Add(id, attest.Fail, "REPORTDATA is %s, not the expected %s: the quote belongs to other keys or another nonce", shortHex(rd), shortHex(env.Binding[:]))
		return
	}
	s.Add(id, attest.Pass, "REPORTDATA equals the expected %s", shortHex(env.Binding[:]))
	env.Ledger.Verify("tdx.binding", "The CPU quote is bound to this node's keys and freshness.")
}

// TDREPORT offsets (TDX module ABI, TDREPORT_STRUCT): REPORTMACSTRUCT's
// REPORTDATA, and TDINFO's MRTD and RTMRs.
const (
	tdReportDataOff = 128
	tdInfoMRTDOff   = 512 + 16
	tdInfoRTMROff   = 512 + 208
)

func checkHCLBinding(s *attest.Section, a *Attestation, env *attest.Env) {
	const id = "tdx.binding"
	b := &a.Quote.Body
	h := a.HCL
	if err := h.CheckBinding(b.ReportData[:]); err != nil {
		s.Add(id, attest.Fail, "the quote does not bind the HCL runtime data: %v", err)
		return
	}
	td := h.Report
	same := bytes.Equal(td[tdReportDataOff:tdReportDataOff+64], b.ReportData[:]) && bytes.Equal(td[tdInfoMRTDOff:tdInfoMRTDOff+48], b.MRTD[:])
	for i := range b.RTMR {
		off := tdInfoRTMROff + 48*i
		same = same && bytes.Equal(td[off:off+48], b.RTMR[i][:])
	}
	if !same {
		s.Add(id, attest.Fail, "the HCL report's TDREPORT is not the quoted one: its REPORTDATA, MRTD or RTMRs differ from the quote's")
		return
	}
	env.Ledger.Verify("tdx.hcl", "The vTPM key in the Azure HCL runtime data is bound to the TD quote.")
	env.Ledger.Assume("azure.paravisor", "Azure's paravisor (HCL) in the TD is honest: it wrote the runtime data and runs the vTPM.")
	if !env.ExpectBinding() {
		s.Add(id, attest.Skip, "HCL runtime data matches REPORTDATA, but no expected value was given to compare with its user-data")
		return
	}
	ud, err := h.UserData()
	if err != nil {
		s.Add(id, attest.Fail, "%v", err)
		return
	}
	if !bytes.Equal(ud, env.Binding[:]) {
		s.Add(id, attest.Fail, "HCL runtime data matches REPORTDATA, but its user-data %s is not the expected %s", shortHex(ud), shortHex(env.Binding[:]))
		return
	}
	s.Add(id, attest.Pass, "HCL runtime data matches REPORTDATA, and its user-data is the expected %s", shortHex(env.Binding[:]))
	env.Ledger.Verify("tdx.binding", "The CPU quote is bound to this node's keys and freshness.")
}

// checkAttributes checks the TD attributes: DEBUG is always refused (the
// host could then read and change the TD's memory); the others by policy.
func checkAttributes(s *attest.Section, a *Attestation, p *policy.Policy) {
	const id = "tdx.policy"
	b := &a.Quote.Body
	attr := b.Attributes()
	if attr&AttrDebug != 0 {
		s.Add(id, attest.Fail, "the TD is a DEBUG TD (TD attributes %s): the host can read and change its memory; it is never trusted", hex.EncodeToString(b.TDAttributes[:]))
		return
	}
	if p == nil {
		s.Add(id, attest.Skip, "TD attributes %s (not DEBUG); no policy given, so SEPT_VE_DISABLE, XFAM and TEE_TCB_SVN are not checked", hex.EncodeToString(b.TDAttributes[:]))
		return
	}
	tp := &p.TDX
	var bad []string
	if attr&AttrSEPTVEDisable == 0 && !tp.AllowSEPTVE {
		bad = append(bad, "SEPT_VE_DISABLE is not set (the host can inject #VE on EPT violations); set tdx.allow_sept_ve to accept it")
	}
	if attr&AttrMigratable != 0 && !tp.AllowMigratable {
		bad = append(bad, "the TD is MIGRATABLE; set tdx.allow_migratable to accept it")
	}
	if attr&AttrPerfmon != 0 && !tp.AllowPerfmon {
		bad = append(bad, "the TD may use PERFMON; set tdx.allow_perfmon to accept it")
	}
	if len(tp.XFAM) > 0 && !slices.ContainsFunc(tp.XFAM, func(x policy.HexBytes) bool { return bytes.Equal(x, b.XFAM[:]) }) {
		bad = append(bad, fmt.Sprintf("XFAM %s is not among the %d the policy allows", hex.EncodeToString(b.XFAM[:]), len(tp.XFAM)))
	}
	if tp.MinTEETCBSVN != nil {
		for i := range b.TEETCBSVN {
			if b.TEETCBSVN[i] < tp.MinTEETCBSVN[i] {
				bad = append(bad, fmt.Sprintf("TEE_TCB_SVN %s is below the floor %s at byte %d", hex.EncodeToString(b.TEETCBSVN[:]), hex.EncodeToString(tp.MinTEETCBSVN), i))
				break
			}
		}
	}
	if len(bad) > 0 {
		s.Add(id, attest.Fail, "%s", strings.Join(bad, "; "))
		return
	}
	s.Add(id, attest.Pass, "TD attributes %s: not DEBUG, SEPT_VE_DISABLE %s; XFAM %s; TEE_TCB_SVN %s", hex.EncodeToString(b.TDAttributes[:]), onOff(attr&AttrSEPTVEDisable != 0), hex.EncodeToString(b.XFAM[:]), hex.EncodeToString(b.TEETCBSVN[:]))
}

// checkMeasurements compares MRTD, the RTMRs and the owner registers with
// the policy.
func checkMeasurements(s *attest.Section, a *Attestation, env *attest.Env) {
	const id = "tdx.measurements"
	b := &a.Quote.Body
	if env.Policy == nil {
		s.Add(id, attest.Skip, "no policy given, so MRTD %s and the RTMRs are not checked", hex.EncodeToString(b.MRTD[:]))
		env.Ledger.Assume("tdx.measurements.unchecked", "The TD's firmware and boot measurements were not compared with an allow-list.")
		return
	}
	tp := &env.Policy.TDX
	var checked, bad []string
	lists := []struct {
		name string
		got  []byte
		want []policy.HexBytes
	}{{"MRTD", b.MRTD[:], tp.MRTD}, {"RTMR0", b.RTMR[0][:], tp.RTMR0}, {"RTMR1", b.RTMR[1][:], tp.RTMR1}, {"RTMR2", b.RTMR[2][:], tp.RTMR2}, {"RTMR3", b.RTMR[3][:], tp.RTMR3}}
	for _, l := range lists {
		if len(l.want) == 0 {
			continue
		}
		checked = append(checked, l.name)
		if !slices.ContainsFunc(l.want, func(m policy.HexBytes) bool { return bytes.Equal(m, l.got) }) {
			bad = append(bad, fmt.Sprintf("%s %s is not among the %d the policy allows", l.name, hex.EncodeToString(l.got), len(l.want)))
		}
	}
	for _, r := range []struct {
		name string
		got  []byte
		want policy.HexBytes
	}{{"MRCONFIGID", b.MRCONFIGID[:], tp.MRConfigID}, {"MROWNER", b.MROWNER[:], tp.MROwner}, {"MROWNERCONFIG", b.MROWNERCONFIG[:], tp.MROwnerConfig}} {
		if r.want == nil {
			continue
		}
		checked = append(checked, r.name)
		if !bytes.Equal(r.got, r.want) {
			bad = append(bad, fmt.Sprintf("%s is %s, the policy requires %s", r.name, shortHex(r.got), shortHex(r.want)))
		}
	}
	switch {
	case len(bad) > 0:
		s.Add(id, attest.Fail, "%s", strings.Join(bad, "; "))
	case len(checked) == 0:
		s.Add(id, attest.Skip, "the policy lists no allowed MRTD or RTMRs, so MRTD %s is not checked", hex.EncodeToString(b.MRTD[:]))
		env.Ledger.Assume("tdx.measurements.unchecked", "The TD's firmware and boot measurements were not compared with an allow-list.")
	default:
		s.Add(id, attest.Pass, "%s match the policy", strings.Join(checked, ", "))
		env.Ledger.Verify("tdx.measurements", "The TD's firmware and boot registers are ones the policy allows.")
	}
}

// parseEvidence parses an entry body, reusing earlier parses of the same
// certificates, chains and collateral.
func (v *Verifier) parseEvidence(body []byte) (*Attestation, error) {
	var e Evidence
	if err := attest.UnmarshalCBOR(body, &e); err != nil {
		return nil, fmt.Errorf("TDX evidence is malformed: %v", err)
	}
	return parse(&e, parsers{
		quote: func(raw []byte) (*Quote, error) { return parseQuote(raw, &v.frames) },
		cert:  v.parseCert,
		crl:   v.parseCRL,
		chain: func(pem []byte) ([]*x509.Certificate, error) {
			c, err := v.chains.Get(pem, func(b []byte) (*[]*x509.Certificate, error) {
				c, err := parseChain(b, v.parseCert)
				return &c, err
			})
			if err != nil {
				return nil, err
			}
			return *c, nil
		},
		coll: func(b []byte) (*ParsedCollateral, error) {
			return v.colls.Get(b, func(b []byte) (*ParsedCollateral, error) {
				return parseCollateral(b, v.parseCert, v.parseCRL)
			})
		},
	})
}

// parseCert parses a certificate, reusing an earlier parse of the same bytes.
func (v *Verifier) parseCert(der []byte) (*x509.Certificate, error) {
	return v.certs.Get(der, x509.ParseCertificate)
}

// parseCRL parses a CRL, reusing an earlier parse of the same bytes.
func (v *Verifier) parseCRL(der []byte) (*x509.RevocationList, error) {
	return v.crls.Get(der, x509.ParseRevocationList)
}

// extensions returns the SGX extensions of a PCK certificate.
func (v *Verifier) extensions(c *x509.Certificate) (*pcs.PckExtensions, error) {
	return v.exts.Get(c.Raw, func([]byte) (*pcs.PckExtensions, error) { return pckExtensions(c) })
}

// pckExtensions reads a PCK certificate's SGX extensions with go-tdx-guest,
// which must not panic on bad input.
func pckExtensions(c *x509.Certificate) (ext *pcs.PckExtensions, err error) {
	defer func() {
		if r := recover(); r != nil {
			ext, err = nil, fmt.Errorf("malformed (%v)", r)
		}
	}()
	ext, err = pcs.PckCertificateExtensions(c)
	if err == nil && (len(ext.TCB.CPUSvnComponents) != 16 || len(ext.FMSPC) != 12) {
		err = fmt.Errorf("malformed: %d TCB components and FMSPC %q", len(ext.TCB.CPUSvnComponents), ext.FMSPC)
	}
	return ext, err
}

func onOff(b bool) string {
	if b {
		return "set"
	}
	return "not set"
}

func shortHex(b []byte) string {
	h := hex.EncodeToString(b)
	if len(h) > 32 {
		return h[:32] + "…"
	}
	return h
}
