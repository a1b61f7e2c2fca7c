package snp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
	"github.com/sworn-dev/sworn/policy"
)

// vector is one recorded SNP report with its collateral.
type vector struct {
	name   string
	report []string // path under vectors/
	certs  [][]string
	at     time.Time
	rdata  string // expected REPORT_DATA (raw) or user-data (HCL), hex; "" to skip
}

var realVectors = []vector{
	{"go-sev-guest-milan", []string{"snp", "go-sev-guest-milan", "attestation.bin"},
		[][]string{{"snp", "go-sev-guest-milan", "vcek.der"}, {"snp", "go-sev-guest-milan", "ask_ark_milan.pem"}},
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "0102030405" + strings.Repeat("00", 59)},
	{"trustee-milan-vcek", []string{"snp", "trustee-milan-vcek", "report.bin"},
		[][]string{{"snp", "trustee-milan-vcek", "vcek.der"}}, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), ""},
	{"azure-cvm-milan-vtpm", []string{"snp", "azure-cvm-milan-vtpm", "hcl-report.bin"},
		[][]string{{"snp", "azure-cvm-milan-vtpm", "vcek.pem"}}, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), strings.Repeat("00", 64)},
	{"azure-cvm-genoa-openpcc", []string{"snp", "azure-cvm-genoa-openpcc", "hcl-report.bin"},
		[][]string{{"snp", "azure-cvm-genoa-openpcc", "vcek-genoa.pem"}}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), strings.Repeat("00", 64)},
}

func loadVector(t testing.TB, v vector) *Evidence {
	t.Helper()
	e := &Evidence{Report: vectors.Read(t, v.report...)}
	for _, c := range v.certs {
		ders, err := ParseCertificates(vectors.Read(t, c...))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		e.Certs = append(e.Certs, ders...)
	}
	return e
}

func appraise(t testing.TB, e *Evidence, at time.Time, p *policy.Policy, binding []byte) *attest.Result {
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
	return attest.VerifyEntry(context.Background(), NewVerifier(), attest.Entry{Kind: attest.KindSNP, Device: "cpu0", Body: body}, at, p, b)
}

func stepStatus(r *attest.Result, id string) attest.Status {
	if st := r.Devices["cpu0"].Step(id); st != nil {
		return st.Status
	}
	return "missing"
}

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRealVectors(t *testing.T) {
	for _, v := range realVectors {
		t.Run(v.name, func(t *testing.T) {
			e := loadVector(t, v)
			var rd []byte
			if v.rdata != "" {
				rd = mustHex(t, v.rdata)
			}
			r := appraise(t, e, v.at, nil, rd)
			for _, id := range []string{"snp.parse", "snp.signature", "snp.chain"} {
				if got := stepStatus(r, id); got != attest.Pass {
					t.Errorf("%s = %s: %s", id, got, r.Devices["cpu0"].Step(id).Detail)
				}
			}
			if v.rdata != "" && stepStatus(r, "snp.binding") != attest.Pass {
				t.Errorf("snp.binding: %s", r.Devices["cpu0"].Step("snp.binding").Detail)
			}
			if r.Simulated {
				t.Error("real vector marked simulated")
			}
		})
	}
}

// TestAzureEvidenceV2 checks the Azure boot whose HCL user-data carries the
// verifier's nonce (a fresh hardware report).
func TestAzureEvidenceV2(t *testing.T) {
	var ev struct {
		HCLReport string `json:"hcl_report"`
		VCEK      string `json:"vcek"`
	}
	if err := json.Unmarshal(vectors.Read(t, "snp", "azure-cvm-milan-vtpm", "evidence-v2.json"), &ev); err != nil {
		t.Fatal(err)
	}
	hcl, err := base64.URLEncoding.DecodeString(ev.HCLReport)
	if err != nil {
		t.Fatal(err)
	}
	vcek, err := base64.URLEncoding.DecodeString(ev.VCEK)
	if err != nil {
		t.Fatal(err)
	}
	e := &Evidence{Report: hcl, Certs: [][]byte{vcek}}
	a, err := Parse(e)
	if err != nil {
		t.Fatal(err)
	}
	ud, err := a.HCL.UserData()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hex.EncodeToString(ud), "982f5c6e") {
		t.Fatalf("user-data %x does not start with the recorded nonce", ud)
	}
	r := appraise(t, e, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nil, ud)
	for _, id := range []string{"snp.signature", "snp.chain", "snp.binding"} {
		if got := stepStatus(r, id); got != attest.Pass {
			t.Errorf("%s = %s: %s", id, got, r.Devices["cpu0"].Step(id).Detail)
		}
	}
	if _, ok := r.Devices["cpu0"].Claims["hcl_ak_pub"]; !ok {
		t.Error("no hcl_ak_pub claim")
	}
}

func TestAzureRuntimeDataHash(t *testing.T) {
	a, err := ParseReport(vectors.Read(t, "snp", "azure-cvm-milan-vtpm", "hcl-report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(a.HCL.RuntimeData)
	if hex.EncodeToString(a.Report.GetReportData()[:32]) != hex.EncodeToString(sum[:]) {
		t.Fatal("runtime data hash mismatch")
	}
	_ = os.Stdout
}
