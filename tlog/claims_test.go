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
	r.Components, r.PCRs, r.GPU.Count = nil, nil, nil // pinned values: TestMatchPinsPresent
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

// TestMatchPinsPresent: every value a release pins must be matched by a
// claim; a node that leaves the evidence out does not match, and the
// failure names the value.
func TestMatchPinsPresent(t *testing.T) {
	r := Template(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)).Release
	full := func() *Claims {
		c := &Claims{SNPMeasurement: r.TEE.SNPMeasurements[0], PCRs: r.PCRs, GPUs: *r.GPU.Count,
			Components: map[string]string{"uki": r.Components[0].Digest, "node": r.Components[1].Digest}}
		for range c.GPUs {
			c.GPUDrivers = append(c.GPUDrivers, r.GPU.DriverVersions[0])
		}
		return c
	}
	if ok, why := match(r, full()); !ok {
		t.Fatalf("full claims: %s", why)
	}
	for _, tc := range []struct {
		name string
		edit func(*Claims)
		want string
	}{
		{"no TPM", func(c *Claims) { c.PCRs = nil }, "pins PCR sha256:4, but the node has no TPM claims"},
		{"PCR not quoted", func(c *Claims) { c.PCRs = []PCR{} }, "PCR sha256:4 is not among"},
		{"no UKI claim", func(c *Claims) { delete(c.Components, "uki") }, "pins component uki (" + r.Components[0].Digest + ")"},
		{"no node claim", func(c *Claims) { delete(c.Components, "node") }, "pins component node"},
		{"no CPU TEE", func(c *Claims) { c.SNPMeasurement = nil }, "no CPU TEE claim"},
		{"a GPU left out", func(c *Claims) { c.GPUs--; c.GPUDrivers = c.GPUDrivers[1:] }, "has 8 GPU(s); the node's evidence has 7"},
	} {
		c := full()
		tc.edit(c)
		ok, why := match(r, c)
		if ok || !strings.Contains(why, tc.want) {
			t.Errorf("%s: ok=%v %s", tc.name, ok, why)
		}
	}
	// A release that names GPU versions but no count needs a GPU.
	r2 := *r
	r2.GPU.Count = nil
	c := full()
	c.GPUs, c.GPUDrivers = 0, nil
	if ok, why := match(&r2, c); ok || !strings.Contains(why, "has no GPU") {
		t.Errorf("GPU versions without GPUs: ok=%v %s", ok, why)
	}
}
