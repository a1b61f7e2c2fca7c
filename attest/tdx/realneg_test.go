package tdx

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
)

// encodeQuote re-encodes a parsed quote (version 4), so that tests can
// swap its parts.
func encodeQuote(q *Quote) []byte {
	var qe bytes.Buffer
	qe.Write(q.QEReportRaw)
	qe.Write(q.QEReportSignature[:])
	binary.Write(&qe, binary.LittleEndian, uint16(len(q.QEAuthData)))
	qe.Write(q.QEAuthData)
	binary.Write(&qe, binary.LittleEndian, uint16(certTypePCK))
	binary.Write(&qe, binary.LittleEndian, uint32(len(q.PCKChain)))
	qe.Write(q.PCKChain)
	var sd bytes.Buffer
	sd.Write(q.Signature[:])
	sd.Write(q.AttestationKey[:])
	binary.Write(&sd, binary.LittleEndian, uint16(certTypeQE))
	binary.Write(&sd, binary.LittleEndian, uint32(qe.Len()))
	sd.Write(qe.Bytes())
	out := append([]byte{}, q.Signed...)
	out = binary.LittleEndian.AppendUint32(out, uint32(sd.Len()))
	return append(out, sd.Bytes()...)
}

// flipBase64 changes one base64 character of the PEM chain, in the middle
// of the first certificate.
func flipBase64(t *testing.T, raw []byte, q *Quote) []byte {
	t.Helper()
	start := bytes.Index(raw, q.PCKChain)
	i := start + bytes.Index(q.PCKChain, []byte("\n")) + 200
	out := append([]byte{}, raw...)
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

// TestTDXRealNegative: on the real dcap-qvl quote with its real collateral,
// each alteration fails the step it must.
func TestTDXRealNegative(t *testing.T) {
	v := realVectors[0]
	good := loadVector(t, v)
	q, err := ParseQuote(good.Quote)
	if err != nil {
		t.Fatal(err)
	}
	gcp, err := ParseQuote(vectors.Read(t, "tdx", "gcp-cos-ccel", "cos-113-tdx-quote.dat"))
	if err != nil {
		t.Fatal(err)
	}
	swapped := *q
	swapped.PCKChain = gcp.PCKChain // a real, valid Intel PCK chain of another platform
	gcpEvidence := &Evidence{Quote: gcp.Raw, Collateral: good.Collateral}
	offQE := headerSize + body10Size + 4 + sigSize + attestKeySize + 6
	for _, tc := range []struct {
		name string
		e    *Evidence
		step string
		want string
	}{
		{"flipped byte in the body", &Evidence{Quote: flip(good.Quote, offMRTD), Collateral: good.Collateral}, "tdx.signature", "quote signature does not verify"},
		{"flipped byte in REPORTDATA", &Evidence{Quote: flip(good.Quote, offBody+530), Collateral: good.Collateral}, "tdx.signature", "quote signature does not verify"},
		{"flipped byte in the signature", &Evidence{Quote: flip(good.Quote, offSignature+40), Collateral: good.Collateral}, "tdx.signature", "quote signature does not verify"},
		{"flipped byte in the QE report", &Evidence{Quote: flip(good.Quote, offQE+258), Collateral: good.Collateral}, "tdx.signature", "QE report signature does not verify"},
		{"flipped byte in the QE report's REPORTDATA", &Evidence{Quote: flip(good.Quote, offQE+330), Collateral: good.Collateral}, "tdx.signature", "QE report signature does not verify"},
		{"flipped byte in the certification data (PCK certificate)", &Evidence{Quote: flipBase64(t, good.Quote, q), Collateral: good.Collateral}, "", ""},
		{"quote under another platform's PCK chain", &Evidence{Quote: encodeQuote(&swapped), Collateral: good.Collateral}, "tdx.signature", "QE report signature does not verify"},
		{"collateral for another FMSPC", gcpEvidence, "tdx.collateral", "FMSPC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := appraise(t, tc.e, v.at, nil, nil)
			if r.Verdict != attest.Contraindicated {
				t.Fatalf("verdict %s", r.Verdict)
			}
			if tc.step == "" { // any of parse, chain or signature may catch it
				f := r.Devices["cpu0"].FirstFailure()
				if f == nil || (f.ID != "tdx.parse" && f.ID != "tdx.chain" && f.ID != "tdx.signature") {
					t.Fatalf("first failure %+v", f)
				}
				return
			}
			s := step(t, r, tc.step)
			if s.Status != attest.Fail || !strings.Contains(s.Detail, tc.want) {
				t.Fatalf("%s: %s %q; want fail with %q", tc.step, s.Status, s.Detail, tc.want)
			}
		})
	}
	// The re-encoding itself is faithful: unaltered, it verifies.
	r := appraise(t, &Evidence{Quote: encodeQuote(q), Collateral: good.Collateral}, v.at, nil, nil)
	for _, id := range []string{"tdx.signature", "tdx.chain", "tdx.tcb"} {
		if s := step(t, r, id); s.Status != attest.Pass {
			t.Fatalf("re-encoded quote: %s %s %s", id, s.Status, s.Detail)
		}
	}
}
