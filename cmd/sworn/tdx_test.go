package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/internal/vectors"
)

// TestVerifyTDXVectors: the dcap-qvl quote verifies offline with its
// collateral inside the collateral's window (UpToDate), fails after
// nextUpdate on tdx.collateral, and bad inputs are usage errors.
func TestVerifyTDXVectors(t *testing.T) {
	quote := vectors.Path(t, "tdx", "dcap-qvl", "tdx_quote.bin")
	coll := vectors.Path(t, "tdx", "dcap-qvl", "tdx_quote_collateral.json")
	dir := t.TempDir()
	pol := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\ntdx:\n  mrtd: [91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rd := strings.Repeat("00", 64)
	code, out, stderr := sworn(t, "verify", "tdx", "--quote", quote, "--collateral", coll, "--policy", pol, "--at", "2025-06-20T00:00:00Z", "--json")
	var r struct {
		Verdict string `json:"verdict"`
		Devices map[string]struct {
			Steps []struct {
				ID, Status, Detail string
			} `json:"steps"`
			Claims map[string]any `json:"claims"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, out, stderr)
	}
	if got := r.Devices["cpu0"].Claims["tcb_status"]; got != "UpToDate" {
		t.Fatalf("tcb_status %v\n%s", got, out)
	}
	for _, s := range r.Devices["cpu0"].Steps {
		if s.ID != "tdx.binding" && s.ID != "tdx.replay" && s.Status != "pass" {
			t.Fatalf("%s: %s %s", s.ID, s.Status, s.Detail)
		}
	}
	// The REPORTDATA of this sample is not zero: the binding fails, exit 1.
	if code, _, _ := sworn(t, "verify", "tdx", "--quote", quote, "--collateral", coll, "--report-data", rd, "--at", "2025-06-20T00:00:00Z"); code != 1 {
		t.Fatalf("wrong REPORTDATA: exit %d, want 1", code)
	}
	code, out, _ = sworn(t, "verify", "tdx", "--quote", quote, "--collateral", coll, "--at", "2025-08-01T00:00:00Z")
	if code != 1 || !strings.Contains(out, "tdx.collateral: the TCB info expired") {
		t.Fatalf("expired collateral: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"collateral as quote", []string{"--quote", coll}, "--quote " + coll},
		{"quote as collateral", []string{"--quote", quote, "--collateral", quote}, "--collateral " + quote},
		{"no quote", nil, "--quote: no file given"},
		{"long report data", []string{"--quote", quote, "--report-data", strings.Repeat("00", 65)}, "REPORTDATA is 64 bytes"},
	} {
		code, _, stderr := sworn(t, append([]string{"verify", "tdx"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.name, code, stderr, tc.want)
		}
	}
	code, out, _ = sworn(t, "inspect", quote)
	if code != 0 || !strings.Contains(out, `"kind": "tdx"`) || !strings.Contains(out, `"mrtd"`) {
		t.Fatalf("inspect: exit %d\n%s", code, out)
	}
	code, out, _ = sworn(t, "inspect", coll)
	if code != 0 || !strings.Contains(out, `"kind": "tdx-collateral"`) || !strings.Contains(out, `"fmspc": "b0c06f000000"`) {
		t.Fatalf("inspect collateral: exit %d\n%s", code, out)
	}
}

// TestVerifyTDXNoCollateral: a real quote without collateral verifies its
// signatures and chain, but its TCB is unknown: not verified (exit 1).
func TestVerifyTDXNoCollateral(t *testing.T) {
	quote := vectors.Path(t, "tdx", "gcp-cos-ccel", "cos-113-tdx-quote.dat")
	ccel := vectors.Path(t, "tdx", "gcp-cos-ccel", "ccel_data.dat")
	table := vectors.Path(t, "tdx", "gcp-cos-ccel", "ccel_table.dat")
	code, out, _ := sworn(t, "verify", "tdx", "--quote", quote, "--ccel", ccel, "--ccel-table", table, "--report-data", "00", "--at", "2025-01-01T00:00:00Z")
	if code != 1 || !strings.Contains(out, "✔ tdx.chain") || !strings.Contains(out, "✔ tdx.binding") || !strings.Contains(out, "✔ tdx.replay") || !strings.Contains(out, "skipped: no collateral given") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestSimBootTDX: sworn sim boot --tee tdx writes a bundle that verifies
// under a simulated TDX policy (exit 0), and is refused under production
// roots (exit 1).
func TestSimBootTDX(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "tdx.bundle")
	if code, _, stderr := sworn(t, "sim", "boot", "--tee", "tdx", "--out", bundle, "--at", "2026-11-27T00:00:00Z"); code != 0 {
		t.Fatalf("sim boot: exit %d: %s", code, stderr)
	}
	sim := filepath.Join(dir, "sim.yaml")
	prod := filepath.Join(dir, "prod.yaml")
	starter := filepath.Join(dir, "starter.yaml")
	if code, _, stderr := sworn(t, "policy", "init", "--simulated", "--tee", "tdx", "--out", starter); code != 0 {
		t.Fatalf("policy init --tee tdx: exit %d: %s", code, stderr)
	}
	if code, out, _ := sworn(t, "verify", "bundle", bundle, "--policy", starter, "--at", "2026-11-27T01:00:00Z"); code != 0 || !strings.Contains(out, "RTMR2 match") {
		t.Fatalf("the simulated TDX starter: exit %d\n%s", code, out)
	}
	for path, data := range map[string]string{
		sim:  "version: 1\nroots: {intel: simulated}\ntdx:\n  mrtd: [13a94db73650b8cec7058d849db0892c610fc8ece0082a986dd155ef0263655d7719d09ca6bc27f065b75588cdc0ea05]\n",
		prod: "version: 1\ntdx: {}\n",
	} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, _ := sworn(t, "verify", "bundle", bundle, "--policy", sim, "--at", "2026-11-27T01:00:00Z"); code != 0 || !strings.Contains(out, "SIMULATED") {
		t.Fatalf("simulated policy: exit %d\n%s", code, out)
	}
	if code, out, _ := sworn(t, "verify", "bundle", bundle, "--policy", prod, "--at", "2026-11-27T01:00:00Z"); code != 1 || !strings.Contains(out, "SIMULATED Intel root") {
		t.Fatalf("production policy: exit %d\n%s", code, out)
	}
	if code, _, _ := sworn(t, "sim", "boot", "--tee", "sev", "--out", bundle); code != exitUsage {
		t.Fatalf("--tee sev: exit %d", code)
	}
}

// TestVerifyTDXAzureHCL: an Azure TDX quote with its HCL report binds the
// runtime data's user-data.
func TestVerifyTDXAzureHCL(t *testing.T) {
	quote := vectors.Path(t, "tdx", "azure-tdx-vtpm", "td-quote.bin")
	hcl := vectors.Path(t, "tdx", "azure-tdx-vtpm", "hcl-report.bin")
	code, out, _ := sworn(t, "verify", "tdx", "--quote", quote, "--hcl", hcl, "--report-data", strings.Repeat("00", 64), "--at", "2025-01-01T00:00:00Z")
	if code != 1 || !strings.Contains(out, "✔ tdx.binding") || !strings.Contains(out, "user-data") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if code, _, stderr := sworn(t, "verify", "tdx", "--quote", quote, "--hcl", quote); code != exitUsage || !strings.Contains(stderr, "HCL") {
		t.Fatalf("quote as --hcl: exit %d %s", code, stderr)
	}
}

// TestTDXCollateralCmd: sworn tdx collateral assembles go-tdx-guest's saved
// PCS responses into collateral with which its quote verifies as far as its
// README says (the TCB level does not match: tdx.tcb fails).
func TestTDXCollateralCmd(t *testing.T) {
	p := func(name string) string { return vectors.Path(t, "tdx", "go-tdx-guest", name) }
	out := filepath.Join(t.TempDir(), "collateral.json")
	args := []string{"tdx", "collateral", "--tcb-info", p("sample_tcbInfo_response"), "--tcb-info-chain", p("tcb_info_issuer_chain.pem"),
		"--qe-identity", p("sample_qeIdentity_response"), "--qe-identity-chain", p("qe_identity_issuer_chain.pem"),
		"--pck-crl", p("pckcrl"), "--pck-crl-chain", p("pck_crl_issuer_chain.pem"), "--root-crl", p("rootcrl.der"), "--out", out}
	if code, _, stderr := sworn(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if code, _, stderr := sworn(t, args...); code != exitUsage || !strings.Contains(stderr, "exists") {
		t.Fatalf("overwrite: exit %d: %s", code, stderr)
	}
	code, o, _ := sworn(t, "verify", "tdx", "--quote", p("tdx_prod_quote_SPR_E4.dat"), "--collateral", out, "--at", "2023-06-20T00:00:00Z")
	if code != 1 || !strings.Contains(o, "✔ tdx.collateral") || !strings.Contains(o, "✘ tdx.tcb") || !strings.Contains(o, "no matching TCB level found") {
		t.Fatalf("exit %d\n%s", code, o)
	}
	bad := append(append([]string{}, args[:3]...), append([]string{p("tdx_prod_quote_SPR_E4.dat")}, args[4:len(args)-2]...)...)
	if code, _, stderr := sworn(t, bad...); code != exitUsage || !strings.Contains(stderr, "TCB info response") {
		t.Fatalf("a quote as --tcb-info: exit %d: %s", code, stderr)
	}
}
