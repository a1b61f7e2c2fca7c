package snp

import (
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
)

func addSeeds(f *testing.F) {
	for _, v := range realVectors {
		if vectors.Root() == "" {
			break
		}
		f.Add(vectors.Read(f, v.report...))
	}
	raw, err := NewSimChip(1, SimTCB).Report(SimReportOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
}

func FuzzParseReport(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseReport(data)
		if err != nil {
			return
		}
		Inspect(a)
	})
}

func FuzzParseHCLReport(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHCLReport(data)
		if err != nil {
			return
		}
		h.AKPublic()
		h.UserData()
		h.CheckBinding(make([]byte, 64))
	})
}

// FuzzAppraise runs the whole SNP appraisal over arbitrary entry bodies.
func FuzzAppraise(f *testing.F) {
	e, err := NewSimChip(1, SimTCB).SimEvidence(SimReportOptions{}, simAt)
	if err != nil {
		f.Fatal(err)
	}
	body, _ := e.Marshal()
	f.Add(body)
	e, err = NewSimChip(1, SimTCB).SimSVSMEvidence(SimReportOptions{}, make([]byte, 64), svsmEK(), simAt)
	if err != nil {
		f.Fatal(err)
	}
	body, _ = e.Marshal()
	f.Add(body)
	v := NewVerifier()
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := attest.VerifyEntry(t.Context(), v, attest.Entry{Kind: attest.KindSNP, Device: "cpu0", Body: body}, at, nil, nil)
		if r.Verdict == attest.Affirming {
			t.Fatal("an appraisal without a policy cannot be affirming")
		}
	})
}
