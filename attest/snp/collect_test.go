package snp

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
)

// fakeProvider answers like the kernel does: an extended report whose
// certificate table the host filled in.
type fakeProvider struct {
	chip *SimChip
	err  error
}

func (f *fakeProvider) GetRawQuote(rd [64]byte) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	raw, err := f.chip.Report(SimReportOptions{ReportData: rd, Measurement: SimMeasurement})
	if err != nil {
		return nil, err
	}
	ca := simulatedCA()
	table := abi.CertTable{Entries: []abi.CertTableEntry{
		{GUID: uuid.MustParse(abi.VcekGUID), RawCert: f.chip.VCEK.Raw},
		{GUID: uuid.MustParse(abi.AskGUID), RawCert: ca.pr.ask.Raw},
		{GUID: uuid.MustParse(abi.ArkGUID), RawCert: ca.pr.ark.Raw},
		{GUID: uuid.MustParse(abi.ExtraPlatformInfoGUID), RawCert: []byte("extra")},
	}}
	return append(raw, table.Marshal()...), nil
}

func TestCollector(t *testing.T) {
	var rd [64]byte
	copy(rd[:], "node binding")
	c := &Collector{Provider: &fakeProvider{chip: NewSimChip(4, SimTCB)}}
	e, err := c.Collect(rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Certs) != 3 {
		t.Fatalf("%d certificates, want VCEK, ASK, ARK", len(e.Certs))
	}
	crl, _ := SimCRL(simAt.Add(-1), 24*3600e9)
	e.CRLs = [][]byte{crl}
	r := appraise(t, e, simAt, simPolicy(t, ""), rd[:])
	if r.Verdict != attest.Affirming {
		t.Fatalf("collected evidence: %s %+v", r.Verdict, r.Devices["cpu0"].FirstFailure())
	}

	c.Provider = &fakeProvider{err: errors.New("ioctl: permission denied")}
	if _, err := c.Collect(rd); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("error %v", err)
	}
}

func TestExtendedReportErrors(t *testing.T) {
	raw, _ := NewSimChip(1, SimTCB).Report(SimReportOptions{})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"short", raw[:100]},
		{"bad table", append(bytes.Clone(raw), 1, 2, 3)},
		{"huge", make([]byte, 1<<20)},
	} {
		if _, err := EvidenceFromExtendedReport(tc.data); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// A report with an all-zero (empty) certificate area has no certificates.
	e, err := EvidenceFromExtendedReport(append(bytes.Clone(raw), make([]byte, 4096)...))
	if err != nil || len(e.Certs) != 0 {
		t.Fatalf("empty table: %v %d", err, len(e.Certs))
	}
}

func TestFetchCRL(t *testing.T) {
	crl := vectors.Read(t, "snp", "amd-crls", "milan_vcek_crl.der")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/vcek/v1/Milan/crl":
			w.Write(crl)
		case "/vcek/v1/Genoa/crl":
			w.Write([]byte("not a crl"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	got, err := FetchCRL(t.Context(), srv.Client(), srv.URL, "Milan")
	if err != nil || !bytes.Equal(got, crl) {
		t.Fatalf("Milan: %v", err)
	}
	if _, err := FetchCRL(t.Context(), srv.Client(), srv.URL, "Genoa"); err == nil {
		t.Fatal("garbage CRL accepted")
	}
	if _, err := FetchCRL(t.Context(), srv.Client(), srv.URL, "Turin"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing CRL: %v", err)
	}
}
