package main

import (
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/sworn-dev/sworn/attest/snp"
)

// TestVerifySNPSVSM checks `sworn verify snp --svsm-manifest` on a
// simulated SVSM vTPM report.
func TestVerifySNPSVSM(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	nonce := []byte(strings.Repeat("n", 64))
	ek := tpm2.Marshal(tpm2.RSAEKTemplate)
	ev, err := snp.NewSimChip(1, snp.SimTCB).SimSVSMEvidence(snp.SimReportOptions{Measurement: snp.SimMeasurement}, nonce, ek, at)
	if err != nil {
		t.Fatal(err)
	}
	var certs []byte
	for _, c := range ev.Certs {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	report, certsPath, crl := write("report.bin", ev.Report), write("certs.pem", certs), write("crl.der", ev.CRLs[0])
	pol := write("policy.yaml", []byte("version: 1\nroots: {amd: simulated}\nsnp:\n  vmpl: 0\n  measurements: ["+hex.EncodeToString(snp.SimMeasurement[:])+"]\n"))
	base := []string{"verify", "snp", "--report", report, "--certs", certsPath, "--crl", crl, "--policy", pol, "--at", "2026-11-27T00:00:00Z", "--report-data", hex.EncodeToString(nonce)}
	for _, tc := range []struct {
		name     string
		manifest []byte
		code     int
		want     string
	}{
		{"the EK", ek, 0, "VMPL0 SVSM report"},
		{"another EK", tpm2.Marshal(tpm2.ECCEKTemplate), 1, "manifest (the vTPM EK) was altered"},
		{"not an EK", []byte("not a key"), 2, "not a TPMT_PUBLIC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := sworn(t, append(base, "--svsm-manifest", write("manifest.bin", tc.manifest))...)
			if code != tc.code || !strings.Contains(out+stderr, tc.want) {
				t.Fatalf("exit %d (want %d); output %s%s", code, tc.code, out, stderr)
			}
		})
	}
}
