package policy

import "testing"

func TestNVGPUSection(t *testing.T) {
	p, err := Parse("t", []byte("version: 1\nnvgpu:\n  min_driver: \"550.90.07\"\n  min_vbios: \"96.00.9F.00.01\"\n  ocsp_allow: [good, hold]\n"))
	if err != nil {
		t.Fatal(err)
	}
	n := p.NVGPU
	if !n.OCSPAllowed("hold") || n.OCSPAllowed("revoked") || n.TrailingIsFatal() || n.RIMsOptional {
		t.Errorf("%+v", n)
	}
	if !Default().NVGPU.OCSPAllowed("good") || Default().NVGPU.OCSPAllowed("unknown") {
		t.Error("default OCSP states")
	}
	for _, bad := range []string{
		"nvgpu:\n  ocsp_allow: [fine]\n",
		"nvgpu:\n  trailing_bytes: ignore\n",
		"nvgpu:\n  min_driver: \"5x0\"\n",
		"nvgpu:\n  min_vbios: \"96.zz\"\n",
		"nvgpu:\n  unknown_field: 1\n",
	} {
		if _, err := Parse("t", []byte("version: 1\n"+bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	for _, c := range []struct {
		a, b string
		base int
		want int
	}{{"550.90.07", "550.90.07", 10, 0}, {"550.144.03", "550.90.07", 10, 1}, {"545.00", "550.54.15", 10, -1}, {"96.00.9F.00.01", "96.00.A0.00.01", 16, -1}, {"580", "580.0", 10, 0}} {
		if got, err := CompareVersions(c.a, c.b, c.base); err != nil || got != c.want {
			t.Errorf("%s vs %s: %d %v", c.a, c.b, got, err)
		}
	}
}
