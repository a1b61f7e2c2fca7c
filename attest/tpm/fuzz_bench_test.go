package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
)

// FuzzQuote feeds arbitrary TPMS_ATTEST, TPMT_SIGNATURE and AK bytes to the
// quote path: it must never panic.
func FuzzQuote(f *testing.F) {
	ak, att, sig := eccQuote(f)
	f.Add(att, sig, ak)
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18}, []byte{0, 0x18, 0, 0xb}, []byte{0, 1})
	f.Fuzz(func(t *testing.T, att, sig, akb []byte) {
		pq, err := ParseQuote(Quote{Attest: att, Signature: sig})
		if err != nil {
			return
		}
		a, err := ParseAK(akb)
		if err != nil {
			return
		}
		pq.CheckAKScheme(a)
		pq.VerifySignature(att, a)
		pq.CheckPCRDigest()
	})
}

// FuzzEvidence feeds arbitrary entry bodies to the whole verifier.
func FuzzEvidence(f *testing.F) {
	ak, att, sig := eccQuote(f)
	ev := &Evidence{Version: 1, AK: ak, Quotes: []Quote{{Attest: att, Signature: sig}}, EventLog: NewLogBuilder(SHA256).Bytes()}
	body, _ := ev.Marshal()
	f.Add(body)
	f.Fuzz(func(t *testing.T, body []byte) {
		var led attest.Ledger
		s := NewVerifier().Verify(context.Background(), attest.Entry{Kind: "tpm", Device: "tpm0", Body: body}, &attest.Env{Ledger: &led, Devices: map[string]*attest.Section{}})
		if s.Step(StepParse) != nil && strings.Contains(s.Step(StepParse).Detail, "internal error") {
			t.Fatal(s.Step(StepParse).Detail)
		}
	})
}

// FuzzEventLog feeds arbitrary logs to replay and claim extraction.
func FuzzEventLog(f *testing.F) {
	l := NewLogBuilder(SHA256, SHA384)
	l.Measure(4, evEFIAction, []byte("Calling EFI Application from Boot Option"), []byte("Calling EFI Application from Boot Option"))
	l.Measure(11, evIPL, []byte{'.', 0, 'l', 0, 0, 0}, []byte(".l\x00"))
	f.Add(l.Bytes())
	if raw, err := os.ReadFile(filepath.Join(vectors.Root(), "tpm/eventlogs/cos-101-gcp-amd-sev.bin")); err == nil {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, b := range []Alg{SHA256, SHA384} {
			pcrs, err := ComputePCRs(raw, b)
			if err != nil {
				continue
			}
			if _, err := ReplayEventLog(raw, b, pcrs); err != nil {
				if _, ok := err.(*ReplayError); ok {
					t.Fatalf("log does not replay to its own PCRs: %v", err)
				}
			}
		}
	})
}

// eccQuote makes a software-signed quote with an ECC P-256 AK (the form
// sworn's collector uses), for fuzz seeds and the benchmark.
func eccQuote(tb testing.TB) (akPub, attestBytes, sig []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := AKTemplateECC
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
	})
	vals := make([]byte, 0, 24*32)
	for range 24 {
		vals = append(vals, make([]byte, 32)...)
	}
	pd := sha256.Sum256(vals)
	att := tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: []byte{0, 0xb}},
		ExtraData:       tpm2.TPM2BData{Buffer: []byte("nonce")},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: selection(SHA256, seq(24)),
			PCRDigest: tpm2.TPM2BDigest{Buffer: pd[:]},
		}),
	}
	ab := tpm2.Marshal(att)
	d := sha256.Sum256(ab)
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		tb.Fatal(err)
	}
	ts := tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
		Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()},
	})}
	return tpm2.Marshal(pub), ab, tpm2.Marshal(ts)
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

var _ = big.NewInt
var _ = crypto.SHA256

func TestECCQuote(t *testing.T) {
	ak, att, sig := eccQuote(t)
	var pcrs []PCR
	for i := range 24 {
		pcrs = append(pcrs, PCR{SHA256, uint8(i), make([]byte, 32)})
	}
	ev := &Evidence{Version: 1, AK: ak, Quotes: []Quote{{att, sig, pcrs}}}
	s := runVerify(t, &Verifier{Nonce: []byte("nonce")}, ev, nil, nil)
	wantStep(t, s, StepQuote, attest.Pass, "ECDSA-SHA256")
	// A quote signed by another ECC key fails at tpm.quote.
	other, _, _ := eccQuote(t)
	ev.AK = other
	s = runVerify(t, &Verifier{Nonce: []byte("nonce")}, ev, nil, nil)
	wantStep(t, s, StepQuote, attest.Fail, "does not verify")
}

// BenchmarkVerifyQuoteECC: parse and verify one ECC-AK quote over 24 PCRs
// (target ≤ 200 µs).
func BenchmarkVerifyQuoteECC(b *testing.B) {
	akb, att, sig := eccQuote(b)
	var pcrs []PCR
	for i := range 24 {
		pcrs = append(pcrs, PCR{SHA256, uint8(i), make([]byte, 32)})
	}
	q := Quote{att, sig, pcrs}
	ak, err := ParseAK(akb)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		pq, err := ParseQuote(q)
		if err != nil {
			b.Fatal(err)
		}
		if err := pq.VerifySignature(att, ak); err != nil {
			b.Fatal(err)
		}
		if err := pq.CheckPCRDigest(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplayRealLog: replay and extract claims of a real ~100-event
// GCE log (COS on AMD SEV) against its SHA-384 PCRs (target ≤ 500 µs).
func BenchmarkReplayRealLog(b *testing.B) {
	ev, _ := gceEvidence(b)
	var pcrs map[int][]byte
	for _, q := range ev.Quotes {
		pq, err := ParseQuote(q)
		if err != nil {
			b.Fatal(err)
		}
		if v := pq.Values[SHA384]; v != nil {
			pcrs = v
		}
	}
	c, err := ReplayEventLog(ev.EventLog, SHA384, pcrs)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(c.Events), "events")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReplayEventLog(ev.EventLog, SHA384, pcrs); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSystemdMeasureCrossCheck compares sworn's PCR 11 prediction with
// systemd-measure's for the same sections.
func TestSystemdMeasureCrossCheck(t *testing.T) {
	bin := "/usr/lib/systemd/systemd-measure"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("systemd-measure"); err != nil {
			t.Skip("systemd-measure not installed (Debian package systemd): skipping the PCR 11 cross-check")
		}
	}
	dir := t.TempDir()
	names := []string{".linux", ".osrel", ".cmdline", ".initrd"}
	contents := map[string][]byte{".linux": []byte("kernel image bytes"), ".osrel": []byte("ID=sworn\n"), ".cmdline": []byte("console=ttyS0"), ".initrd": []byte("initrd bytes")}
	args := []string{"calculate", "--json=short", "--bank=sha256", "--bank=sha384"}
	for _, n := range names {
		p := filepath.Join(dir, n[1:])
		os.WriteFile(p, contents[n], 0o600)
		args = append(args, "--"+n[1:]+"="+p)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Skipf("systemd-measure calculate failed (%v): skipping", err)
	}
	var got map[string][]struct {
		Phase string `json:"phase"`
		PCR   int    `json:"pcr"`
		Hash  string `json:"hash"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("systemd-measure output %s: %v", out, err)
	}
	pe, err := ParsePE(SyntheticUKI(names, contents))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, b := range []Alg{SHA256, SHA384} {
		base := pe.MeasureUKI(b.Hash()).PCR11
		for _, e := range got[b.String()] {
			var phases []string
			if e.Phase != "" {
				phases = strings.Split(e.Phase, ":")
			}
			want := ExtendPhases(b.Hash(), base, phases...)
			if e.Hash != hexs(want) {
				t.Errorf("%s phase %q: systemd-measure %s, sworn %s", b, e.Phase, e.Hash, hexs(want))
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatalf("no values from systemd-measure: %s", out)
	}
}

func hexs(b []byte) string { return new(big.Int).SetBytes(append([]byte{1}, b...)).Text(16)[1:] }
