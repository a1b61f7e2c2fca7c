package nvgpu

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
	"github.com/sworn-dev/sworn/policy"
)

func mustPolicy(t testing.TB, y string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test", []byte("version: 1\n"+y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// vectorEvidence builds an entry body from vector files.
func vectorEvidence(t testing.TB, dir, report, chain string, rims ...[]string) []byte {
	t.Helper()
	certs, err := ParseCertChain(vectors.Read(t, "nvidia", dir, chain))
	if err != nil {
		t.Fatal(err)
	}
	ev := &Evidence{Report: readReport(t, dir, report)}
	for _, c := range certs {
		ev.Certs = append(ev.Certs, c.Raw)
	}
	for _, r := range rims {
		ev.RIMs = append(ev.RIMs, vectors.Read(t, append([]string{"nvidia"}, r...)...))
	}
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	rim545Driver = []string{"nvtrust-initial-hopper-545", "Driver_RIM_test_no_gpu.swidtag"}
	rim545VBIOS  = []string{"nvtrust-initial-hopper-545", "1010_0200_882_96005E0001_test_no_gpu.swidtag"}
	nonce545     = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e"
)

func verify545(t *testing.T, pol *policy.Policy, nonce string, rims ...[]string) *attest.Section {
	t.Helper()
	body := vectorEvidence(t, "nvtrust-initial-hopper-545", "attestationReport.txt", "gpuAkCertChain.txt", rims...)
	n, _ := hex.DecodeString(nonce)
	v := NewVerifier(nil).WithNonce(n)
	r := attest.VerifyEntry(context.Background(), v, attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, at2024, pol, nil)
	return r.Devices["gpu0"]
}

func stepStatus(s *attest.Section, id string) attest.Status {
	if st := s.Step(id); st != nil {
		return st.Status
	}
	return "absent"
}

func dump(t *testing.T, s *attest.Section) {
	t.Helper()
	for _, st := range s.Steps {
		t.Logf("%-18s %-4s %s", st.ID, st.Status, st.Detail)
	}
}

// TestAffirming545: the initial nvtrust set with both RIMs is affirming at
// 2024-06-01 (no OCSP responses exist for it, so the policy skips
// revocation).
func TestAffirming545(t *testing.T) {
	pol := mustPolicy(t, "nvgpu:\n  skip_revocation: true\n  min_driver: \"545.00\"\n  min_vbios: \"96.00.5E.00.01\"\n")
	s := verify545(t, pol, nonce545, rim545Driver, rim545VBIOS)
	if s.Verdict != attest.Affirming {
		dump(t, s)
		t.Fatalf("verdict %s", s.Verdict)
	}
	for _, id := range []string{"gpu.parse", "gpu.arch", "gpu.signature", "gpu.chain", "gpu.nonce", "gpu.rim.driver", "gpu.rim.vbios", "gpu.measurements", "gpu.policy"} {
		if st := stepStatus(s, id); st != attest.Pass {
			t.Errorf("%s: %s", id, st)
		}
	}
	if s.Claims["measres"] != "success" || s.Claims["hwmodel"] != "GH100 A01 GSP BROM" || s.Claims["x-nvidia-gpu-driver-version"] != "545.00" {
		t.Errorf("claims %v", s.Claims)
	}
	// The same at a time when the RIM signers have expired: not affirming.
	body := vectorEvidence(t, "nvtrust-initial-hopper-545", "attestationReport.txt", "gpuAkCertChain.txt", rim545Driver, rim545VBIOS)
	n, _ := hex.DecodeString(nonce545)
	r := attest.VerifyEntry(context.Background(), NewVerifier(nil).WithNonce(n), attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), pol, nil)
	if s := r.Devices["gpu0"]; stepStatus(s, "gpu.rim.driver") != attest.Fail || s.Claims["x-nvidia-gpu-driver-rim-cert-chain"].(map[string]any)["x-nvidia-cert-status"] != "expired" {
		dump(t, s)
		t.Errorf("expired RIM not refused")
	}
	// A floor above the driver fails the policy step.
	s = verify545(t, mustPolicy(t, "nvgpu:\n  skip_revocation: true\n  min_driver: \"550.54.15\"\n"), nonce545, rim545Driver, rim545VBIOS)
	if stepStatus(s, "gpu.policy") != attest.Fail {
		t.Errorf("floor not applied")
	}
}

func TestNoRIMsIsWarning(t *testing.T) {
	s := verify545(t, mustPolicy(t, "nvgpu:\n  skip_revocation: true\n"), nonce545)
	if s.Verdict != attest.Warning || stepStatus(s, "gpu.measurements") != attest.Skip {
		dump(t, s)
		t.Errorf("verdict %s", s.Verdict)
	}
	s = verify545(t, nil, nonce545, rim545Driver, rim545VBIOS)
	if s.Verdict != attest.Warning || stepStatus(s, "gpu.policy") != attest.Skip || stepStatus(s, "gpu.ocsp") != attest.Skip {
		dump(t, s)
		t.Errorf("no policy: verdict %s", s.Verdict)
	}
}

func TestWrongNonce(t *testing.T) {
	s := verify545(t, nil, strings.Repeat("00", 32), rim545Driver, rim545VBIOS)
	if stepStatus(s, "gpu.nonce") != attest.Fail || s.Verdict != attest.Contraindicated {
		dump(t, s)
		t.Error("wrong nonce accepted")
	}
}

// TestNegativeRIMsInVerifier: each bad RIM fails its RIM step, for the
// right reason.
func TestNegativeRIMsInVerifier(t *testing.T) {
	cases := []struct {
		rim  []string
		step string
		want string
	}{
		{[]string{"sdk-negative", "incorrect_signature_driver_rim.xml"}, "gpu.rim.driver", "signature does not verify"},
		{[]string{"sdk-negative", "incorrect_cert_chain_driver_rim.xml"}, "gpu.rim.vbios", "not the pinned root"},
		{[]string{"sdk-negative", "NV_GPU_DRIVER_GH100_570.124.03_expired.xml"}, "gpu.rim.driver", "edited after signing"},
		{[]string{"nvtrust-rims", "g520_0200_885_9600740001_PROD.swidtag"}, "gpu.rim.vbios", "fetch NV_GPU_VBIOS_1010_0200_882_96005E0001"},
	}
	for _, c := range cases {
		s := verify545(t, nil, nonce545, c.rim)
		st := s.Step(c.step)
		if st == nil || st.Status != attest.Fail || !strings.Contains(st.Detail, c.want) {
			dump(t, s)
			t.Errorf("%s: %s is %+v, want a failure with %q", c.rim[1], c.step, st, c.want)
		}
		if s.Verdict != attest.Contraindicated {
			t.Errorf("%s: verdict %s", c.rim[1], s.Verdict)
		}
	}
}

func TestBadReportSignature(t *testing.T) {
	body := vectorEvidence(t, "sdk-negative", "hopperAttestationReportInvalidSignature.txt", "hopperCertChainExpired.txt")
	r := attest.VerifyEntry(context.Background(), NewVerifier(nil), attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, at2024, nil, nil)
	s := r.Devices["gpu0"]
	if stepStatus(s, "gpu.signature") != attest.Fail || stepStatus(s, "gpu.chain") != attest.Pass {
		dump(t, s)
		t.Error("bad signature not caught at gpu.signature")
	}
}

func TestHopperReportBlackwellChain(t *testing.T) {
	certs, err := ParseCertChain(vectors.Read(t, "nvidia", "sdk-blackwell-gb100", "blackwellCertChain.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ev := &Evidence{Report: readReport(t, "nvtrust-head-hopper-550.90.07", "hopperAttestationReport.txt")}
	for _, c := range certs {
		ev.Certs = append(ev.Certs, c.Raw)
	}
	body, _ := ev.Marshal()
	r := attest.VerifyEntry(context.Background(), NewVerifier(nil), attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, at2024, nil, nil)
	s := r.Devices["gpu0"]
	if stepStatus(s, "gpu.arch") != attest.Fail || stepStatus(s, "gpu.signature") != attest.Fail || s.Verdict != attest.Contraindicated {
		dump(t, s)
		t.Error("mixed architecture accepted")
	}
}

// TestFlippedBytes: a flipped bit anywhere in the signed part or the
// signature is refused (at parse or at the signature).
func TestFlippedBytes(t *testing.T) {
	raw := readReport(t, "nvtrust-head-hopper-550.90.07", "hopperAttestationReport.txt")
	certs, err := ParseCertChain(vectors.Read(t, "nvidia", "nvtrust-head-hopper-550.90.07", "hopperCertChain.txt"))
	if err != nil {
		t.Fatal(err)
	}
	stride := 1
	if testing.Short() {
		stride = 17
	}
	for i := 0; i < len(raw); i += stride {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		rep, err := ParseReport(b)
		if err != nil {
			continue
		}
		if VerifyReportSignature(rep, certs[0]) == nil {
			t.Fatalf("byte %d flipped and the signature still verifies", i)
		}
	}
}

func simEntries(t testing.TB, sim *Simulator, b attest.Binding, n int, at time.Time) []attest.Entry {
	t.Helper()
	es, err := sim.Entries(b, n, at)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestSimulatedGPUs(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var b attest.Binding
	copy(b[:], []byte("node binding for the simulated GPUs, 64 bytes long ............."))
	es := simEntries(t, NewSimulator([]byte("seed")), b, 2, at)
	pol := mustPolicy(t, "roots:\n  nvidia: simulated\n")
	for _, e := range es {
		r := attest.VerifyEntry(context.Background(), NewVerifier(nil), e, at, pol, &b)
		s := r.Devices[e.Device]
		if r.Verdict != attest.Affirming || !r.Simulated {
			dump(t, s)
			t.Fatalf("%s: %s simulated=%v", e.Device, r.Verdict, r.Simulated)
		}
	}
	// Deterministic.
	es2 := simEntries(t, NewSimulator([]byte("seed")), b, 2, at)
	if string(es[1].Body) != string(es2[1].Body) {
		t.Error("simulator is not deterministic")
	}
	// Under production roots, simulated GPUs fail the chain.
	r := attest.VerifyEntry(context.Background(), NewVerifier(nil), es[0], at, mustPolicy(t, ""), &b)
	if stepStatus(r.Devices["gpu0"], "gpu.chain") != attest.Fail {
		t.Error("simulated chain accepted under production roots")
	}
	// Swapped device names: the nonce is the other GPU's.
	e := es[1]
	e.Device = "gpu0"
	r = attest.VerifyEntry(context.Background(), NewVerifier(nil), e, at, pol, &b)
	if stepStatus(r.Devices["gpu0"], "gpu.nonce") != attest.Fail {
		t.Error("gpu1's report accepted as gpu0")
	}
	// Another binding.
	b2 := b
	b2[0] ^= 1
	r = attest.VerifyEntry(context.Background(), NewVerifier(nil), es[0], at, pol, &b2)
	if stepStatus(r.Devices["gpu0"], "gpu.nonce") != attest.Fail {
		t.Error("report accepted under another binding")
	}
	// Stale OCSP.
	r = attest.VerifyEntry(context.Background(), NewVerifier(nil), es[0], at.Add(30*24*time.Hour), pol, &b)
	if stepStatus(r.Devices["gpu0"], "gpu.ocsp") != attest.Fail {
		dump(t, r.Devices["gpu0"])
		t.Error("stale OCSP accepted")
	}
}

func TestTrailingBytes(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var b attest.Binding
	sim := NewSimulator([]byte("trailing"))
	sim.Trailing = []byte{0}
	es := simEntries(t, sim, b, 1, at)
	r := attest.VerifyEntry(context.Background(), NewVerifier(nil), es[0], at, mustPolicy(t, "roots:\n  nvidia: simulated\n"), &b)
	s := r.Devices["gpu0"]
	if stepStatus(s, "gpu.trailing") != attest.Warn || stepStatus(s, "gpu.signature") != attest.Pass || s.Verdict != attest.Warning {
		dump(t, s)
		t.Error("trailing byte not a warning")
	}
	r = attest.VerifyEntry(context.Background(), NewVerifier(nil), es[0], at, mustPolicy(t, "roots:\n  nvidia: simulated\nnvgpu:\n  trailing_bytes: fatal\n"), &b)
	if stepStatus(r.Devices["gpu0"], "gpu.trailing") != attest.Fail {
		t.Error("trailing byte not fatal")
	}
}

func TestBadBodies(t *testing.T) {
	for _, body := range [][]byte{nil, {0xa0}, {0xff, 0x00}, []byte("not cbor")} {
		r := attest.VerifyEntry(context.Background(), NewVerifier(nil), attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, at2024, nil, nil)
		if stepStatus(r.Devices["gpu0"], "gpu.parse") != attest.Fail {
			t.Errorf("%x parsed", body)
		}
	}
}
