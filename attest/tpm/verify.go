package tpm

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

// Step IDs of the TPM appraisal (DESIGN.md).
const (
	StepParse     = "tpm.parse"
	StepQuote     = "tpm.quote"
	StepNonce     = "tpm.nonce"
	StepAK        = "tpm.ak"
	StepBinding   = "tpm.binding"
	StepReplay    = "tpm.replay"
	StepReference = "tpm.reference"
)

// ClaimHCLAKPub is the claim of an Azure CVM's SNP (or TDX) section that
// holds the vTPM AK from the HCL runtime data, as a PEM PKIX public key,
// after the CPU TEE verifier checked that the runtime data is bound to the
// hardware report (snp.binding / tdx.binding passed).
const ClaimHCLAKPub = "hcl_ak_pub"

// ClaimSVSMEK is the claim of an SNP section that holds the SVSM vTPM's EK
// public area (TPMT_PUBLIC, hex), after the SNP verifier checked that the
// report is from VMPL0 and that REPORT_DATA = SHA-512(nonce ‖ EK).
const ClaimSVSMEK = "svsm_vtpm_ek"

// Ledger sentence IDs of the AK trust paths.
const (
	LedgerAKTEE     = "tpm.ak.tee"
	LedgerAKSVSM    = "tpm.ak.svsm"
	LedgerAKCloudCA = "tpm.ak.cloud-ca"
	LedgerAKPinned  = "tpm.ak.pinned"
	LedgerAKUnbound = "tpm.ak.unbound"
	LedgerUnbound   = "tpm.unbound"
	LedgerReplay    = "tpm.replay"
)

// Verifier appraises TPM 2.0 / vTPM evidence. Its zero value is ready to
// use in a bundle appraisal; the fields serve `sworn verify tpm` and
// interactive flows.
type Verifier struct {
	// Nonce, when set, is the expected qualifying data of every quote
	// instead of the bundle's binding (sworn verify tpm --nonce).
	Nonce []byte
	// Activated holds the names (TPM2B_NAME contents, hex) of AKs that
	// completed credential activation against the EK bound in the SVSM
	// report, as recorded by an interactive verifier (see MakeActivation).
	Activated []string
}

// NewVerifier returns a Verifier for bundle appraisal.
func NewVerifier() *Verifier { return &Verifier{} }

// Kind returns attest.KindTPM.
func (v *Verifier) Kind() string { return attest.KindTPM }

// Verify appraises one TPM entry: parse, quote signature/PCR digest/qualifying
// data, AK trust, AK-to-TEE binding, event-log replay and claims, reference
// values. It never panics on bad input.
func (v *Verifier) Verify(ctx context.Context, e attest.Entry, env *attest.Env) (s *attest.Section) {
	s = &attest.Section{Kind: attest.KindTPM}
	defer func() {
		if r := recover(); r != nil {
			s.Add(StepParse, attest.Fail, "TPM evidence %s could not be appraised (internal error: %v); it is not trusted", e.Device, r)
		}
	}()
	ev, err := ParseEvidence(e.Body)
	if err != nil {
		s.Add(StepParse, attest.Fail, "%s: %v", e.Device, err)
		return s
	}
	ak, err := ParseAK(ev.AK)
	if err != nil {
		s.Add(StepParse, attest.Fail, "%s: %v", e.Device, err)
		return s
	}
	var quotes []*ParsedQuote
	for i, q := range ev.Quotes {
		pq, err := ParseQuote(q)
		if err != nil {
			s.Add(StepParse, attest.Fail, "%s: quote %d: %v", e.Device, i, err)
			return s
		}
		quotes = append(quotes, pq)
	}
	s.Add(StepParse, attest.Pass, "%d quote(s), %s AK, event log of %d bytes, %d AK certificate(s)", len(quotes), keyType(ak), len(ev.EventLog), len(ev.AKCerts))
	v.appraise(s, ev, ak, quotes, env)
	return s
}

func keyType(ak *AK) string {
	if strings.Contains(fmt.Sprintf("%T", ak.Key), "rsa") {
		return "RSA"
	}
	return "ECC"
}

func tpmPolicy(env *attest.Env) *policy.TPM {
	if env.Policy == nil {
		return nil
	}
	return &env.Policy.TPM
}

func (v *Verifier) appraise(s *attest.Section, ev *Evidence, ak *AK, quotes []*ParsedQuote, env *attest.Env) {
	tp := tpmPolicy(env)
	allowSHA1 := tp != nil && tp.AllowSHA1
	claims := map[string]any{}
	s.Claims = claims
	fp := ak.Fingerprint()
	claims["ak_fingerprint"] = hex.EncodeToString(fp[:])

	// tpm.quote: signatures, PCR digests, qualifying data, hash strength.
	var expect []byte
	switch {
	case v.Nonce != nil:
		expect = v.Nonce
	case env.ExpectBinding():
		expect = env.Binding[:]
	}
	quoted := PCRs{}
	strong := false
	signer := ""
	for i, pq := range quotes {
		if err := pq.CheckAKScheme(ak); err != nil {
			s.Add(StepQuote, attest.Fail, "quote %d: %v", i, err)
			return
		}
		if err := pq.VerifySignature(ev.Quotes[i].Attest, ak); err != nil {
			s.Add(StepQuote, attest.Fail, "quote %d: %v: it was signed by another key or altered", i, err)
			return
		}
		how, err := pq.CheckSigner(ak, ev.AKParent)
		if err != nil {
			s.Add(StepQuote, attest.Fail, "quote %d: %v", i, err)
			return
		}
		signer = how
		if err := pq.CheckPCRDigest(); err != nil {
			s.Add(StepQuote, attest.Fail, "quote %d: %v", i, err)
			return
		}
		if expect != nil && subtle.ConstantTimeCompare(pq.ExtraData(), expect) != 1 {
			s.Add(StepQuote, attest.Fail, "quote %d answers qualifying data %s, not the expected %s: it is a replay or comes from another session or node", i, hex.EncodeToString(pq.ExtraData()), hex.EncodeToString(expect))
			return
		}
		if !pq.OnlySHA1() {
			strong = true
		}
		for b, m := range pq.Values {
			if b == SHA1 && !allowSHA1 {
				continue
			}
			for idx, val := range m {
				if old, dup := quoted[b][idx]; dup && !bytes.Equal(old, val) {
					s.Add(StepQuote, attest.Fail, "PCR %s:%d has two different quoted values", b, idx)
					return
				}
				quoted.Set(b, idx, val)
			}
		}
	}
	if !strong && !allowSHA1 {
		s.Add(StepQuote, attest.Fail, "every quote is signed with SHA-1 or covers only SHA-1 PCRs; SHA-1 is refused (a policy may accept it with tpm.allow_sha1: true). Quote the SHA-256 or SHA-384 bank with a SHA-256 signing scheme")
		return
	}
	banks := make([]string, 0, len(quoted))
	for b := range quoted {
		banks = append(banks, fmt.Sprintf("%s×%d", b, len(quoted[b])))
	}
	slices.Sort(banks)
	if signer == "" {
		signer = "qualified signer not compared (the AK is a bare public key, not a TPM public area: its TPM attributes are vouched for only by what trusts the AK)"
	} else {
		signer = "qualified signer is the AK, " + signer
	}
	s.Add(StepQuote, attest.Pass, "%d quote(s) signed by the AK (%s); %s; PCR digest matches %s; qualifying data %s", len(quotes), quoteSchemes(quotes), signer, strings.Join(banks, ", "), qdNote(expect, v.Nonce != nil))
	if expect == nil {
		s.Add(StepNonce, attest.Skip, "no binding or nonce was given, so the quote's qualifying data %s was not checked: the quote may be old or replayed", hex.EncodeToString(quotes[0].ExtraData()))
		env.Ledger.Assume("fresh.unchecked", "The bundle is assumed to be fresh: its nonce was not compared with one the verifier chose.")
	}
	claims["qualifying_data"] = hex.EncodeToString(quotes[0].ExtraData())
	claims["pcrs"] = pcrClaims(quoted)

	// tpm.ak and tpm.binding.
	mode, ok := v.akTrust(s, ev, ak, env, tp)
	claims["ak_trust"] = mode
	if !ok {
		return
	}

	// tpm.replay.
	bank := bestBank(quoted)
	var lc *LogClaims
	switch {
	case len(ev.EventLog) == 0:
		if tp != nil && tp.AllowNoEventLog {
			s.AddOptional(StepReplay, attest.Skip, "no event log; the policy allows this, so only the quoted PCR values are known")
		} else {
			s.Add(StepReplay, attest.Skip, "no event log was given: the quoted PCRs cannot be explained event by event")
		}
	default:
		var err error
		var banks []Alg
		lc, banks, err = ReplayBanks(ev.EventLog, quoted)
		if err != nil {
			s.Add(StepReplay, attest.Fail, "%v", err)
			return
		}
		bank = banks[0]
		replayed := make([]string, 0, len(banks))
		for _, b := range banks {
			replayed = append(replayed, fmt.Sprintf("%d %s", len(quoted[b]), b))
		}
		s.Add(StepReplay, attest.Pass, "event log replays to the quoted PCRs of every bank it records (%s; %d events verified); claims from %s", strings.Join(replayed, ", "), lc.Events, bank)
		claims["eventlog_banks"] = bankNames(banks)
		env.Ledger.Verify(LedgerReplay, "The TPM event log replays to the quoted PCR values: every measured boot component listed in it is what was extended.")
		for k, val := range lc.claimMap() {
			claims[k] = val
		}
	}

	// tpm.reference.
	v.reference(s, quoted, bank, lc, tp)
}

func quoteSchemes(qs []*ParsedQuote) string {
	var out []string
	for _, q := range qs {
		name := map[uint16]string{0x14: "RSASSA", 0x16: "RSAPSS", 0x18: "ECDSA"}[uint16(q.Signature.SigAlg)]
		out = append(out, name+"-"+strings.ToUpper(strings.ReplaceAll(q.SigHash.String(), "-", "")))
	}
	return strings.Join(out, ", ")
}

func qdNote(expect []byte, nonce bool) string {
	switch {
	case expect == nil:
		return "not checked"
	case nonce:
		return "equals the given nonce"
	default:
		return "equals the node's binding"
	}
}

func pcrClaims(p PCRs) map[string]any {
	out := map[string]any{}
	for b, m := range p {
		bm := map[string]any{}
		for i, v := range m {
			bm[fmt.Sprint(i)] = hex.EncodeToString(v)
		}
		out[b.String()] = bm
	}
	return out
}

func bankNames(banks []Alg) []string {
	out := make([]string, 0, len(banks))
	for _, b := range banks {
		out = append(out, b.String())
	}
	return out
}

// bestBank picks the strongest quoted bank, whose values the reference
// check reads when there is no event log.
func bestBank(p PCRs) Alg {
	for _, b := range []Alg{SHA384, SHA512, SHA256, SHA1} {
		if len(p[b]) > 0 {
			return b
		}
	}
	return SHA256
}

func (c *LogClaims) claimMap() map[string]any {
	data, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	out := map[string]any{"eventlog_bank": m["bank"], "eventlog_events": m["events"]}
	for k, v := range m {
		switch k {
		case "bank", "events":
		case "notes":
			out["eventlog_notes"] = v
		default:
			out[k] = v
		}
	}
	return out
}

// akTrust establishes trust in the AK and records tpm.ak and tpm.binding.
// It returns the mode and whether the appraisal may go on.
func (v *Verifier) akTrust(s *attest.Section, ev *Evidence, ak *AK, env *attest.Env, tp *policy.TPM) (string, bool) {
	allowed := func(mode string) bool {
		return tp == nil && mode != policy.AKTrustUnbound || tp != nil && tp.AKTrustAllowed(mode)
	}

	// The TEE paths: a failed binding, or a passed one that the policy
	// must accept.
	notBound := func(format string, args ...any) (string, bool) {
		s.Add(StepBinding, attest.Fail, format, args...)
		return policy.AKTrustTEE, false
	}
	bound := func(binding, vtpm, ledgerID, ledger string) (string, bool) {
		s.Add(StepBinding, attest.Pass, "%s", binding)
		if !allowed(policy.AKTrustTEE) {
			s.Add(StepAK, attest.Fail, "the AK is bound to the TEE, but the policy's tpm.ak_trust does not accept %q", policy.AKTrustTEE)
			return policy.AKTrustTEE, false
		}
		s.Add(StepAK, attest.Pass, "AK trusted through the TEE (%s)", vtpm)
		env.Ledger.Verify(ledgerID, ledger)
		return policy.AKTrustTEE, true
	}
	// (a) Bound to the TEE: Azure HCL runtime data.
	if dev, pemKey, ok := teeAK(env); ok {
		blk, _ := pem.Decode([]byte(pemKey))
		var k any
		var err error
		if blk != nil {
			k, err = x509.ParsePKIXPublicKey(blk.Bytes)
		}
		if blk == nil || err != nil {
			return notBound("%s claim %s of %s is not a PEM public key; the vTPM cannot be tied to the TEE", env.Devices[dev].Kind, ClaimHCLAKPub, dev)
		}
		if !ak.Equal(k) {
			return notBound("the quote's AK (sha256:%x) is not the vTPM AK that %s's TEE report vouches for (HCL runtime data): the quote comes from another VM or vTPM", ak.Fingerprint(), dev)
		}
		mode, ok := bound(fmt.Sprintf("the AK is the one in the HCL runtime data bound to %s's TEE report", dev), "Azure CVM paravisor vTPM",
			LedgerAKTEE, "The vTPM's attestation key is bound to the CPU TEE report (Azure HCL runtime data): the vTPM runs inside the TEE, in the paravisor.")
		if ok {
			env.Ledger.Assume("tpm.paravisor", "The Azure paravisor (HCL) that hosts the vTPM is honest.")
		}
		return mode, ok
	}
	// (a') Bound to the TEE: SVSM vTPM (EK in a VMPL0 report, AK by credential activation).
	if dev, ekHex, ok := svsmEK(env); ok {
		ekRaw, _ := hex.DecodeString(ekHex)
		if len(ev.EK) == 0 || !bytes.Equal(ekRaw, ev.EK) {
			return notBound("the evidence's EK is not the SVSM vTPM EK bound in %s's VMPL0 report: the quote comes from another vTPM", dev)
		}
		name, err := AKName(ev.AK)
		if err != nil || !slices.Contains(v.Activated, hex.EncodeToString(name)) {
			return notBound("the AK (name %x) did not complete credential activation against the SVSM vTPM EK; run the activation challenge (MakeActivation) before trusting it", name)
		}
		return bound(fmt.Sprintf("the EK is bound in %s's VMPL0 report and the AK completed credential activation against it", dev), "SVSM vTPM at VMPL0",
			LedgerAKSVSM, "The vTPM runs in the SVSM at VMPL0: its EK is in the SNP report and the AK was proven to share its TPM by credential activation.")
	}

	unbound := func(why string) {
		s.AddOptional(StepBinding, attest.Skip, "the AK is not bound to a TEE report (%s)", why)
		env.Ledger.Assume(LedgerUnbound, "vTPM not bound to the TEE: the hypervisor is trusted.")
	}
	// (b) AK certificate chain to a cloud vTPM CA named in the policy.
	// Without tpm.ca_roots, a stapled chain vouches for nothing: the pinned
	// and unbound checks below decide.
	if len(ev.AKCerts) > 0 && tp == nil {
		s.Add(StepAK, attest.Skip, "the AK has a certificate chain, but no policy names a cloud vTPM CA (tpm.ca_roots) to check it against")
		unbound("no TEE claim for it")
		return policy.AKTrustCloudCA, true
	}
	if len(ev.AKCerts) > 0 && tp.Roots() != nil {
		leaf, err := verifyAKChain(ev.AKCerts, tp.Roots(), env)
		if err != nil {
			s.Add(StepAK, attest.Fail, "AK certificate chain: %v", err)
			return policy.AKTrustCloudCA, false
		}
		if !ak.Equal(leaf.PublicKey) {
			s.Add(StepAK, attest.Fail, "the AK certificate (%s) certifies another key than the quote's AK", leaf.Subject)
			return policy.AKTrustCloudCA, false
		}
		if !allowed(policy.AKTrustCloudCA) {
			s.Add(StepAK, attest.Fail, "the AK is certified by a cloud vTPM CA, but the policy's tpm.ak_trust does not accept %q", policy.AKTrustCloudCA)
			return policy.AKTrustCloudCA, false
		}
		s.Claims["ak_cert_subject"] = leaf.Subject.String()
		s.Claims["ak_cert_issuer"] = leaf.Issuer.String()
		s.Add(StepAK, attest.Pass, "AK certificate %q chains to the policy's cloud vTPM CA (issuer %q) at %s", leaf.Subject, leaf.Issuer, attest.FormatAt(env.At))
		env.Ledger.Assume(LedgerAKCloudCA, fmt.Sprintf("The cloud provider's vTPM CA (%s) certified only keys of genuine vTPMs, and its vTPM reports the boot honestly.", leaf.Issuer))
		unbound("certified by a cloud vTPM CA")
		return policy.AKTrustCloudCA, true
	}
	// (c) AK pinned in the policy.
	if tp != nil && len(tp.PinnedAKs) > 0 {
		fp := ak.Fingerprint()
		if slices.ContainsFunc(tp.PinnedAKs, func(h policy.HexBytes) bool { return bytes.Equal(h, fp[:]) }) {
			if !allowed(policy.AKTrustPinned) {
				s.Add(StepAK, attest.Fail, "the AK is pinned, but the policy's tpm.ak_trust does not accept %q", policy.AKTrustPinned)
				return policy.AKTrustPinned, false
			}
			s.Add(StepAK, attest.Pass, "AK sha256:%x is pinned in the policy", fp)
			env.Ledger.Assume(LedgerAKPinned, "The attestation key pinned in the policy belongs to the TPM of the intended machine.")
			unbound("pinned in the policy")
			return policy.AKTrustPinned, true
		}
	}
	// Nothing vouches for the AK.
	if tp != nil && tp.AllowUnboundAK {
		s.Add(StepAK, attest.Warn, "nothing vouches for AK sha256:%x; the policy allows an unbound AK", ak.Fingerprint())
		env.Ledger.Assume(LedgerAKUnbound, "The TPM attestation key is taken on trust: whoever controls the hypervisor could have forged the quote.")
		unbound("the policy allows an unbound AK")
		return policy.AKTrustUnbound, true
	}
	if tp == nil {
		s.Add(StepAK, attest.Skip, "no policy: nothing vouches for AK sha256:%x (not bound to a TEE, not certified, not pinned); pin it with tpm.pinned_aks", ak.Fingerprint())
		unbound("no TEE claim, certificate or pin")
		return policy.AKTrustUnbound, true
	}
	if dev, step := untrustedCPU(env); dev != "" {
		s.Add(StepAK, attest.Fail, "nothing vouches for AK sha256:%x: %s's report, which would bind it to the TEE, did not verify (%s failed), so it vouches for nothing; the AK is also not certified by a CA in tpm.ca_roots and not in tpm.pinned_aks", ak.Fingerprint(), dev, step)
		return policy.AKTrustUnbound, false
	}
	s.Add(StepAK, attest.Fail, "nothing vouches for AK sha256:%x: it is not bound to a TEE report, not certified by a CA in tpm.ca_roots and not in tpm.pinned_aks", ak.Fingerprint())
	return policy.AKTrustUnbound, false
}

// teeAK returns the Azure HCL AK claim of a CPU TEE section whose binding
// step passed.
func teeAK(env *attest.Env) (string, string, bool) { return boundClaim(env, ClaimHCLAKPub) }

// svsmEK returns the SVSM vTPM EK claim of a CPU TEE section whose binding
// step passed.
func svsmEK(env *attest.Env) (string, string, bool) { return boundClaim(env, ClaimSVSMEK) }

// boundClaim returns the first device (by name) whose claim is a non-empty
// string, whose <kind>.binding step passed and which failed no step, and
// that claim.
func boundClaim(env *attest.Env, claim string) (string, string, bool) {
	names := make([]string, 0, len(env.Devices))
	for n := range env.Devices {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		d := env.Devices[n]
		if d == nil || d.Claims == nil {
			continue
		}
		k, ok := d.Claims[claim].(string)
		if !ok || k == "" {
			continue
		}
		// The claim counts only from a section whose binding passed and
		// that failed nothing: a report whose signature or chain failed
		// vouches for no key.
		if st := d.Step(d.Kind + ".binding"); st == nil || st.Status != attest.Pass || d.FirstFailure() != nil {
			continue
		}
		return n, k, true
	}
	return "", "", false
}

func verifyAKChain(ders [][]byte, roots *x509.CertPool, env *attest.Env) (*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", i, err)
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	// vTPM AK certificates carry vendor extensions (GCE instance info) that
	// Go does not know; they are information, not constraints.
	leaf.UnhandledCriticalExtensions = nil
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: env.At, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%q does not chain to a CA in tpm.ca_roots at %s: %v", leaf.Subject, attest.FormatAt(env.At), err)
	}
	return leaf, nil
}

// reference checks the policy's expected PCR values and components.
func (v *Verifier) reference(s *attest.Section, quoted PCRs, bank Alg, lc *LogClaims, tp *policy.TPM) {
	if tp == nil {
		s.Add(StepReference, attest.Skip, "no policy: the measurements were not compared with reference values")
		return
	}
	if len(tp.PCRs) == 0 && len(tp.Components) == 0 {
		s.Add(StepReference, attest.Skip, "the policy sets no tpm.pcrs or tpm.components: the measurements were not compared with reference values")
		return
	}
	var fails []string
	n := 0
	bankNames := make([]string, 0, len(tp.PCRs))
	for b := range tp.PCRs {
		bankNames = append(bankNames, b)
	}
	slices.Sort(bankNames)
	for _, bn := range bankNames {
		alg, _ := ParseAlg(bn)
		idx := make([]int, 0)
		for i := range tp.PCRs[bn] {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for _, i := range idx {
			want := tp.PCRs[bn][i]
			got, ok := quoted[alg][i]
			n++
			switch {
			case !ok:
				fails = append(fails, fmt.Sprintf("PCR %s:%d is expected but not quoted", bn, i))
			case !bytes.Equal(got, want):
				fails = append(fails, fmt.Sprintf("PCR %s:%d is %x, the policy expects %x", bn, i, got, []byte(want)))
			}
		}
	}
	for _, c := range tp.Components {
		n++
		if lc == nil {
			fails = append(fails, fmt.Sprintf("component %s cannot be checked without an event log", c.Name))
			continue
		}
		var why []string
		matched := ""
		for j, a := range c.Alternatives {
			if msg := matchAlternative(a, quoted, bank, lc); msg != "" {
				why = append(why, fmt.Sprintf("alternative %s: %s", altName(a, j), msg))
				continue
			}
			matched = altName(a, j)
			break
		}
		if matched == "" {
			fails = append(fails, fmt.Sprintf("component %s matches none of its alternatives (%s)", c.Name, strings.Join(why, "; ")))
		}
	}
	if len(fails) > 0 {
		s.Add(StepReference, attest.Fail, "%s", strings.Join(fails, "; "))
		return
	}
	s.Add(StepReference, attest.Pass, "%d reference value(s) of the policy match", n)
}

func altName(a policy.Alternative, j int) string {
	if a.Name != "" {
		return a.Name
	}
	return fmt.Sprint(j)
}

func matchAlternative(a policy.Alternative, quoted PCRs, bank Alg, lc *LogClaims) string {
	if len(a.UKIDigest) > 0 && !slices.Contains(lc.EFIApps, hex.EncodeToString(a.UKIDigest)) {
		return fmt.Sprintf("no EFI application with digest %x was measured into PCR 4 (%s)", []byte(a.UKIDigest), bank)
	}
	if len(a.PCR11) > 0 && !bytes.Equal(quoted[bank][11], a.PCR11) {
		return fmt.Sprintf("PCR %s:11 is %x, not %x", bank, quoted[bank][11], []byte(a.PCR11))
	}
	if a.Cmdline != "" && !lc.cmdlineIs(a.Cmdline) {
		return fmt.Sprintf("kernel command line is %q (and no UKI .cmdline section with that content was measured)", lc.KernelCmdline)
	}
	if a.SecureBoot != nil && (lc.SecureBoot == nil || lc.SecureBoot.Enabled != *a.SecureBoot) {
		return fmt.Sprintf("Secure Boot is not %v", *a.SecureBoot)
	}
	for _, want := range a.DB {
		if lc.SecureBoot == nil || !slices.ContainsFunc(lc.SecureBoot.DB, func(s string) bool { return dbMatches(s, want) }) {
			return fmt.Sprintf("no db certificate matches %q", want)
		}
	}
	if len(a.NodeSoftware) > 0 && !slices.Contains(lc.NodeSoftware, hex.EncodeToString(a.NodeSoftware)) {
		return fmt.Sprintf("node software %x was not measured into PCR %d", []byte(a.NodeSoftware), NodePCR)
	}
	return ""
}

// cmdlineIs reports whether the booted command line is want: as logged
// (GRUB, PCR 12) or as the UKI's .cmdline section measured into PCR 11.
func (c *LogClaims) cmdlineIs(want string) bool {
	if strings.TrimRight(c.KernelCmdline, "\x00") == want {
		return true
	}
	h := c.hash.New()
	h.Write([]byte(want))
	d := hex.EncodeToString(h.Sum(nil))
	return slices.ContainsFunc(c.UKI, func(s UKISection) bool { return s.Name == ".cmdline" && s.Digest == d })
}

// dbMatches reports whether a Secure Boot db entry, as certNames names it
// ("<subject> (sha256:<hex>)" or a well-known name), is the one a policy
// names: by "sha256:<hex>" of its DER, by its exact subject, or by its exact
// well-known name. Substrings never match.
func dbMatches(entry, want string) bool {
	if strings.HasPrefix(want, "sha256:") {
		return strings.HasSuffix(entry, "("+want+")")
	}
	return entry == want || strings.HasPrefix(entry, want+" (sha256:")
}

// untrustedCPU returns a CPU TEE device appraised before the TPM whose
// report failed to verify, and its first failed step.
func untrustedCPU(env *attest.Env) (string, string) {
	for name, d := range env.Devices {
		if d == nil || (d.Kind != attest.KindSNP && d.Kind != attest.KindTDX) {
			continue
		}
		if st := d.FirstFailure(); st != nil {
			return name, st.ID
		}
	}
	return "", ""
}
