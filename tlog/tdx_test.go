package tlog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tdx"
)

// TestMatchTDX: release.match compares a TDX section's MRTD and RTMRs, as
// the TDX verifier claims them, with the release's register sets.
func TestMatchTDX(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	rtmr2 := [48]byte{2}
	q, err := tdx.NewSimPlatform(1).Quote(tdx.SimQuoteOptions{RTMR: [4][48]byte{2: rtmr2}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := (&tdx.Evidence{Quote: q}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	res := attest.VerifyEntry(context.Background(), tdx.NewVerifier(), attest.Entry{Kind: attest.KindTDX, Device: "cpu0", Body: body}, at, nil, nil)
	c := ClaimsFromDevices(res.Devices)
	r := Template(at).Release
	r.Components, r.PCRs, r.GPU = nil, nil, GPU{}
	for _, tc := range []struct {
		name string
		tee  []TDX
		want string
	}{
		{"MRTD and RTMR2", []TDX{{MRTD: tdx.SimMRTD[:], RTMRs: []HexBytes{nil, nil, rtmr2[:]}}}, ""},
		{"MRTD only", []TDX{{MRTD: tdx.SimMRTD[:]}}, ""},
		{"second set matches", []TDX{{MRTD: make(HexBytes, 48)}, {MRTD: tdx.SimMRTD[:]}}, ""},
		{"other RTMR2", []TDX{{MRTD: tdx.SimMRTD[:], RTMRs: []HexBytes{nil, nil, make(HexBytes, 48)}}}, "match no register set"},
		{"other MRTD", []TDX{{MRTD: make(HexBytes, 48)}}, "match no register set"},
	} {
		r.TEE = TEE{TDX: tc.tee}
		ok, why := match(r, c)
		if tc.want == "" && !ok || tc.want != "" && (ok || !strings.Contains(why, tc.want)) {
			t.Errorf("%s: ok=%v %s", tc.name, ok, why)
		}
	}
}
