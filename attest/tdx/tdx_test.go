package tdx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
	"github.com/sworn-dev/sworn/policy"
)

// pcsCollateral builds collateral JSON from Intel PCS responses as
// go-tdx-guest's test data stores them: the response bodies, the issuer
// chains (PEM) that PCS sends in headers, and the CRLs (DER).
func pcsCollateral(t testing.TB, dir, tcbInfo, qeIdentity string) []byte {
	t.Helper()
	r := func(name string) []byte { return vectors.Read(t, "tdx", dir, name) }
	c, err := CollateralFromPCS(PCSResponses{
		TCBInfo: r(tcbInfo), TCBInfoIssuerChain: r("tcb_info_issuer_chain.pem"),
		QEIdentity: r(qeIdentity), QEIdentityIssuerChain: r("qe_identity_issuer_chain.pem"),
		PCKCRL: r("pckcrl"), PCKCRLIssuerChain: r("pck_crl_issuer_chain.pem"), RootCACRL: r("rootcrl.der"),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vector is one real quote, with its collateral when the vectors have it,
// a time inside the collateral's window, and what its README records.
type vector struct {
	name       string
	quote      []string
	collateral func(testing.TB) []byte
	at         time.Time
	status     string // the TCB status the README records; "" when none
	fail       string // the step the README says fails, with failReason
	failReason string
	reportData string // expected REPORTDATA, hex; "" to skip
}

func dcapQVLCollateral(t testing.TB) []byte {
	return vectors.Read(t, "tdx", "dcap-qvl", "tdx_quote_collateral.json")
}

func goTDXGuestCollateral(t testing.TB) []byte {
	return pcsCollateral(t, "go-tdx-guest", "sample_tcbInfo_response", "sample_qeIdentity_response")
}

var realVectors = []vector{
	{name: "dcap-qvl", quote: []string{"tdx", "dcap-qvl", "tdx_quote.bin"}, collateral: dcapQVLCollateral,
		at: time.Date(2025, 6, 20, 0, 0, 0, 0, time.UTC), status: "UpToDate"},
	{name: "go-tdx-guest-spr-e4", quote: []string{"tdx", "go-tdx-guest", "tdx_prod_quote_SPR_E4.dat"}, collateral: goTDXGuestCollateral,
		at: time.Date(2023, 6, 20, 0, 0, 0, 0, time.UTC), fail: "tdx.tcb", failReason: "no matching TCB level found"},
	{name: "go-tdx-guest-v5", quote: []string{"tdx", "go-tdx-guest", "quote_v5_sample.dat"},
		at: time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)},
	{name: "gcp-cos-ccel", quote: []string{"tdx", "gcp-cos-ccel", "cos-113-tdx-quote.dat"},
		at: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), reportData: strings.Repeat("00", 64)},
	{name: "azure-tdx-vtpm", quote: []string{"tdx", "azure-tdx-vtpm", "td-quote.bin"},
		at: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
}

func loadVector(t testing.TB, v vector) *Evidence {
	t.Helper()
	e := &Evidence{Quote: vectors.Read(t, v.quote...)}
	if v.collateral != nil {
		e.Collateral = v.collateral(t)
	}
	return e
}

func appraiseWith(t testing.TB, ver *Verifier, e *Evidence, at time.Time, p *policy.Policy, binding []byte) *attest.Result {
	t.Helper()
	body, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var b *attest.Binding
	if binding != nil {
		b = new(attest.Binding)
		copy(b[:], binding)
	}
	return attest.VerifyEntry(context.Background(), ver, attest.Entry{Kind: attest.KindTDX, Device: "cpu0", Body: body}, at, p, b)
}

func appraise(t testing.TB, e *Evidence, at time.Time, p *policy.Policy, binding []byte) *attest.Result {
	t.Helper()
	return appraiseWith(t, NewVerifier(), e, at, p, binding)
}

func step(t testing.TB, r *attest.Result, id string) attest.Step {
	t.Helper()
	s := r.Devices["cpu0"].Step(id)
	if s == nil {
		t.Fatalf("no step %s in %+v", id, r.Devices["cpu0"].Steps)
	}
	return *s
}

func mustPolicy(t testing.TB, y string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTDXRealVectors appraises every real quote offline at a time inside
// its collateral's window: each one's signatures and PCK chain verify to
// Intel's pinned root, and its TCB status is the one its README records.
func TestTDXRealVectors(t *testing.T) {
	for _, v := range realVectors {
		t.Run(v.name, func(t *testing.T) {
			e := loadVector(t, v)
			var rd []byte
			if v.reportData != "" {
				rd, _ = hex.DecodeString(v.reportData)
			}
			r := appraise(t, e, v.at, nil, rd)
			for _, id := range []string{"tdx.parse", "tdx.signature", "tdx.chain"} {
				if s := step(t, r, id); s.Status != attest.Pass {
					t.Fatalf("%s: %s %s", id, s.Status, s.Detail)
				}
			}
			if v.reportData != "" {
				if s := step(t, r, "tdx.binding"); s.Status != attest.Pass {
					t.Fatalf("tdx.binding: %s %s", s.Status, s.Detail)
				}
			}
			claims := r.Devices["cpu0"].Claims
			switch {
			case v.fail != "":
				s := step(t, r, v.fail)
				if s.Status != attest.Fail || !strings.Contains(s.Detail, v.failReason) {
					t.Fatalf("%s: %s %q; want fail with %q", v.fail, s.Status, s.Detail, v.failReason)
				}
				if r.Verdict != attest.Contraindicated {
					t.Fatalf("verdict %s", r.Verdict)
				}
			case v.status != "":
				for _, id := range []string{"tdx.collateral", "tdx.revocation", "tdx.tcb", "tdx.qe"} {
					if s := step(t, r, id); s.Status != attest.Pass {
						t.Fatalf("%s: %s %s", id, s.Status, s.Detail)
					}
				}
				if claims[ClaimTCBStatus] != v.status {
					t.Fatalf("TCB status %v, want %s", claims[ClaimTCBStatus], v.status)
				}
				t.Logf("TCB status %s, date %v, QE %v", claims[ClaimTCBStatus], claims["tcb_date"], claims[ClaimQETCBStatus])
			default:
				if s := step(t, r, "tdx.collateral"); s.Status != attest.Skip {
					t.Fatalf("tdx.collateral without collateral: %s %s", s.Status, s.Detail)
				}
			}
			if claims[attest.ClaimMRTD] == "" || claims["rtmr3"] == nil {
				t.Fatalf("claims lack the registers: %v", claims)
			}
		})
	}
}

// TestTDXCollateralExpires: after the collateral's nextUpdate the quote
// fails on tdx.collateral, saying so.
func TestTDXCollateralExpires(t *testing.T) {
	v := realVectors[0]
	e := loadVector(t, v)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2025, 7, 20, 0, 0, 0, 0, time.UTC), "expired"},
		{time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), "after the appraisal time"},
	} {
		r := appraise(t, e, tc.at, nil, nil)
		s := step(t, r, "tdx.collateral")
		if s.Status != attest.Fail || !strings.Contains(s.Detail, tc.want) {
			t.Fatalf("at %s: tdx.collateral %s %q; want fail with %q", tc.at, s.Status, s.Detail, tc.want)
		}
		if s := step(t, r, "tdx.tcb"); s.Status != attest.Fail {
			t.Fatalf("tdx.tcb after expiry: %s %s", s.Status, s.Detail)
		}
		if r.Verdict != attest.Contraindicated {
			t.Fatalf("verdict %s", r.Verdict)
		}
	}
}

// TestTDXV5 reads the TDX 1.5 body of the v5 sample and evaluates its TCB
// against the v5 TCB info (whose signature verifies under Intel's root).
func TestTDXV5(t *testing.T) {
	q, err := ParseQuote(vectors.Read(t, "tdx", "go-tdx-guest", "quote_v5_sample.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if q.Version != 5 || q.BodyType != bodyTypeTD15 {
		t.Fatalf("version %d body type %d", q.Version, q.BodyType)
	}
	a, err := Parse(&Evidence{Quote: q.Raw})
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		TCBInfo   json.RawMessage `json:"tcbInfo"`
		Signature string          `json:"signature"`
	}
	if err := json.Unmarshal(vectors.Read(t, "tdx", "go-tdx-guest", "sample_tcbinfo_response_v5"), &resp); err != nil {
		t.Fatal(err)
	}
	chain, err := parseChain(vectors.Read(t, "tdx", "go-tdx-guest", "tcb_info_issuer_chain.pem"), x509.ParseCertificate)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := decodeSig(resp.Signature)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier()
	// The vectors' TCB signing certificate expired in 2025; Intel renewed
	// it with the same key, so the signature checks under it at a time it
	// was valid.
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := v.signedBy(resp.TCBInfo, sig, chain, sha256.Sum256(append(append([]byte{}, resp.TCBInfo...), sig...)), v.production, at, "the v5 TCB info"); err != nil {
		t.Fatal(err)
	}
	var p ParsedCollateral
	if err := strictJSON(resp.TCBInfo, &p.TCBInfo); err != nil {
		t.Fatal(err)
	}
	ext, err := pckExtensions(a.PCK[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(ext.FMSPC, p.TCBInfo.Fmspc) {
		t.Fatalf("FMSPC %s vs TCB info %s", ext.FMSPC, p.TCBInfo.Fmspc)
	}
	if err := checkModule(&p.TCBInfo, &q.Body); err != nil {
		t.Fatal(err)
	}
	res, err := evaluateTCB(&p.TCBInfo, &q.Body, ext)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("v5 sample: TCB status %s (date %s, advisories %v)", res.Status, res.Date, res.Advisories)
	if res.Status == "" {
		t.Fatal("no status")
	}
}

// TestTDXCrossCheckV4: sworn's parser and go-tdx-guest's agree on every
// real v4 quote (ParseQuote fails otherwise), and a v4 quote re-encoded by
// go-tdx-guest is byte-identical in its signed part.
func TestTDXCrossCheckV4(t *testing.T) {
	for _, v := range realVectors {
		raw := vectors.Read(t, v.quote...)
		q, err := ParseQuote(raw)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if !bytes.Equal(q.Signed, raw[:len(q.Signed)]) {
			t.Fatalf("%s: signed part", v.name)
		}
	}
}

// TestTDXReplayGCP replays GCP's CCEL event log against its quote's RTMRs:
// it verifies, and gives the kernel command line and GRUB commands its
// README records; an event log that does not match fails tdx.replay.
func TestTDXReplayGCP(t *testing.T) {
	e := &Evidence{
		Quote:     vectors.Read(t, "tdx", "gcp-cos-ccel", "cos-113-tdx-quote.dat"),
		CCEL:      vectors.Read(t, "tdx", "gcp-cos-ccel", "ccel_data.dat"),
		CCELTable: vectors.Read(t, "tdx", "gcp-cos-ccel", "ccel_table.dat"),
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := appraise(t, e, at, nil, nil)
	s := step(t, r, "tdx.replay")
	if s.Status != attest.Pass {
		t.Fatalf("tdx.replay: %s %s", s.Status, s.Detail)
	}
	c := r.Devices["cpu0"].Claims
	cmd, _ := c[ClaimKernelCmdline].(string)
	if !strings.HasPrefix(cmd, "/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd") {
		t.Fatalf("kernel cmdline %q (extraction: %v)", cmd, c[ClaimCCELExtraction])
	}
	if cmds, _ := c[ClaimGRUBCommands].([]string); len(cmds) != 15 {
		t.Fatalf("%d GRUB commands, want 15", len(cmds))
	}
	t.Logf("%s", s.Detail)

	// The same log against another quote's RTMRs.
	other := &Evidence{Quote: vectors.Read(t, "tdx", "dcap-qvl", "tdx_quote.bin"), CCEL: e.CCEL, CCELTable: e.CCELTable}
	if s := step(t, appraise(t, other, at, nil, nil), "tdx.replay"); s.Status != attest.Fail {
		t.Fatalf("mismatched log: %s %s", s.Status, s.Detail)
	}
	// The log with its last events cut off.
	if s := step(t, appraise(t, &Evidence{Quote: e.Quote, CCEL: e.CCEL[:6000], CCELTable: e.CCELTable}, at, nil, nil), "tdx.replay"); s.Status != attest.Fail {
		t.Fatalf("truncated log: %s %s", s.Status, s.Detail)
	}
	// Not a TDX CCEL table.
	table := append([]byte{}, e.CCELTable...)
	table[36] = 1 // CC type: SEV
	if s := step(t, appraise(t, &Evidence{Quote: e.Quote, CCEL: e.CCEL, CCELTable: table}, at, nil, nil), "tdx.replay"); s.Status != attest.Fail {
		t.Fatalf("SEV table: %s %s", s.Status, s.Detail)
	}
}

// TestTDXAzureHCL: the Azure TDX VM's quote binds its HCL runtime data
// (REPORTDATA = SHA-256(runtime data) ‖ 0), whose user-data is the
// binding; the vTPM AK becomes the hcl_ak_pub claim. Altered runtime data,
// or an HCL report of another TD, fail tdx.binding.
func TestTDXAzureHCL(t *testing.T) {
	q := vectors.Read(t, "tdx", "azure-tdx-vtpm", "td-quote.bin")
	hcl := vectors.Read(t, "tdx", "azure-tdx-vtpm", "hcl-report.bin")
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	zero := make([]byte, 64) // the vector's user-data
	r := appraise(t, &Evidence{Quote: q, HCL: hcl}, at, nil, zero)
	if s := step(t, r, "tdx.binding"); s.Status != attest.Pass {
		t.Fatalf("tdx.binding: %s %s", s.Status, s.Detail)
	}
	ak, _ := r.Devices["cpu0"].Claims[ClaimHCLAKPub].(string)
	if !strings.HasPrefix(ak, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("hcl_ak_pub %q", ak)
	}
	if s := step(t, appraise(t, &Evidence{Quote: q, HCL: hcl}, at, nil, []byte("other")), "tdx.binding"); s.Status != attest.Fail || !strings.Contains(s.Detail, "user-data") {
		t.Fatalf("wrong user-data: %s %s", s.Status, s.Detail)
	}
	bad := append([]byte{}, hcl...)
	i := bytes.Index(bad, []byte(`"user-data"`))
	bad[i+20] ^= 1
	if s := step(t, appraise(t, &Evidence{Quote: q, HCL: bad}, at, nil, zero), "tdx.binding"); s.Status != attest.Fail || !strings.Contains(s.Detail, "SHA-256 of the HCL runtime data") {
		t.Fatalf("altered runtime data: %s %s", s.Status, s.Detail)
	}
	other := append([]byte{}, hcl...)
	other[32+tdInfoRTMROff] ^= 1 // the TDREPORT of another TD state
	if s := step(t, appraise(t, &Evidence{Quote: q, HCL: other}, at, nil, zero), "tdx.binding"); s.Status != attest.Fail || !strings.Contains(s.Detail, "not the quoted one") {
		t.Fatalf("other TDREPORT: %s %s", s.Status, s.Detail)
	}
	// An SEV-SNP HCL report is refused at parse.
	if _, err := Parse(&Evidence{Quote: q, HCL: vectors.Read(t, "snp", "azure-cvm-milan-vtpm", "hcl-report.bin")}); err == nil || !strings.Contains(err.Error(), "SEV-SNP") {
		t.Fatalf("SNP HCL report: %v", err)
	}
}

// TestTDXReplayGKEUKI replays the GKE node's UKI boot log (no quote: the
// RTMRs are computed from trustee's parsed view of the same log, an
// independent reading) and finds the six UKI sections systemd-stub
// measured into RTMR2, each name event's digest being SHA-384(name ‖ NUL).
func TestTDXReplayGKEUKI(t *testing.T) {
	log := vectors.Read(t, "tdx", "gke-uki-ccel", "CCEL_data_grub_gke.bin")
	var view struct {
		Events []struct {
			Index   int    `json:"index"`
			Type    string `json:"type_name"`
			Digests []struct {
				Digest string `json:"digest"`
			} `json:"digests"`
		} `json:"uefi_event_logs"`
	}
	if err := json.Unmarshal(vectors.Read(t, "tdx", "gke-uki-ccel", "CCEL_data_grub_gke_out.json"), &view); err != nil {
		t.Fatal(err)
	}
	var rtmr [4][48]byte
	for _, e := range view.Events {
		if e.Type == "EV_NO_ACTION" || e.Index < 1 || e.Index > 4 || len(e.Digests) != 1 {
			continue
		}
		d, _ := hex.DecodeString(e.Digests[0].Digest)
		h := sha512.New384()
		h.Write(rtmr[e.Index-1][:])
		h.Write(d)
		copy(rtmr[e.Index-1][:], h.Sum(nil))
	}
	c, err := ReplayCCEL(nil, log, rtmr)
	if err != nil {
		t.Fatal(err)
	}
	uki, _ := c[ClaimUKISections].([]any)
	var names []string
	for _, s := range uki {
		names = append(names, s.(map[string]any)["name"].(string))
	}
	if strings.Join(names, " ") != ".linux .osrel .cmdline .initrd .uname .sbat" {
		t.Fatalf("UKI sections %v (note: %v)", names, c[ClaimUKINote])
	}
	rtmr[2][0] ^= 1
	if _, err := ReplayCCEL(nil, log, rtmr); err == nil {
		t.Fatal("the log replayed to an altered RTMR2")
	}
}

// TestTDXRules: policy rules (CEL) read the TDX claims, the TCB status
// and advisories among them.
func TestTDXRules(t *testing.T) {
	v := realVectors[0]
	p := mustPolicy(t, `version: 1
tdx:
  mrtd: [91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7]
rules:
  - name: current
    expr: claims.cpu0.tcb_status == "UpToDate" && claims.cpu0.qe_tcb_status == "UpToDate" && size(claims.cpu0.advisory_ids) == 0
    message: not current
  - name: not-debug
    expr: "!claims.cpu0.debug && claims.cpu0.sept_ve_disable && claims.cpu0.qe_svn >= 4"
    message: debug
  - name: fmspc
    expr: claims.cpu0.fmspc == "00906ed50000"
    message: another platform
`)
	r := appraise(t, loadVector(t, v), v.at, p, nil)
	for id, want := range map[string]attest.Status{"policy.rule.current": attest.Pass, "policy.rule.not-debug": attest.Pass, "policy.rule.fmspc": attest.Fail} {
		if st := r.Policy.Step(id); st == nil || st.Status != want {
			t.Errorf("%s: %+v, want %s", id, st, want)
		}
	}
}
