package nvgpu

import (
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/internal/vectors"
)

func readRIM(t testing.TB, elem ...string) *RIM {
	t.Helper()
	r, err := ParseRIM(vectors.Read(t, append([]string{"nvidia"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var genuineRIMs = []struct {
	path    []string
	version string
	active  int
	at      time.Time
}{
	{[]string{"nvtrust-initial-hopper-545", "1010_0200_882_96005E0001_test_no_gpu.swidtag"}, "96.00.5E.00.01", 12, at2024},
	{[]string{"nvtrust-initial-hopper-545", "Driver_RIM_test_no_gpu.swidtag"}, "545.00", 21, at2024},
	{[]string{"nvtrust-rims", "1010_0200_882_96005E0001_PROD.swidtag"}, "96.00.5E.00.01", 12, at2024},
	{[]string{"nvtrust-rims", "g520_0200_885_9600740001_PROD.swidtag"}, "96.00.74.00.01", 12, at2024},
	{[]string{"sdk-rims", "NV_GPU_DRIVER_GH100_550.144.03.xml"}, "550.144.03", 21, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)},
}

func TestGenuineRIMs(t *testing.T) {
	for _, g := range genuineRIMs {
		t.Run(g.path[1], func(t *testing.T) {
			r := readRIM(t, g.path...)
			if r.ColloquialVersion != g.version {
				t.Errorf("version %q", r.ColloquialVersion)
			}
			n := 0
			for _, e := range r.Entries {
				if e.Active {
					n++
				}
			}
			if n != g.active || len(r.Entries) != 64 {
				t.Errorf("%d active of %d", n, len(r.Entries))
			}
			if _, err := VerifyRIM(r, ProductionRoots.RIM, g.at); err != nil {
				t.Errorf("verify: %v", err)
			}
			// Expired signer: the chain fails years later.
			if _, err := VerifyRIM(r, ProductionRoots.RIM, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
				t.Errorf("verified in 2031 with an expired signer")
			}
		})
	}
}

func TestNegativeRIMs(t *testing.T) {
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// Bad signature value: the digest is fine, the signature is not.
	r := readRIM(t, "sdk-negative", "incorrect_signature_driver_rim.xml")
	if err := r.CheckSignature(); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Errorf("incorrect_signature: %v", err)
	}
	// Signed under a debug root: signature fine, chain not.
	r = readRIM(t, "sdk-negative", "incorrect_cert_chain_driver_rim.xml")
	if err := r.CheckSignature(); err != nil {
		t.Errorf("incorrect_cert_chain signature: %v", err)
	}
	if _, err := VerifyRIM(r, ProductionRoots.RIM, at); err == nil || !strings.Contains(err.Error(), "not the pinned root") {
		t.Errorf("incorrect_cert_chain: %v", err)
	}
	// Payload edited after signing.
	r = readRIM(t, "sdk-negative", "NV_GPU_DRIVER_GH100_570.124.03_expired.xml")
	if err := r.CheckSignature(); err == nil || !strings.Contains(err.Error(), "edited after signing") {
		t.Errorf("edited: %v", err)
	}
}

// TestRIMEdits flips one hash digit, and edits attributes: every change to
// the signed document fails.
func TestRIMEdits(t *testing.T) {
	raw := string(vectors.Read(t, "nvidia", "nvtrust-initial-hopper-545", "Driver_RIM_test_no_gpu.swidtag"))
	edits := map[string]func(string) string{
		"hash digit": func(s string) string {
			i := strings.Index(s, `active="True"`)
			j := i + strings.Index(s[i:], `Hash0="`) + len(`Hash0="`)
			c := "0"
			if s[j] == '0' {
				c = "1"
			}
			return s[:j] + c + s[j+1:]
		},
		"deactivate": func(s string) string { return strings.Replace(s, `active="True"`, `active="False"`, 1) },
		"version": func(s string) string {
			return strings.Replace(s, `colloquialVersion="545.00"`, `colloquialVersion="545.01"`, 1)
		},
		"signed info": func(s string) string {
			return strings.Replace(s, "<ds:DigestValue>", "<ds:DigestValue> ", 1)
		},
	}
	for name, f := range edits {
		r, err := ParseRIM([]byte(f(raw)))
		if err != nil {
			continue // rejected at parse: fine
		}
		if _, err := VerifyRIM(r, ProductionRoots.RIM, at2024); err == nil {
			t.Errorf("%s: edited RIM verified", name)
		}
	}
}

func TestRIMParseRejects(t *testing.T) {
	raw := string(vectors.Read(t, "nvidia", "nvtrust-initial-hopper-545", "Driver_RIM_test_no_gpu.swidtag"))
	cases := map[string]string{
		"doctype":      `<!DOCTYPE x [<!ENTITY a "b">]>` + raw,
		"not xml":      "hello",
		"two payloads": strings.Replace(raw, "</ns0:Payload>", "</ns0:Payload><ns0:Payload/>", 1),
		"no signature": raw[:strings.Index(raw, "<ds:Signature")] + "</SoftwareIdentity>",
		"bad c14n":     strings.Replace(raw, "xml-c14n11", "xml-exc-c14n", 1),
		"bad index":    strings.Replace(raw, `index="0"`, `index="x"`, 1),
	}
	for name, s := range cases {
		if _, err := ParseRIM([]byte(s)); err == nil {
			t.Errorf("%s: parsed", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestMeasurementsInitial545(t *testing.T) {
	rep, err := ParseReport(readReport(t, "nvtrust-initial-hopper-545", "attestationReport.txt"))
	if err != nil {
		t.Fatal(err)
	}
	drv := readRIM(t, "nvtrust-initial-hopper-545", "Driver_RIM_test_no_gpu.swidtag")
	vb := readRIM(t, "nvtrust-initial-hopper-545", "1010_0200_882_96005E0001_test_no_gpu.swidtag")
	c, err := CompareMeasurements(rep, drv, vb)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Mismatches) != 0 || c.Compared+len(c.Skipped) != 33 {
		t.Errorf("%+v", c)
	}
	if id := DriverRIMID(rep.Response.Opaque, Hopper); id != "NV_GPU_DRIVER_GH100_545.00" {
		t.Errorf("driver id %s", id)
	}
	if id := VBIOSRIMID(rep.Response.Opaque); id != "NV_GPU_VBIOS_1010_0200_882_96005E0001" {
		t.Errorf("vbios id %s", id)
	}
	// A different report does not match.
	rep2, _ := ParseReport(readReport(t, "sdk-hopper-580.159.03", "hopperAttestationReport.txt"))
	c, err = CompareMeasurements(rep2, drv, nil)
	if err != nil || len(c.Mismatches) == 0 {
		t.Errorf("mismatch not found: %v %+v", err, c)
	}
	t.Log(c.Mismatches[0])
}
