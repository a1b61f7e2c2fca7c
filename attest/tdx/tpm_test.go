package tdx

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/internal/vectors"
)

// TestAzureTDXvTPMRealSection: the Azure TDX VM's vTPM quote is bound to
// the TEE through the section this package makes of the real TD quote and
// HCL report: the TPM appraisal finds the vTPM's AK in its hcl_ak_pub
// claim.
func TestAzureTDXvTPMRealSection(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ev := &Evidence{Quote: vectors.Read(t, "tdx", "azure-tdx-vtpm", "td-quote.bin"), HCL: vectors.Read(t, "tdx", "azure-tdx-vtpm", "hcl-report.bin")}
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var zero attest.Binding // the vector's HCL user-data
	r := attest.VerifyEntry(context.Background(), NewVerifier(), attest.Entry{Kind: attest.KindTDX, Device: "cpu0", Body: body}, at, nil, &zero)
	cpu := r.Devices["cpu0"]
	if cpu.FirstFailure() != nil || cpu.Step("tdx.binding").Status != attest.Pass {
		t.Fatalf("TDX section: %+v", cpu.Steps)
	}
	ak, _ := cpu.Claims[tpm.ClaimHCLAKPub].(string)
	if ak == "" {
		t.Fatal("no hcl_ak_pub claim")
	}

	var q struct {
		Signature string   `json:"signature"`
		Message   string   `json:"message"`
		PCRs      []string `json:"pcrs"`
	}
	if err := json.Unmarshal(vectors.Read(t, "tdx", "azure-tdx-vtpm", "tpm-quote-v1.json"), &q); err != nil {
		t.Fatal(err)
	}
	msg, _ := hex.DecodeString(q.Message)
	sig, _ := hex.DecodeString(q.Signature)
	// Azure gives the raw RSASSA-SHA256 signature; wrap it as TPMT_SIGNATURE.
	tsig := append([]byte{0x00, 0x14, 0x00, 0x0b, byte(len(sig) >> 8), byte(len(sig))}, sig...)
	var pcrs []tpm.PCR
	for i, h := range q.PCRs {
		d, _ := hex.DecodeString(h)
		pcrs = append(pcrs, tpm.PCR{Alg: tpm.SHA256, Index: uint8(i), Digest: d})
	}
	te := &tpm.Evidence{Version: 1, AK: []byte(ak), Quotes: []tpm.Quote{{Attest: msg, Signature: tsig, PCRs: pcrs}}}
	pq, err := tpm.ParseQuote(tpm.Quote{Attest: msg, Signature: []byte{0x00, 0x14, 0x00, 0x0b, 0x00, 0x00}})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := te.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	env := &attest.Env{At: at, Ledger: &attest.Ledger{}, Devices: map[string]*attest.Section{"cpu0": cpu}}
	s := (&tpm.Verifier{Nonce: pq.ExtraData()}).Verify(context.Background(), attest.Entry{Kind: attest.KindTPM, Device: "tpm0", Body: tb}, env)
	for _, id := range []string{tpm.StepQuote, tpm.StepBinding} {
		if st := s.Step(id); st == nil || st.Status != attest.Pass {
			t.Fatalf("%s: %+v", id, st)
		}
	}
}
