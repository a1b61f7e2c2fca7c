package snp

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
	"github.com/sworn-dev/sworn/policy"
)

var simAt = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func simPolicy(t testing.TB, extra string) *policy.Policy {
	t.Helper()
	m := hex.EncodeToString(SimMeasurement[:])
	if strings.Contains(extra, "measurements") {
		m = ""
	} else {
		m = "  measurements: [" + m + "]\n"
	}
	p, err := policy.Parse("test", []byte("version: 1\nroots: {amd: simulated}\nsnp:\n  vmpl: 0\n"+m+extra))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func simEvidence(t testing.TB, seed uint64, o SimReportOptions) *Evidence {
	t.Helper()
	o.Measurement = SimMeasurement
	e, err := NewSimChip(seed, SimTCB).SimEvidence(o, simAt)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSimulatedAffirming(t *testing.T) {
	var rd [64]byte
	copy(rd[:], "binding")
	e := simEvidence(t, 1, SimReportOptions{ReportData: rd})
	r := appraise(t, e, simAt, simPolicy(t, ""), rd[:])
	if r.Verdict != attest.Affirming {
		t.Fatalf("verdict %s; first failure %+v", r.Verdict, r.Devices["cpu0"].FirstFailure())
	}
	if !r.Simulated {
		t.Fatal("simulated result not marked simulated")
	}
	// Under production roots the simulated chain is refused at snp.chain.
	prod, _ := policy.Parse("prod", []byte("version: 1\n"))
	r = appraise(t, e, simAt, prod, rd[:])
	st := r.Devices["cpu0"].Step("snp.chain")
	if st.Status != attest.Fail || !strings.Contains(st.Detail, "simulated root is not trusted") {
		t.Fatalf("snp.chain under production roots: %+v", st)
	}
	if r.Simulated {
		t.Fatal("production appraisal marked simulated")
	}
}

func TestSimulatedVLEK(t *testing.T) {
	var rd [64]byte
	copy(rd[:], "binding")
	e, err := NewSimVLEKChip(1, SimTCB).SimEvidence(SimReportOptions{ReportData: rd, Measurement: SimMeasurement}, simAt)
	if err != nil {
		t.Fatal(err)
	}
	r := appraise(t, e, simAt, simPolicy(t, ""), rd[:])
	if r.Verdict != attest.Affirming || r.Devices["cpu0"].Claims["signer"] != "VLEK" {
		t.Fatalf("VLEK: %s %+v", r.Verdict, r.Devices["cpu0"].FirstFailure())
	}
	// A VLEK presented as if it were the VCEK's chain: the VCEK is missing.
	e.Certs[0] = NewSimChip(1, SimTCB).VCEK.Raw
	r = appraise(t, e, simAt, simPolicy(t, ""), rd[:])
	if st := r.Devices["cpu0"].Step("snp.signature"); st.Status != attest.Fail {
		t.Fatalf("VLEK report with a VCEK: %+v", st)
	}
}

func TestSimulatedDeterministic(t *testing.T) {
	a := simEvidence(t, 7, SimReportOptions{})
	b := simEvidence(t, 7, SimReportOptions{})
	x, _ := a.Marshal()
	y, _ := b.Marshal()
	if !bytes.Equal(x, y) {
		t.Fatal("same seed and time gave different evidence")
	}
	c := simEvidence(t, 8, SimReportOptions{})
	if bytes.Equal(a.Certs[0], c.Certs[0]) {
		t.Fatal("different seeds gave the same VCEK")
	}
}

// TestFlippedByte flips every byte of the signed part of a report: each
// must be caught, at snp.signature (or at snp.parse when the flip makes the
// report malformed).
func TestFlippedByte(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    func(t testing.TB) *Evidence
		at   time.Time
		p    *policy.Policy
	}{
		{"real-milan", func(t testing.TB) *Evidence { return loadVector(t, realVectors[0]) }, realVectors[0].at, nil},
		{"simulated", func(t testing.TB) *Evidence { return simEvidence(t, 1, SimReportOptions{}) }, simAt, simPolicy(t, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := tc.e(t)
			parseFails := 0
			for i := 0; i < len(abi.SignedComponent(orig.Report)); i++ {
				e := *orig
				e.Report = bytes.Clone(orig.Report)
				e.Report[i] ^= 0x01
				r := appraise(t, &e, tc.at, tc.p, nil)
				// Data fields (REPORT_DATA, MEASUREMENT, HOST_DATA, CHIP_ID)
				// have no structure: only the signature can catch them.
				dataField := (i >= 0x50 && i < 0xe0) || (i >= 0x1a0 && i < 0x1e0)
				switch {
				case stepStatus(r, "snp.signature") == attest.Fail:
				case stepStatus(r, "snp.parse") == attest.Fail && !dataField:
					parseFails++
				default:
					t.Fatalf("flip at offset 0x%x: signature %s", i, stepStatus(r, "snp.signature"))
				}
				if r.Verdict != attest.Contraindicated {
					t.Fatalf("flip at offset 0x%x: verdict %s", i, r.Verdict)
				}
			}
			t.Logf("%d of %d flips rejected at parse (reserved or structural fields), the rest at snp.signature", parseFails, len(abi.SignedComponent(orig.Report)))
		})
	}
}

func TestNegative(t *testing.T) {
	realAt := realVectors[0].at
	chip1 := NewSimChip(1, SimTCB)
	otherChip := NewSimChip(2, SimTCB)
	var rd [64]byte
	copy(rd[:], "expected binding")

	cases := []struct {
		name    string
		e       func(t testing.TB) *Evidence
		at      time.Time
		p       func(t testing.TB) *policy.Policy
		binding []byte
		step    string
		detail  string
	}{
		{
			name: "real VCEK of another chip",
			e: func(t testing.TB) *Evidence {
				e := loadVector(t, realVectors[0])
				other := loadVector(t, realVectors[1])
				e.Certs[0] = other.Certs[0]
				return e
			},
			at: realAt, step: "snp.chain", detail: "another chip",
		},
		{
			name: "simulated VCEK of another chip",
			e: func(t testing.TB) *Evidence {
				e := simEvidence(t, 1, SimReportOptions{})
				e.Certs[0] = otherChip.VCEK.Raw
				return e
			},
			at: simAt, p: func(t testing.TB) *policy.Policy { return simPolicy(t, "") }, step: "snp.chain", detail: "another chip",
		},
		{
			name:    "wrong report data",
			e:       func(t testing.TB) *Evidence { return loadVector(t, realVectors[0]) },
			at:      realAt,
			binding: bytes.Repeat([]byte{0xaa}, 64),
			step:    "snp.binding",
		},
		{
			name: "TCB floor above the report's",
			e:    func(t testing.TB) *Evidence { return simEvidence(t, 1, SimReportOptions{}) },
			at:   simAt,
			p: func(t testing.TB) *policy.Policy {
				return simPolicy(t, "  min_tcb: {bootloader: 4, tee: 0, snp: 23, microcode: 213}\n")
			},
			step: "snp.tcb", detail: "snp 22 < 23",
		},
		{
			name: "debug allowed in the guest policy",
			e: func(t testing.TB) *Evidence {
				return simEvidence(t, 1, SimReportOptions{Policy: SimPolicy | 1<<19})
			},
			at: simAt, p: func(t testing.TB) *policy.Policy { return simPolicy(t, "") }, step: "snp.policy", detail: "debugging",
		},
		{
			name: "real debug guest under the production starter policy",
			e:    func(t testing.TB) *Evidence { return loadVector(t, realVectors[0]) },
			at:   realAt, p: prodPolicy, step: "snp.policy", detail: "debugging",
		},
		{
			name: "wrong VMPL",
			e:    func(t testing.TB) *Evidence { return simEvidence(t, 1, SimReportOptions{VMPL: 2}) },
			at:   simAt, p: func(t testing.TB) *policy.Policy { return simPolicy(t, "") }, step: "snp.policy", detail: "VMPL 2",
		},
		{
			name: "measurement not allowed",
			e:    func(t testing.TB) *Evidence { return simEvidence(t, 1, SimReportOptions{}) },
			at:   simAt,
			p: func(t testing.TB) *policy.Policy {
				return simPolicy(t, "  measurements: ["+strings.Repeat("ab", 48)+"]\n")
			},
			step: "snp.measurement",
		},
		{
			name: "CRL lists the VCEK",
			e: func(t testing.TB) *Evidence {
				e := simEvidence(t, 1, SimReportOptions{})
				crl, err := SimCRL(simAt.Add(-time.Hour), time.Hour*24, chip1.VCEK)
				if err != nil {
					t.Fatal(err)
				}
				e.CRLs = [][]byte{crl}
				return e
			},
			at: simAt, p: func(t testing.TB) *policy.Policy { return simPolicy(t, "") }, step: "snp.revocation", detail: "revoked",
		},
		{
			name: "stale simulated CRL",
			e:    func(t testing.TB) *Evidence { return simEvidence(t, 1, SimReportOptions{}) },
			at:   simAt.Add(8 * 24 * time.Hour), p: func(t testing.TB) *policy.Policy { return simPolicy(t, "") }, step: "snp.revocation", detail: "stale",
		},
		{
			name: "stale real AMD CRL",
			e: func(t testing.TB) *Evidence {
				e := loadVector(t, realVectors[0])
				e.CRLs = [][]byte{vectors.Read(t, "snp", "amd-crls", "milan_vcek_crl.der")}
				return e
			},
			at: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), p: prodPolicy, step: "snp.revocation", detail: "stale",
		},
		{
			name: "CRL from another product's ARK",
			e: func(t testing.TB) *Evidence {
				e := loadVector(t, realVectors[0])
				e.CRLs = [][]byte{vectors.Read(t, "snp", "amd-crls", "genoa_vcek_crl.der")}
				return e
			},
			at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), p: prodPolicy, step: "snp.revocation", detail: "signed by ARK-Milan",
		},
		{
			name: "no CRL under a policy",
			e:    func(t testing.TB) *Evidence { return loadVector(t, realVectors[0]) },
			at:   realAt, p: prodPolicy, step: "snp.revocation", detail: "no CRL",
		},
		{
			name: "altered HCL runtime data",
			e: func(t testing.TB) *Evidence {
				e := loadVector(t, realVectors[2])
				i := bytes.Index(e.Report, []byte("vmUniqueId\":\"9"))
				if i < 0 {
					t.Fatal("vmUniqueId not found")
				}
				e.Report[i+13] = '8'
				return e
			},
			at: realVectors[2].at, step: "snp.binding", detail: "altered",
		},
		{
			name: "expired VCEK",
			e:    func(t testing.TB) *Evidence { return loadVector(t, realVectors[0]) },
			at:   time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), step: "snp.chain", detail: "expired",
		},
		{
			name: "missing VCEK",
			e: func(t testing.TB) *Evidence {
				e := loadVector(t, realVectors[0])
				e.Certs = e.Certs[1:]
				return e
			},
			at: realAt, step: "snp.signature", detail: "no VCEK",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p *policy.Policy
			if tc.p != nil {
				p = tc.p(t)
			}
			r := appraise(t, tc.e(t), tc.at, p, tc.binding)
			st := r.Devices["cpu0"].Step(tc.step)
			if st == nil || st.Status != attest.Fail {
				t.Fatalf("%s = %+v, want fail; steps %+v", tc.step, st, r.Devices["cpu0"].Steps)
			}
			if !strings.Contains(st.Detail, tc.detail) {
				t.Errorf("%s detail %q does not mention %q", tc.step, st.Detail, tc.detail)
			}
			if r.Verdict != attest.Contraindicated {
				t.Errorf("verdict %s, want contraindicated", r.Verdict)
			}
		})
	}
}

func TestRealCRLFresh(t *testing.T) {
	e := loadVector(t, realVectors[0])
	e.CRLs = [][]byte{vectors.Read(t, "snp", "amd-crls", "milan_vcek_crl.der")}
	r := appraise(t, e, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), prodPolicy(t), nil)
	if st := r.Devices["cpu0"].Step("snp.revocation"); st.Status != attest.Pass {
		t.Fatalf("snp.revocation: %+v", st)
	}
}

// crlAt is inside the validity of the recorded Milan CRL.
var crlAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func loadCRL(t testing.TB) []byte { return vectors.Read(t, "snp", "amd-crls", "milan_vcek_crl.der") }

func prodPolicy(t testing.TB) *policy.Policy {
	p, err := policy.Parse("prod", []byte("version: 1\nsnp: {allow_smt: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMoreNegatives covers the remaining checks, each failing at its step.
func TestMoreNegatives(t *testing.T) {
	ca := simulatedCA()
	chip := NewSimChip(1, SimTCB)
	var binding [64]byte
	copy(binding[:], "expected binding")
	hcl := func(runtime []byte, rd *[64]byte) *Evidence {
		sum := sha256.Sum256(runtime)
		o := SimReportOptions{Measurement: SimMeasurement}
		copy(o.ReportData[:], sum[:])
		if rd != nil {
			o.ReportData = *rd
		}
		raw, err := chip.Report(o)
		if err != nil {
			t.Fatal(err)
		}
		e, err := chip.withCollateral(wrapHCL(raw, runtime), simAt)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	runtimeFor := func(userData []byte) []byte {
		r, err := NewRuntimeData(&chip.key.PublicKey, userData)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		e      func() *Evidence
		at     time.Time
		extra  string
		step   string
		detail string
	}{
		{"ASK listed in the CRL", func() *Evidence {
			e := simEvidence(t, 1, SimReportOptions{})
			crl, _ := SimCRL(simAt.Add(-time.Hour), 24*time.Hour, ca.pr.ask)
			e.CRLs = [][]byte{crl}
			return e
		}, simAt, "", "snp.revocation", "revoked"},
		{"CRL not yet valid", func() *Evidence {
			e := simEvidence(t, 1, SimReportOptions{})
			crl, _ := SimCRL(simAt.Add(time.Hour), 24*time.Hour)
			e.CRLs = [][]byte{crl}
			return e
		}, simAt, "", "snp.revocation", "not valid until"},
		{"migration agent", func() *Evidence { return simEvidence(t, 1, SimReportOptions{Policy: SimPolicy | 1<<18}) }, simAt, "", "snp.policy", "migration agent"},
		{"SMT not allowed", func() *Evidence { return simEvidence(t, 1, SimReportOptions{Policy: SimPolicy | 1<<16}) }, simAt, "", "snp.policy", "SMT"},
		{"untrusted CA stapled", func() *Evidence {
			e := simEvidence(t, 1, SimReportOptions{})
			k := simKey("another CA")
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "SEV-Milan"}, NotBefore: simValidity.from, NotAfter: simValidity.to, IsCA: true, BasicConstraintsValid: true}
			other := mustCert(tmpl, tmpl, &k.PublicKey, k)
			e.Certs = append(e.Certs, other.Raw)
			return e
		}, simAt, "", "snp.chain", "not one of the trusted"},
		{"VCEK for another TCB", func() *Evidence {
			e := simEvidence(t, 1, SimReportOptions{})
			e.Certs[0] = NewSimChip(1, SimTCB+1).VCEK.Raw
			return e
		}, simAt, "", "snp.chain", "TCB"},
		{"HCL user-data is not the binding", func() *Evidence { return hcl(runtimeFor([]byte("another binding")), nil) }, simAt, "", "snp.binding", "user-data"},
		{"HCL REPORT_DATA second half not zero", func() *Evidence {
			runtime := runtimeFor(binding[:])
			var rd [64]byte
			sum := sha256.Sum256(runtime)
			copy(rd[:], sum[:])
			rd[63] = 1
			return hcl(runtime, &rd)
		}, simAt, "", "snp.binding", "not zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := appraise(t, tc.e(), tc.at, simPolicy(t, tc.extra), binding[:])
			st := r.Devices["cpu0"].Step(tc.step)
			if st == nil || st.Status != attest.Fail || !strings.Contains(st.Detail, tc.detail) {
				t.Fatalf("%s = %+v, want fail mentioning %q", tc.step, st, tc.detail)
			}
		})
	}
}

// TestVerifierCacheAcrossAppraisals: one Verifier, reused, answers as a
// fresh one would: a chain cached at one time is not served after it
// expires, and roots chosen by one policy do not leak into another.
func TestVerifierCacheAcrossAppraisals(t *testing.T) {
	v := NewVerifier()
	run := func(e *Evidence, at time.Time, p *policy.Policy) *attest.Result {
		body, _ := e.Marshal()
		return attest.VerifyEntry(t.Context(), v, attest.Entry{Kind: attest.KindSNP, Device: "cpu0", Body: body}, at, p, nil)
	}
	real := loadVector(t, realVectors[0])
	for _, tc := range []struct {
		at   time.Time
		want attest.Status
	}{{realVectors[0].at, attest.Pass}, {time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), attest.Fail}, {realVectors[0].at, attest.Pass}} {
		if got := run(real, tc.at, nil).Devices["cpu0"].Step("snp.chain").Status; got != tc.want {
			t.Fatalf("real VCEK at %s: snp.chain %s, want %s", tc.at, got, tc.want)
		}
	}
	sim := simEvidence(t, 1, SimReportOptions{})
	prod, _ := policy.Parse("prod", []byte("version: 1\n"))
	for i, tc := range []struct {
		p    *policy.Policy
		want attest.Status
	}{{prod, attest.Fail}, {simPolicy(t, ""), attest.Pass}, {prod, attest.Fail}} {
		if got := run(sim, simAt, tc.p).Devices["cpu0"].Step("snp.chain").Status; got != tc.want {
			t.Fatalf("simulated chain, appraisal %d: snp.chain %s, want %s", i, got, tc.want)
		}
	}
}
