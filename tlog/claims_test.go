package tlog

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
)

// TestMatchGPUAndConflicts: GPU versions outside the release, and devices
// that disagree, fail release.match.
func TestMatchGPUAndConflicts(t *testing.T) {
	r := Template(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)).Release
	m := hex.EncodeToString(r.TEE.SNPMeasurements[0])
	gpu := func(driver, vbios string) *attest.Section {
		return &attest.Section{Kind: attest.KindNVGPU, Claims: map[string]any{attest.ClaimGPUDriverVersion: driver, attest.ClaimGPUVBIOSVersion: vbios}}
	}
	cpu := func(meas string) *attest.Section {
		return &attest.Section{Kind: attest.KindSNP, Claims: map[string]any{attest.ClaimMeasurement: meas}}
	}
	okDriver, okVBIOS := r.GPU.DriverVersions[0], r.GPU.VBIOSVersions[0]
	for _, tc := range []struct {
		name string
		devs map[string]*attest.Section
		want string // "" means a match
	}{
		{"matching", map[string]*attest.Section{"cpu0": cpu(m), "gpu0": gpu(okDriver, okVBIOS)}, ""},
		{"driver not in the release", map[string]*attest.Section{"cpu0": cpu(m), "gpu0": gpu("999.99.99", okVBIOS)}, "GPU driver 999.99.99"},
		{"VBIOS not in the release", map[string]*attest.Section{"cpu0": cpu(m), "gpu0": gpu(okDriver, "00.00.00.00.00")}, "GPU VBIOS 00.00.00.00.00"},
		{"one of two GPUs off", map[string]*attest.Section{"cpu0": cpu(m), "gpu0": gpu(okDriver, okVBIOS), "gpu1": gpu("1.0", okVBIOS)}, "GPU driver 1.0"},
		{"two CPUs disagree", map[string]*attest.Section{"cpu0": cpu(m), "cpu1": cpu(strings.Repeat("00", 48))}, "differs from another CPU"},
		{"GPU without versions", map[string]*attest.Section{"cpu0": cpu(m), "gpu0": {Kind: attest.KindNVGPU}}, "no driver version"},
	} {
		ok, why := match(r, ClaimsFromDevices(tc.devs))
		if tc.want == "" && !ok || tc.want != "" && (ok || !strings.Contains(why, tc.want)) {
			t.Errorf("%s: ok=%v %s", tc.name, ok, why)
		}
	}
}
