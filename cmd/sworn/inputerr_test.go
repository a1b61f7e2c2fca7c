package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/internal/vectors"
)

// pngBytes is the start of a PNG with a terminal escape sequence in it: what
// a user gets when they give the wrong file.
const pngBytes = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x04\x00\x00\x1b[31m\x1b[2J\x07rest of the image"

// tpmFiles writes the TPM evidence of a simulated bundle in tpm2-tools'
// formats: quote.msg (-m), quote.sig (-s), ak.pub, pcrs.json and the event log.
func tpmFiles(t *testing.T, dir, bundle string) (quote, sig, ak, pcrs, eventlog string) {
	t.Helper()
	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range b.Evidence {
		if e.Kind != attest.KindTPM {
			continue
		}
		ev, err := tpm.ParseEvidence(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		pj, err := json.Marshal(ev.Quotes[0].PCRs)
		if err != nil {
			t.Fatal(err)
		}
		w := func(name string, d []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, d, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		return w("quote.msg", ev.Quotes[0].Attest), w("quote.sig", ev.Quotes[0].Signature), w("ak.pub", ev.AK), w("pcrs.json", pj), w("eventlog.bin", ev.EventLog)
	}
	t.Fatal("the simulated bundle has no TPM entry")
	return
}

// printable reports the first byte of s that a terminal would not print as
// text (control bytes but newline and tab, invalid UTF-8), or -1.
func printable(s string) int {
	for i, r := range s {
		if r == utf8.RuneError || (r != '\n' && r != '\t' && !unicode.IsPrint(r)) {
			return i
		}
	}
	return -1
}

// TestInputErrors: every input error exits 2, names the flag or file, says
// what was expected, and prints nothing a terminal would not show as text.
func TestInputErrors(t *testing.T) {
	dir, bundle, simPolicy, _ := setup(t)
	quote, sig, ak, pcrs, eventlog := tpmFiles(t, dir, bundle)
	png := filepath.Join(dir, "photo.png")
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(png, []byte(pngBytes), 0o644)
	os.WriteFile(empty, nil, 0o644)
	gdir := vectors.Path(t, "nvidia", "nvtrust-initial-hopper-545")
	gpu := []string{"verify", "gpu", "--report", filepath.Join(gdir, "attestationReport.txt"), "--certs", filepath.Join(gdir, "gpuAkCertChain.txt")}
	tpmArgs := []string{"verify", "tpm", "--quote", quote, "--sig", sig, "--ak", ak, "--pcrs", pcrs}
	with := func(base []string, more ...string) []string { return append(append([]string(nil), base...), more...) }

	// A sanity check: the TPM files verify (not bad input) without the errors below.
	if code, out, stderr := sworn(t, with(tpmArgs, "--eventlog", eventlog)...); code == exitUsage {
		t.Fatalf("the good TPM files are bad input: %s%s", out, stderr)
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"empty policy", []string{"verify", "bundle", bundle, "--policy", empty}, []string{"policy " + empty + " is empty", "sworn policy init"}},
		{"PNG policy", []string{"verify", "bundle", bundle, "--policy", png}, []string{"policy " + png, "YAML", `\x89PNG`}},
		{"PNG policy check", []string{"policy", "check", png}, []string{png, "YAML"}},
		{"PNG bundle", []string{"verify", "bundle", png, "--policy", simPolicy}, []string{"bundle " + png, "not a sworn bundle"}},
		{"missing bundle argument", []string{"verify", "bundle", "--policy", simPolicy}, []string{"sworn: verify bundle: accepts 1 arg", "usage: sworn verify bundle FILE"}},
		{"missing explain argument", []string{"explain", "--policy", simPolicy}, []string{"sworn: explain: accepts 1 arg", "usage: sworn explain FILE"}},
		{"missing inspect argument", []string{"inspect"}, []string{"usage: sworn inspect FILE"}},
		{"PNG --rim", with(gpu, "--rim", png), []string{"--rim " + png, "expected a RIM", `\x89PNG`}},
		{"PNG --ocsp", with(gpu, "--ocsp", png), []string{"--ocsp " + png, "expected a DER OCSP response"}},
		{"PNG gpu --report", []string{"verify", "gpu", "--report", png, "--certs", png}, []string{"--report " + png, "expected an NVIDIA GPU attestation report"}},
		{"PNG gpu --certs", with(gpu[:4], "--certs", png), []string{"--certs " + png, "expected the device certificate chain"}},
		{"PNG --quote", []string{"verify", "tpm", "--quote", png, "--sig", sig, "--ak", ak, "--pcrs", pcrs}, []string{"--quote " + png, "expected a TPMS_ATTEST (tpm2_quote -m)"}},
		{"PNG --sig", []string{"verify", "tpm", "--quote", quote, "--sig", png, "--ak", ak, "--pcrs", pcrs}, []string{"--sig " + png, "expected a TPMT_SIGNATURE (tpm2_quote -s)"}},
		{"PNG --ak", []string{"verify", "tpm", "--quote", quote, "--sig", sig, "--ak", png, "--pcrs", pcrs}, []string{"--ak " + png, "expected a TPM2B_PUBLIC"}},
		{"PNG --pcrs", []string{"verify", "tpm", "--quote", quote, "--sig", sig, "--ak", ak, "--pcrs", png}, []string{"--pcrs " + png, "tpm2_quote -o"}},
		{"no --pcrs", []string{"verify", "tpm", "--quote", quote, "--sig", sig, "--ak", ak}, []string{"--pcrs", "tpm2_quote"}},
		{"PNG --eventlog", with(tpmArgs, "--eventlog", png), []string{"--eventlog " + png, "expected a TCG PC Client event log"}},
		{"missing --eventlog", with(tpmArgs, "--eventlog", filepath.Join(dir, "nope.bin")), []string{"--eventlog", "nope.bin"}},
		{"PNG --evidence", []string{"verify", "tpm", "--evidence", png}, []string{"--evidence " + png, "expected sworn TPM evidence"}},
		{"PNG --ak-certs", with(tpmArgs, "--ak-certs", png), []string{"--ak-certs " + png}},
		{"PNG snp --report", []string{"verify", "snp", "--report", png}, []string{"--report " + png}},
		{"PNG snp --certs", []string{"verify", "snp", "--report", png, "--certs", png}, []string{"--report " + png}},
		{"PNG --release", []string{"sim", "boot", "--release", png, "--out", filepath.Join(dir, "x")}, []string{"--release " + png}},
		{"sim boot --out in a missing directory", []string{"sim", "boot", "--out", filepath.Join(dir, "nodir", "node.bundle")}, []string{"--out", filepath.Join(dir, "nodir", "node.bundle"), "does not exist"}},
		{"policy init --out in a missing directory", []string{"policy", "init", "--out", filepath.Join(dir, "nodir", "p.yaml")}, []string{"--out", "does not exist"}},
		{"PNG inspect", []string{"inspect", png}, []string{png}},
		{"control bytes in a flag", []string{"verify", "bundle", bundle, "--policy", simPolicy, "--\x1b[2Jx"}, []string{"unknown flag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := sworn(t, tc.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2\nstdout %s\nstderr %q", code, out, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
			if i := printable(out + stderr); i >= 0 {
				t.Errorf("output has a non-printable byte at %d: %q", i, out+stderr)
			}
			for _, leak := range []string{"cbor:", "asn1:", "unmarshalling field", "struct of type", "Go struct field", ".tmp"} {
				if strings.Contains(stderr, leak) {
					t.Errorf("stderr leaks %q: %s", leak, stderr)
				}
			}
		})
	}
}

func TestHideInternals(t *testing.T) {
	for in, want := range map[string]string{
		"--quote q: quote is not a TPMS_ATTEST: unmarshalling field 3 of struct of type 'tpm2.TPMSAttest'; expected a TPMS_ATTEST": "--quote q: quote is not a TPMS_ATTEST: malformed encoding; expected a TPMS_ATTEST",
		"bundle b: cbor: cannot unmarshal array into Go struct field attest.Bundle.Keys":                                           "bundle b: malformed encoding",
		"--ocsp o: asn1: structure error: tags don't match; expected a DER OCSP response":                                          "--ocsp o: malformed encoding; expected a DER OCSP response",
		"plain: nothing to hide": "plain: nothing to hide",
	} {
		if got := hideInternals(in); got != want {
			t.Errorf("hideInternals(%q)\n= %q\nwant %q", in, got, want)
		}
	}
}
