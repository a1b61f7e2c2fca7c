package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/internal/vectors"
)

func runSworn(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVerifyGPU(t *testing.T) {
	dir := vectors.Path(t, "nvidia", "nvtrust-initial-hopper-545")
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("version: 1\nnvgpu:\n  skip_revocation: true\n"), 0o644)
	base := []string{"verify", "gpu", "--report", filepath.Join(dir, "attestationReport.txt"), "--certs", filepath.Join(dir, "gpuAkCertChain.txt"),
		"--nonce", "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e", "--at", "2024-06-01T00:00:00Z"}
	rims := []string{"--rim", filepath.Join(dir, "Driver_RIM_test_no_gpu.swidtag"), "--rim", filepath.Join(dir, "1010_0200_882_96005E0001_test_no_gpu.swidtag")}

	code, out, errs := runSworn(t, append(append(base, rims...), "--policy", pol, "--json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	var res struct {
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Verdict != "affirming" {
		t.Errorf("%v %s", err, out)
	}
	// Without RIMs: a warning, exit 1.
	if code, out, _ := runSworn(t, append(base, "--policy", pol)...); code != 1 || !strings.Contains(out, "gpu.measurements") {
		t.Errorf("no RIMs: exit %d\n%s", code, out)
	}
	// Wrong nonce: exit 1.
	bad := append([]string(nil), base...)
	bad[7] = strings.Repeat("ab", 32)
	if code, _, _ := runSworn(t, append(bad, rims...)...); code != 1 {
		t.Errorf("wrong nonce: exit %d", code)
	}
	// Bad input: exit 2, never a panic.
	garbage := filepath.Join(t.TempDir(), "garbage")
	os.WriteFile(garbage, []byte("11e0 not a report"), 0o644)
	for name, args := range map[string][]string{
		"garbage report": {"verify", "gpu", "--report", garbage, "--certs", filepath.Join(dir, "gpuAkCertChain.txt")},
		"missing file":   {"verify", "gpu", "--report", filepath.Join(dir, "nope"), "--certs", filepath.Join(dir, "gpuAkCertChain.txt")},
		"bad certs":      {"verify", "gpu", "--report", filepath.Join(dir, "attestationReport.txt"), "--certs", garbage},
		"bad nonce":      append(append([]string(nil), base[:6]...), "--nonce", "zz"),
		"short nonce":    append(append([]string(nil), base[:6]...), "--nonce", "abcd"),
		"bad rim":        append(append([]string(nil), base...), "--rim", garbage),
		"bad at":         append(append([]string(nil), base[:8]...), "--at", "yesterday"),
		"no report":      {"verify", "gpu", "--certs", filepath.Join(dir, "gpuAkCertChain.txt")},
	} {
		if code, _, errs := runSworn(t, args...); code != 2 {
			t.Errorf("%s: exit %d (%s)", name, code, errs)
		}
	}
}

func TestGPURIMsFetch(t *testing.T) {
	rim := vectors.Read(t, "nvidia", "nvtrust-initial-hopper-545", "Driver_RIM_test_no_gpu.swidtag")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/v1/rim/")
		if id != "NV_GPU_DRIVER_GH100_545.00" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"id": id, "rim": base64.StdEncoding.EncodeToString(rim)})
	}))
	defer srv.Close()
	out := t.TempDir()
	code, stdout, errs := runSworn(t, "gpu", "rims", "fetch", "--url", srv.URL+"/v1/rim/", "--id", "NV_GPU_DRIVER_GH100_545.00", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, errs)
	}
	got, err := os.ReadFile(filepath.Join(out, "NV_GPU_DRIVER_GH100_545.00.xml"))
	if err != nil || !bytes.Equal(got, rim) {
		t.Errorf("fetched RIM differs: %v", err)
	}
	if code, _, _ := runSworn(t, "gpu", "rims", "fetch", "--url", srv.URL+"/v1/rim/", "--id", "NV_GPU_DRIVER_GH100_1.0", "--out", out); code != 1 {
		t.Errorf("missing RIM: exit %d", code)
	}
	if code, _, _ := runSworn(t, "gpu", "rims", "fetch", "--out", out); code != 2 {
		t.Errorf("no id: exit %d", code)
	}
}
