package tdx

import (
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

var simAt = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func simPolicy(t testing.TB, extra string) *policy.Policy {
	t.Helper()
	return mustPolicy(t, "version: 1\nroots: {intel: simulated}\ntdx:\n  mrtd: ["+hex.EncodeToString(SimMRTD[:])+"]\n"+extra)
}

var simBinding = func() (b [64]byte) { copy(b[:], "sworn test binding"); return }()

func simEvidence(t testing.TB, o SimQuoteOptions, co SimCollateralOptions) *Evidence {
	t.Helper()
	q, err := NewSimPlatform(1).Quote(o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := SimCollateral(simAt.Add(-24*time.Hour), co)
	if err != nil {
		t.Fatal(err)
	}
	return &Evidence{Quote: q, Collateral: c}
}

func TestTDXSimulatedAffirming(t *testing.T) {
	e := simEvidence(t, SimQuoteOptions{ReportData: simBinding}, SimCollateralOptions{})
	r := appraise(t, e, simAt, simPolicy(t, ""), simBinding[:])
	if r.Verdict != attest.Affirming {
		t.Fatalf("verdict %s; first failure %+v; steps %+v", r.Verdict, r.Devices["cpu0"].FirstFailure(), r.Devices["cpu0"].Steps)
	}
	if !r.Simulated {
		t.Fatal("simulated result not marked simulated")
	}
	// Under production roots the simulated chain is refused at tdx.chain.
	r = appraise(t, e, simAt, mustPolicy(t, "version: 1\ntdx: {}\n"), simBinding[:])
	if s := step(t, r, "tdx.chain"); s.Status != attest.Fail || !strings.Contains(s.Detail, "SIMULATED") {
		t.Fatalf("tdx.chain under production roots: %s %s", s.Status, s.Detail)
	}
	if s := step(t, r, "tdx.collateral"); s.Status != attest.Fail {
		t.Fatalf("tdx.collateral under production roots: %s %s", s.Status, s.Detail)
	}
}

// TestTDXRealUnderSimulatedRoots: a real quote is refused by a policy that
// trusts only the simulated root.
func TestTDXRealUnderSimulatedRoots(t *testing.T) {
	v := realVectors[0]
	r := appraise(t, loadVector(t, v), v.at, mustPolicy(t, "version: 1\nroots: {intel: simulated}\ntdx: {}\n"), nil)
	if s := step(t, r, "tdx.chain"); s.Status != attest.Fail || !strings.Contains(s.Detail, "production root") {
		t.Fatalf("tdx.chain: %s %s", s.Status, s.Detail)
	}
}

// Offsets in a simulated v4 quote.
const (
	offBody      = headerSize
	offSigData   = headerSize + body10Size + 4
	offQEReport  = offSigData + sigSize + attestKeySize + 6
	offQEAuth    = offQEReport + qeReportSize + sigSize + 2
	offMRTD      = offBody + 136
	offTDAttrs   = offBody + 120
	offRTMR3     = offBody + 472
	offSignature = offSigData
)

func flip(b []byte, off int) []byte {
	out := append([]byte{}, b...)
	out[off] ^= 0x01
	return out
}

// TestTDXNegative: every check fails on the input it exists for.
func TestTDXNegative(t *testing.T) {
	good := simEvidence(t, SimQuoteOptions{ReportData: simBinding}, SimCollateralOptions{})
	debug := AttrDebug | AttrSEPTVEDisable
	noSEPT := uint64(0)
	other := NewSimPlatform(1)
	other.PCK = NewSimPlatform(2).PCK // a quote whose PCK chain is another platform's
	otherQuote, err := other.Quote(SimQuoteOptions{ReportData: simBinding})
	if err != nil {
		t.Fatal(err)
	}
	withCollateral := func(o SimCollateralOptions) *Evidence {
		return simEvidence(t, SimQuoteOptions{ReportData: simBinding}, o)
	}
	altered := func(f func(*Collateral)) *Evidence {
		var c Collateral
		if err := strictJSON(good.Collateral, &c); err != nil {
			t.Fatal(err)
		}
		f(&c)
		b, _ := c.Marshal()
		return &Evidence{Quote: good.Quote, Collateral: b}
	}
	for _, tc := range []struct {
		name    string
		e       *Evidence
		policy  string
		binding []byte
		step    string
		status  attest.Status
		want    string
	}{
		{"flipped byte in the body (MRTD)", &Evidence{Quote: flip(good.Quote, offMRTD), Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, "quote signature does not verify"},
		{"flipped byte in the header", &Evidence{Quote: flip(good.Quote, 30), Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, "quote signature does not verify"},
		{"flipped byte in RTMR3", &Evidence{Quote: flip(good.Quote, offRTMR3), Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, "quote signature does not verify"},
		{"flipped byte in the signature", &Evidence{Quote: flip(good.Quote, offSignature+5), Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, "quote signature does not verify"},
		{"flipped byte in the attestation key", &Evidence{Quote: flip(good.Quote, offSignature+sigSize+3), Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, ""},
		{"flipped byte in the QE report", &Evidence{Quote: flip(good.Quote, offQEReport+200), Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, "QE report signature does not verify"},
		{"flipped byte in the QE report signature", &Evidence{Quote: flip(good.Quote, offQEReport+qeReportSize+7), Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, "QE report signature does not verify"},
		{"flipped byte in the QE authentication data", &Evidence{Quote: flip(good.Quote, offQEAuth+1), Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, "does not certify the quote's attestation key"},
		{"quote under another platform's PCK chain", &Evidence{Quote: otherQuote, Collateral: good.Collateral}, "", nil, "tdx.signature", attest.Fail, "QE report signature does not verify"},
		{"collateral for another FMSPC", withCollateral(SimCollateralOptions{FMSPC: "00a06f000000"}), "", nil, "tdx.collateral", attest.Fail, "FMSPC 00a06f000000"},
		{"revoked PCK certificate", withCollateral(SimCollateralOptions{Revoked: []*x509.Certificate{NewSimPlatform(1).PCK}}), "", nil, "tdx.revocation", attest.Fail, "was revoked by Intel"},
		{"revoked PCK CA", withCollateral(SimCollateralOptions{Revoked: []*x509.Certificate{simulatedCA().ca}}), "", nil, "tdx.revocation", attest.Fail, "was revoked by Intel"},
		{"expired collateral", withCollateral(SimCollateralOptions{ValidFor: time.Hour}), "", nil, "tdx.collateral", attest.Fail, "expired"},
		{"altered TCB info", altered(func(c *Collateral) { c.TCBInfo = strings.Replace(c.TCBInfo, "UpToDate", "UpToDatE", 1) }), "", nil, "tdx.parse", attest.Fail, "tcb_info"},
		{"TCB info signed over other bytes", altered(func(c *Collateral) {
			c.TCBInfo = strings.Replace(c.TCBInfo, `"tcbEvaluationDataNumber":17`, `"tcbEvaluationDataNumber":18`, 1)
		}), "", nil, "tdx.collateral", attest.Fail, "TCB info's signature does not verify"},
		{"QE identity signed over other bytes", altered(func(c *Collateral) { c.QEIdentity = strings.Replace(c.QEIdentity, `"isvprodid":2`, `"isvprodid":3`, 1) }), "", nil, "tdx.collateral", attest.Fail, "QE identity's signature does not verify"},
		{"TCB info signed by a PCK key", altered(func(c *Collateral) {
			sig, _ := rawSign(NewSimPlatform(1).pckKey, []byte(c.TCBInfo))
			c.TCBInfoSignature = hex.EncodeToString(sig)
			q, _ := ParseQuote(good.Quote)
			c.TCBInfoIssuerChain = string(q.PCKChain)
		}), "", nil, "tdx.collateral", attest.Fail, "not Intel's TCB Signing certificate"},
		{"QE identity signed by the PCK CA", altered(func(c *Collateral) { c.QEIdentityIssuerChain = c.PCKCRLIssuerChain }), "", nil, "tdx.collateral", attest.Fail, "not Intel's TCB Signing certificate"},
		{"PCK CRL issuer chain of four", altered(func(c *Collateral) { c.PCKCRLIssuerChain = c.TCBInfoIssuerChain + c.PCKCRLIssuerChain }), "", nil, "tdx.collateral", attest.Fail, "PCK CRL's issuer chain holds 4"},
		{"PCK chain led by another Intel certificate", &Evidence{Quote: withChain(t, good.Quote, simulatedCA().tcb, simulatedCA().ca, simulatedCA().root), Collateral: good.Collateral}, "", nil, "tdx.chain", attest.Fail, "not an Intel SGX PCK Certificate"},
		{"PCK chain under another CA", &Evidence{Quote: withChain(t, good.Quote, NewSimPlatform(1).PCK, simulatedCA().tcb, simulatedCA().root), Collateral: good.Collateral}, "", nil, "tdx.chain", attest.Fail, "not Intel's PCK Platform or Processor CA"},
		{"no collateral under a policy", &Evidence{Quote: good.Quote}, "", nil, "tdx.collateral", attest.Fail, "no DCAP collateral"},
		{"TCB OutOfDate refused by default", withCollateral(SimCollateralOptions{Status: "OutOfDate", Advisories: []string{"INTEL-SA-00837"}}), "", nil, "tdx.tcb", attest.Fail, "OutOfDate"},
		{"TCB Revoked refused by default", withCollateral(SimCollateralOptions{Status: "Revoked"}), "", nil, "tdx.tcb", attest.Fail, "Revoked"},
		{"TCB SWHardeningNeeded warns with advisories", withCollateral(SimCollateralOptions{Status: "SWHardeningNeeded", Advisories: []string{"INTEL-SA-00615"}}), "", nil, "tdx.tcb", attest.Warn, "INTEL-SA-00615"},
		{"TCB OutOfDate accepted as a warning by policy", withCollateral(SimCollateralOptions{Status: "OutOfDate"}), "  tcb_status: {OutOfDate: warn}\n", nil, "tdx.tcb", attest.Warn, "OutOfDate"},
		{"TCB ConfigurationNeeded refused by policy", withCollateral(SimCollateralOptions{Status: "ConfigurationNeeded"}), "  tcb_status: {ConfigurationNeeded: refuse}\n", nil, "tdx.tcb", attest.Fail, "ConfigurationNeeded"},
		{"another QE vendor", &Evidence{Quote: resigned(t, good.Quote, func(q []byte) { q[12] ^= 1 }), Collateral: good.Collateral}, "", nil, "tdx.qe", attest.Fail, "QE vendor ID"},
		{"QE OutOfDate refused", withCollateral(SimCollateralOptions{QEStatus: "OutOfDate"}), "", nil, "tdx.qe", attest.Fail, "OutOfDate"},
		{"TEE_TCB_SVN below every level", simEvidence(t, SimQuoteOptions{ReportData: simBinding, TEETCBSVN: &[16]byte{}}, SimCollateralOptions{}), "", nil, "tdx.tcb", attest.Fail, "OutOfDate"},
		{"DEBUG TD", simEvidence(t, SimQuoteOptions{ReportData: simBinding, Attributes: &debug}, SimCollateralOptions{}), "", nil, "tdx.policy", attest.Fail, "DEBUG"},
		{"SEPT_VE_DISABLE not set", simEvidence(t, SimQuoteOptions{ReportData: simBinding, Attributes: &noSEPT}, SimCollateralOptions{}), "", nil, "tdx.policy", attest.Fail, "SEPT_VE_DISABLE"},
		{"SEPT_VE_DISABLE not set, allowed", simEvidence(t, SimQuoteOptions{ReportData: simBinding, Attributes: &noSEPT}, SimCollateralOptions{}), "  allow_sept_ve: true\n", nil, "tdx.policy", attest.Pass, ""},
		{"XFAM not allowed", good, "  xfam: [e700060000000000]\n", nil, "tdx.policy", attest.Fail, "XFAM"},
		{"TEE_TCB_SVN below the policy floor", good, "  min_tee_tcb_svn: 04000000000000000000000000000000\n", nil, "tdx.policy", attest.Fail, "TEE_TCB_SVN"},
		{"wrong REPORTDATA", good, "", []byte("another binding"), "tdx.binding", attest.Fail, "REPORTDATA is"},
		{"MRTD not allowed", simEvidence(t, SimQuoteOptions{ReportData: simBinding, MRTD: &[48]byte{1}}, SimCollateralOptions{}), "", nil, "tdx.measurements", attest.Fail, "MRTD"},
		{"RTMR2 not allowed", good, "  rtmr2: [" + strings.Repeat("11", 48) + "]\n", nil, "tdx.measurements", attest.Fail, "RTMR2"},
		{"MROWNER mismatch", good, "  mr_owner: " + strings.Repeat("22", 48) + "\n", nil, "tdx.measurements", attest.Fail, "MROWNER"},
		{"no event log, and the policy requires one", good, "  require_event_log: true\n", nil, "tdx.replay", attest.Fail, "tdx.require_event_log"},
		{"no event log, optional", good, "", nil, "tdx.replay", attest.Skip, "no CCEL event log"},
		{"revocation skipped by policy", withCollateral(SimCollateralOptions{Revoked: []*x509.Certificate{NewSimPlatform(1).PCK}}), "  skip_revocation: true\n", nil, "tdx.revocation", attest.Skip, "turns the CRL check off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.binding
			if b == nil {
				b = simBinding[:]
			}
			r := appraise(t, tc.e, simAt, simPolicy(t, tc.policy), b)
			if s := r.Devices["cpu0"].Step("tdx.parse"); s != nil && s.Status == attest.Fail && tc.step != "tdx.parse" {
				t.Fatalf("tdx.parse: %s", s.Detail)
			}
			s := step(t, r, tc.step)
			if s.Status != tc.status || !strings.Contains(s.Detail, tc.want) {
				t.Fatalf("%s: %s %q; want %s with %q", tc.step, s.Status, s.Detail, tc.status, tc.want)
			}
			if tc.status == attest.Fail && r.Verdict != attest.Contraindicated {
				t.Fatalf("verdict %s with a failed step", r.Verdict)
			}
			if tc.status == attest.Warn && r.Verdict != attest.Warning {
				t.Fatalf("verdict %s with a warning step", r.Verdict)
			}
		})
	}
}

// TestTDXDebugRefusedWithoutPolicy: DEBUG is refused even with no policy.
func TestTDXDebugRefusedWithoutPolicy(t *testing.T) {
	debug := AttrDebug
	e := simEvidence(t, SimQuoteOptions{Attributes: &debug}, SimCollateralOptions{})
	r := appraise(t, e, simAt, nil, nil)
	if s := step(t, r, "tdx.policy"); s.Status != attest.Fail {
		t.Fatalf("tdx.policy: %s %s", s.Status, s.Detail)
	}
}

// TestTDXAdvisoriesInClaims: advisory IDs reach the claims.
func TestTDXAdvisoriesInClaims(t *testing.T) {
	e := simEvidence(t, SimQuoteOptions{ReportData: simBinding}, SimCollateralOptions{Status: "SWHardeningNeeded", Advisories: []string{"INTEL-SA-00615", "INTEL-SA-00657"}})
	r := appraise(t, e, simAt, simPolicy(t, ""), simBinding[:])
	c := r.Devices["cpu0"].Claims
	if c[ClaimTCBStatus] != "SWHardeningNeeded" || len(c[ClaimAdvisoryIDs].([]string)) != 2 {
		t.Fatalf("claims %v %v", c[ClaimTCBStatus], c[ClaimAdvisoryIDs])
	}
}

// TestTDXParseErrors: malformed quotes are refused with a reason, never a
// panic.
func TestTDXParseErrors(t *testing.T) {
	good := simEvidence(t, SimQuoteOptions{}, SimCollateralOptions{}).Quote
	set16 := func(off int, v uint16) []byte {
		b := append([]byte{}, good...)
		binary.LittleEndian.PutUint16(b[off:], v)
		return b
	}
	set32 := func(off int, v uint32) []byte {
		b := append([]byte{}, good...)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	for _, tc := range []struct {
		name string
		q    []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"version 3", set16(0, 3), "version 3 is not supported"},
		{"SGX quote", set32(4, 0), "TEE type"},
		{"other key type", set16(2, 3), "attestation key type"},
		{"truncated body", good[:300], "truncated"},
		{"signature data too long", set32(headerSize+body10Size, 1<<20), "runs past the end"},
		{"wrong certification data type", set16(offSigData+sigSize+attestKeySize, 5), "type is 5"},
		{"too large", make([]byte, MaxQuoteSize+1), "limit"},
	} {
		if _, err := ParseQuote(tc.q); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
}

// withChain returns the quote with its PCK chain replaced by certs.
func withChain(t *testing.T, quote []byte, certs ...*x509.Certificate) []byte {
	t.Helper()
	q, err := ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, c := range certs {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	q.PCKChain = chain
	return encodeQuote(q)
}

// resigned returns the simulated quote altered by f in its signed part and
// signed again by the simulated attestation key, as a rogue quoting
// enclave holding that key could.
func resigned(t *testing.T, quote []byte, f func([]byte)) []byte {
	t.Helper()
	q, err := ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	signed := append([]byte{}, q.Signed...)
	f(signed)
	sig, err := rawSign(NewSimPlatform(1).akKey, signed)
	if err != nil {
		t.Fatal(err)
	}
	q.Signed = signed
	copy(q.Signature[:], sig)
	return encodeQuote(q)
}

// TestTDXSimCCEL: the simulator staples a CCEL that replays to its quote's
// RTMRs and shows its UKI's sections.
func TestTDXSimCCEL(t *testing.T) {
	e, err := NewSimPlatform(2).SimEvidence(SimQuoteOptions{ReportData: simBinding}, simAt)
	if err != nil {
		t.Fatal(err)
	}
	r := appraise(t, e, simAt, simPolicy(t, "  require_event_log: true\n"), simBinding[:])
	if r.Verdict != attest.Affirming {
		t.Fatalf("verdict %s: %+v", r.Verdict, r.Devices["cpu0"].FirstFailure())
	}
	uki, _ := r.Devices["cpu0"].Claims[ClaimUKISections].([]any)
	if len(uki) != len(SimUKISections) {
		t.Fatalf("UKI sections %v", uki)
	}
	// The quote of another boot (other RTMRs) with this log.
	q, err := NewSimPlatform(2).Quote(SimQuoteOptions{ReportData: simBinding})
	if err != nil {
		t.Fatal(err)
	}
	e.Quote = q
	if s := step(t, appraise(t, e, simAt, simPolicy(t, ""), simBinding[:]), "tdx.replay"); s.Status != attest.Fail {
		t.Fatalf("tdx.replay: %s %s", s.Status, s.Detail)
	}
}
