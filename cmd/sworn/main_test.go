package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/internal/vectors"
)

const testAt = "2026-11-27T01:00:00Z"

// sworn runs the command line in process and returns its exit code, stdout and stderr.
func sworn(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// setup writes a simulated bundle and both starter policies into a temp dir.
func setup(t *testing.T) (dir, bundle, simPolicy, prodPolicy string) {
	t.Helper()
	dir = t.TempDir()
	bundle = filepath.Join(dir, "node.bundle")
	simPolicy = filepath.Join(dir, "sim.yaml")
	prodPolicy = filepath.Join(dir, "prod.yaml")
	for _, args := range [][]string{
		{"sim", "boot", "--out", bundle, "--seed", "3", "--at", "2026-11-27T00:00:00Z"},
		{"policy", "init", "--simulated", "--out", simPolicy},
		{"policy", "init", "--out", prodPolicy},
	} {
		if code, _, stderr := sworn(t, args...); code != 0 {
			t.Fatalf("sworn %v: exit %d: %s", args, code, stderr)
		}
	}
	return
}

func TestSimulatedBundle(t *testing.T) {
	_, bundle, simPolicy, prodPolicy := setup(t)

	code, out, _ := sworn(t, "verify", "bundle", bundle, "--policy", simPolicy, "--at", testAt, "--json")
	if code != 0 {
		t.Fatalf("simulated bundle under the simulated starter policy: exit %d\n%s", code, out)
	}
	var r attest.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Verdict != attest.Affirming || !r.Simulated {
		t.Fatalf("verdict %s simulated %v", r.Verdict, r.Simulated)
	}
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	for _, k := range []string{"verdict", "simulated", "at", "devices", "ledger"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON result lacks %q", k)
		}
	}

	code, out, _ = sworn(t, "verify", "bundle", bundle, "--policy", prodPolicy, "--at", testAt)
	if code != 1 {
		t.Fatalf("simulated bundle under the production policy: exit %d, want 1", code)
	}
	if !strings.Contains(out, "CONTRAINDICATED") || !strings.Contains(out, "simulated root is not trusted") {
		t.Fatalf("production policy output does not give the reason:\n%s", out)
	}

	code, out, _ = sworn(t, "explain", bundle, "--policy", simPolicy, "--at", testAt)
	if code != 0 || strings.Count(out, "SIMULATED:") < 2 || !strings.Contains(out, "✔ cpu0 snp.signature") || !strings.Contains(out, "1. Hardware roots of trust") ||
		!strings.Contains(out, "3. Measured boot (vTPM) — affirming") || !strings.Contains(out, "Rests on:") || !strings.Contains(out, "Assumed:") {
		t.Fatalf("explain: exit %d\n%s", code, out)
	}
	if _, text, _ := sworn(t, "verify", "bundle", bundle, "--policy", simPolicy, "--at", testAt); text == out {
		t.Fatal("explain prints the same as verify bundle")
	}

	// Every output of a simulated appraisal says SIMULATED, including
	// failing ones under a policy that trusts simulated roots.
	code, out, _ = sworn(t, "verify", "bundle", bundle, "--policy", simPolicy, "--at", "2026-12-30T00:00:00Z")
	if code != 1 || !strings.Contains(out, "SIMULATED") {
		t.Fatalf("expired simulated bundle: exit %d\n%s", code, out)
	}
}

func TestSimBootDeterministic(t *testing.T) {
	dir := t.TempDir()
	var files [3][]byte
	for i, seed := range []string{"5", "5", "6"} {
		p := filepath.Join(dir, "b"+string(rune('0'+i)))
		if code, _, stderr := sworn(t, "sim", "boot", "--no-tpm", "--out", p, "--seed", seed, "--at", "2026-11-27T00:00:00Z"); code != 0 {
			t.Fatal(stderr)
		}
		files[i], _ = os.ReadFile(p)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatal("same seed and time gave different bundles")
	}
	if bytes.Equal(files[0], files[2]) {
		t.Fatal("different seeds gave the same bundle")
	}
}

func TestNonce(t *testing.T) {
	dir, _, simPolicy, _ := setup(t)
	bundle := filepath.Join(dir, "challenge.bundle")
	nonce := strings.Repeat("ab", 32)
	if code, _, stderr := sworn(t, "sim", "boot", "--out", bundle, "--nonce", nonce, "--at", "2026-11-27T00:00:00Z"); code != 0 {
		t.Fatal(stderr)
	}
	if code, out, _ := sworn(t, "verify", "bundle", bundle, "--policy", simPolicy, "--nonce", nonce, "--at", testAt); code != 0 {
		t.Fatalf("right nonce: exit %d\n%s", code, out)
	}
	code, out, _ := sworn(t, "verify", "bundle", bundle, "--policy", simPolicy, "--nonce", strings.Repeat("cd", 32), "--at", testAt)
	if code != 1 || !strings.Contains(out, "✘ bundle.freshness") {
		t.Fatalf("replayed bundle with another nonce: exit %d\n%s", code, out)
	}
	// explain takes the same inputs and gives the same verdict.
	if code, out, _ := sworn(t, "explain", bundle, "--policy", simPolicy, "--nonce", nonce, "--at", testAt); code != 0 || !strings.Contains(out, "✔ bundle bundle.freshness") {
		t.Fatalf("explain with the right nonce: exit %d\n%s", code, out)
	}
	code, out, _ = sworn(t, "explain", bundle, "--policy", simPolicy, "--nonce", strings.Repeat("cd", 32), "--at", testAt)
	if code != 1 || !strings.Contains(out, "✘ bundle bundle.freshness") {
		t.Fatalf("explain with another nonce: exit %d\n%s", code, out)
	}
	// Without --nonce, freshness is unchecked: at best a warning.
	code, out, _ = sworn(t, "verify", "bundle", bundle, "--policy", simPolicy, "--at", testAt)
	if code != 1 || !strings.Contains(out, "WARNING") {
		t.Fatalf("challenge bundle without --nonce: exit %d\n%s", code, out)
	}
}

func TestVerifySNPVectors(t *testing.T) {
	report := vectors.Path(t, "snp", "go-sev-guest-milan", "attestation.bin")
	vcek := vectors.Path(t, "snp", "go-sev-guest-milan", "vcek.der")
	crl := vectors.Path(t, "snp", "amd-crls", "milan_vcek_crl.der")
	if code, _, _ := sworn(t, "verify", "snp", "--report", report, "--certs", vcek, "--at", "2026-01-01T00:00:00Z"); code != 1 {
		t.Fatalf("without --report-data and policy the verdict is at best a warning: exit %d", code)
	}
	code, out, _ := sworn(t, "verify", "snp", "--report", report, "--certs", vcek, "--crl", crl, "--report-data", "0102030405", "--at", "2026-01-01T00:00:00Z", "--json")
	var r attest.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	for _, id := range []string{"snp.signature", "snp.chain", "snp.revocation", "snp.binding"} {
		if st := r.Devices["cpu0"].Step(id); st == nil || st.Status != attest.Pass {
			t.Errorf("%s: %+v", id, st)
		}
	}
	// The policy checks are skipped without --policy: a warning, exit 1.
	if code != 1 || r.Verdict != attest.Warning {
		t.Errorf("exit %d verdict %s", code, r.Verdict)
	}
	code, out, _ = sworn(t, "verify", "snp", "--report", report, "--certs", vcek, "--report-data", "0102030406", "--at", "2026-01-01T00:00:00Z")
	if code != 1 || !strings.Contains(out, "✘ snp.binding") {
		t.Fatalf("wrong --report-data: exit %d\n%s", code, out)
	}

	hcl := vectors.Path(t, "snp", "azure-cvm-milan-vtpm", "hcl-report.bin")
	hclCerts := vectors.Path(t, "snp", "azure-cvm-milan-vtpm", "vcek.pem")
	code, out, _ = sworn(t, "verify", "snp", "--report", hcl, "--certs", hclCerts, "--report-data", strings.Repeat("00", 64), "--at", "2026-01-01T00:00:00Z")
	if !strings.Contains(out, "✔ snp.binding") || !strings.Contains(out, "✔ snp.chain") {
		t.Fatalf("Azure HCL report: exit %d\n%s", code, out)
	}
}

func TestBadInput(t *testing.T) {
	dir, bundle, simPolicy, _ := setup(t)
	good, _ := os.ReadFile(bundle)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("truncated.bundle", good[:len(good)/3])
	oversized := write("oversized.bundle", make([]byte, attest.MaxBundleSize+10))
	text := write("text.bundle", []byte("hello, world\n"))
	empty := write("empty.bundle", nil)
	badPolicy := write("bad.yaml", []byte("version: 1\nsnp:\n  allow_debugg: true\n"))
	shortReport := write("short.bin", make([]byte, 100))
	chip := snp.NewSimChip(1, snp.SimTCB)
	rawReport, err := chip.Report(snp.SimReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	simReport := write("sim-report.bin", rawReport)
	var many []byte
	for range snp.MaxCerts + 1 {
		many = append(many, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chip.VCEK.Raw})...)
	}
	tooManyCerts := write("many.pem", many)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"truncated bundle", []string{"verify", "bundle", truncated, "--policy", simPolicy}, []string{truncated, "truncated"}},
		{"oversized bundle", []string{"verify", "bundle", oversized, "--policy", simPolicy}, []string{oversized, "limit"}},
		{"wrong format", []string{"verify", "bundle", text, "--policy", simPolicy}, []string{text, "not a sworn bundle"}},
		{"empty file", []string{"verify", "bundle", empty, "--policy", simPolicy}, []string{empty, "empty"}},
		{"missing file", []string{"verify", "bundle", filepath.Join(dir, "nope"), "--policy", simPolicy}, []string{"nope", "no such file"}},
		{"missing policy flag", []string{"verify", "bundle", bundle}, []string{"--policy is required"}},
		{"bad policy", []string{"verify", "bundle", bundle, "--policy", badPolicy}, []string{badPolicy, "allow_debugg", "[3:3]"}},
		{"bad nonce hex", []string{"verify", "bundle", bundle, "--policy", simPolicy, "--nonce", "xyz"}, []string{"--nonce", "hex"}},
		{"bad --at", []string{"verify", "bundle", bundle, "--policy", simPolicy, "--at", "yesterday"}, []string{"--at", "RFC 3339"}},
		{"bad report-data hex", []string{"verify", "snp", "--report", shortReport, "--report-data", "zz"}, []string{"--report-data", "hex"}},
		{"short report", []string{"verify", "snp", "--report", shortReport}, []string{shortReport, "100 bytes"}},
		{"too many certificates", []string{"verify", "snp", "--report", simReport, "--certs", tooManyCerts}, []string{simReport, "certificates; the limit is"}},
		{"truncated bundle as report", []string{"verify", "snp", "--report", truncated}, []string{truncated}},
		{"unknown command", []string{"frobnicate"}, []string{"unknown command"}},
		{"unknown flag", []string{"verify", "bundle", bundle, "--polcy", simPolicy}, []string{"unknown flag"}},
		{"inspect garbage", []string{"inspect", text}, []string{text, "not a sworn bundle"}},
		{"sim boot without --out", []string{"sim", "boot"}, []string{"--out is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := sworn(t, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
		})
	}
}

func TestInspect(t *testing.T) {
	_, bundle, _, _ := setup(t)
	code, out, stderr := sworn(t, "inspect", bundle)
	if code != 0 {
		t.Fatal(stderr)
	}
	var v struct {
		Version  int
		Binding  string
		Evidence []struct {
			Kind string
			Body struct {
				Report       map[string]any
				Certificates []map[string]any
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || len(v.Evidence) != 2 || v.Evidence[0].Kind != "snp" || len(v.Evidence[0].Body.Certificates) != 3 || v.Evidence[1].Kind != "tpm" {
		t.Fatalf("inspect output: %s", out)
	}
	hcl, _ := v.Evidence[0].Body.Report["hcl"].(map[string]any)
	if hcl["user_data"] != v.Binding {
		t.Fatalf("HCL user-data %v is not the binding %s", hcl["user_data"], v.Binding)
	}
	if !strings.Contains(out, `"AK": "`) || !strings.Contains(out, `"Quotes": [`) {
		t.Fatalf("inspect does not decode the TPM entry:\n%s", out)
	}
	for _, tc := range []struct {
		path []string
		want []string
	}{
		{[]string{"snp", "azure-cvm-genoa-openpcc", "hcl-report.bin"}, []string{"hcl_ak_pub", "Genoa"}},
		{[]string{"nvidia", "sdk-hopper-580.159.03", "hopperAttestationReport.txt"}, []string{`"kind": "nvgpu"`, `"Nonce": "`}},
		{[]string{"nvidia", "sdk-rims", "NV_GPU_DRIVER_GH100_550.144.03.xml"}, []string{`"ColloquialVersion": "550.144.03"`}},
	} {
		code, out, stderr := sworn(t, "inspect", vectors.Path(t, tc.path...))
		for _, w := range tc.want {
			if code != 0 || !strings.Contains(out, w) {
				t.Fatalf("inspect %s: exit %d, %q missing\n%s%s", tc.path[len(tc.path)-1], code, w, out, stderr)
			}
		}
	}
}

// TestNoSecretsInOutput checks that no command prints the simulated node's
// private keys.
func TestNoSecretsInOutput(t *testing.T) {
	dir, bundle, simPolicy, _ := setup(t)
	var all strings.Builder
	for _, args := range [][]string{
		{"verify", "bundle", bundle, "--policy", simPolicy, "--at", testAt, "--json"},
		{"explain", bundle, "--policy", simPolicy, "--at", testAt},
		{"inspect", bundle},
		{"sim", "boot", "--out", filepath.Join(dir, "x"), "--seed", "3", "--at", "2026-11-27T00:00:00Z"},
	} {
		_, out, errs := sworn(t, args...)
		all.WriteString(out + errs)
	}
	for _, secret := range simSecrets(t, 3) {
		if strings.Contains(all.String(), secret) {
			t.Fatalf("output contains a private key (%s…)", secret[:8])
		}
	}
}

// TestOperationalFailureExitCode: a log that cannot be reached is a
// failure (1), not bad input (2).
func TestOperationalFailureExitCode(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ci")
	if code, _, stderr := sworn(t, "keygen", "--kind", "publisher", "--name", "ci.exit.test", "--out", prefix); code != 0 {
		t.Fatal(stderr)
	}
	_, tmpl, _ := sworn(t, "release", "template")
	rec := filepath.Join(dir, "rec.json")
	os.WriteFile(rec, []byte(tmpl), 0o644)
	code, _, stderr := sworn(t, "release", "publish", "--log", "http://127.0.0.1:1", "--key", prefix+".key", rec, "--out", filepath.Join(dir, "p"), "--timeout", "2s")
	if code != 1 {
		t.Fatalf("publish to a closed port: exit %d, want 1: %s", code, stderr)
	}
	// The same with a malformed record is bad input.
	os.WriteFile(rec, []byte("{"), 0o644)
	if code, _, _ := sworn(t, "release", "publish", "--log", "http://127.0.0.1:1", "--key", prefix+".key", rec, "--out", filepath.Join(dir, "p")); code != 2 {
		t.Fatalf("malformed record: exit %d, want 2", code)
	}
}
