package tdx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/attest"
)

// simProvider is a QuoteProvider backed by the simulator.
type simProvider struct {
	p   *SimPlatform
	err error
	rd  *[64]byte // when set, the REPORTDATA it puts in instead
}

func (s simProvider) GetRawQuote(rd [64]byte) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.rd != nil {
		rd = *s.rd
	}
	return s.p.Quote(SimQuoteOptions{ReportData: rd})
}

func TestTDXCollector(t *testing.T) {
	coll, err := SimCollateral(simAt, SimCollateralOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "CCEL")
	if err := os.WriteFile(data, []byte("not an event log"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Collector{Provider: simProvider{p: NewSimPlatform(1)}, Collateral: coll}
	e, err := c.Collect(simBinding)
	if err != nil {
		t.Fatal(err)
	}
	r := appraise(t, e, simAt, simPolicy(t, ""), simBinding[:])
	if r.Verdict != attest.Affirming {
		t.Fatalf("collected evidence: %s %+v", r.Verdict, r.Devices["cpu0"].FirstFailure())
	}
	// A CCEL that is not an event log is stapled, and fails tdx.replay.
	c.CCELData = data
	if e, err = c.Collect(simBinding); err != nil {
		t.Fatal(err)
	}
	if s := step(t, appraise(t, e, simAt, simPolicy(t, ""), simBinding[:]), "tdx.replay"); s.Status != attest.Fail {
		t.Fatalf("bad CCEL: %s %s", s.Status, s.Detail)
	}
	other := [64]byte{1}
	for _, tc := range []struct {
		c    *Collector
		want string
	}{
		{&Collector{Provider: simProvider{err: errors.New("no QE")}}, "no QE"},
		{&Collector{Provider: simProvider{p: NewSimPlatform(1), rd: &other}}, "does not carry the REPORTDATA"},
		{&Collector{Provider: simProvider{p: NewSimPlatform(1)}, CCELData: filepath.Join(dir, "missing")}, "CCEL event log"},
	} {
		if _, err := tc.c.Collect(simBinding); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v; want %q", err, tc.want)
		}
	}
}
