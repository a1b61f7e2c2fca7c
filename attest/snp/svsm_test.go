package snp

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/sworn-dev/sworn/attest"
)

// svsmEK is a vTPM EK public area: the TCG RSA-2048 EK template (its
// unique field zero), which is a well-formed restricted decryption key.
func svsmEK() []byte { return tpm2.Marshal(tpm2.RSAEKTemplate) }

func svsmEvidence(t testing.TB, nonce, manifest []byte, vmpl uint32) *Evidence {
	t.Helper()
	e, err := NewSimChip(1, SimTCB).SimSVSMEvidence(SimReportOptions{Measurement: SimMeasurement, VMPL: vmpl}, nonce, manifest, simAt)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSVSMAffirming(t *testing.T) {
	var b [64]byte
	copy(b[:], "binding")
	for _, tc := range []struct {
		name string
		ek   []byte
	}{
		{"RSA EK", svsmEK()},
		{"ECC EK", tpm2.Marshal(tpm2.ECCEKTemplate)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := svsmEvidence(t, b[:], tc.ek, 0)
			r := appraise(t, e, simAt, simPolicy(t, ""), b[:])
			s := r.Devices["cpu0"]
			if r.Verdict != attest.Affirming {
				t.Fatalf("verdict %s; first failure %+v", r.Verdict, s.FirstFailure())
			}
			if got := s.Claims[ClaimSVSMEK]; got != hex.EncodeToString(tc.ek) {
				t.Fatalf("claim %s = %v", ClaimSVSMEK, got)
			}
			if st := s.Step("snp.binding"); !strings.Contains(st.Detail, "VMPL0 SVSM report") {
				t.Fatalf("snp.binding: %+v", st)
			}
			if !hasLedger(r.Ledger.Verified, LedgerSVSMBound) || !hasLedger(r.Ledger.Assumed, LedgerSVSMHonest) {
				t.Fatalf("ledger lacks the SVSM sentences: %+v", r.Ledger)
			}
			// Round trip through the entry body keeps the manifest.
			body, _ := e.Marshal()
			a, err := ParseEvidence(body)
			if err != nil || !bytes.Equal(a.SVSMManifest, tc.ek) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
	// Without an expected binding, the REPORT_DATA check is skipped (but
	// the claim is not usable: tpm needs snp.binding to pass).
	r := appraise(t, svsmEvidence(t, b[:], svsmEK(), 0), simAt, nil, nil)
	if st := r.Devices["cpu0"].Step("snp.binding"); st.Status != attest.Skip {
		t.Fatalf("no binding: %+v", st)
	}
}

func hasLedger(entries []attest.LedgerEntry, id string) bool {
	for _, e := range entries {
		if e.ID == id {
			return true
		}
	}
	return false
}

func TestSVSMNegative(t *testing.T) {
	var b [64]byte
	copy(b[:], "binding")
	signing := tpm2.Marshal(tpm2.TPMTPublic{
		Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Restricted: true, SignEncrypt: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Scheme:  tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
			CurveID: tpm2.TPMECCNistP256,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
	})
	for _, tc := range []struct {
		name   string
		e      func(t testing.TB) *Evidence
		step   string
		detail string
	}{
		{"manifest altered", func(t testing.TB) *Evidence {
			e := svsmEvidence(t, b[:], svsmEK(), 0)
			e.SVSMManifest = tpm2.Marshal(tpm2.ECCEKTemplate) // another (valid) EK
			return e
		}, "snp.binding", "manifest (the vTPM EK) was altered"},
		{"another nonce", func(t testing.TB) *Evidence {
			return svsmEvidence(t, []byte("another nonce"), svsmEK(), 0)
		}, "snp.binding", "SHA-512(binding"},
		{"VMPL 2", func(t testing.TB) *Evidence { return svsmEvidence(t, b[:], svsmEK(), 2) }, "snp.binding", "VMPL 2, not VMPL0"},
		{"manifest is a signing key", func(t testing.TB) *Evidence { return svsmEvidence(t, b[:], signing, 0) }, "snp.parse", "not an endorsement key"},
		{"manifest is not a TPMT_PUBLIC", func(t testing.TB) *Evidence { return svsmEvidence(t, b[:], []byte("not a key"), 0) }, "snp.parse", "not a TPMT_PUBLIC"},
		{"manifest with trailing bytes", func(t testing.TB) *Evidence {
			return svsmEvidence(t, b[:], append(svsmEK(), 0), 0)
		}, "snp.parse", "canonically"},
		{"manifest empty", func(t testing.TB) *Evidence {
			e := svsmEvidence(t, b[:], svsmEK(), 0)
			e.SVSMManifest = []byte{}
			return e
		}, "snp.parse", "1 to 4096"},
		{"manifest too large", func(t testing.TB) *Evidence {
			return svsmEvidence(t, b[:], make([]byte, MaxSVSMManifestSize+1), 0)
		}, "snp.parse", "1 to 4096"},
		{"manifest on an HCL report", func(t testing.TB) *Evidence {
			rd, err := NewRuntimeData(&simKey("svsm test AK").PublicKey, b[:])
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewSimChip(1, SimTCB).SimHCLEvidence(SimReportOptions{Measurement: SimMeasurement}, rd, simAt)
			if err != nil {
				t.Fatal(err)
			}
			e.SVSMManifest = svsmEK()
			return e
		}, "snp.parse", "HCL report cannot carry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e(t)
			if e.SVSMManifest != nil && len(e.SVSMManifest) == 0 {
				// An empty byte string (key 4 present) is encoded by hand:
				// omitempty drops it.
				e.SVSMManifest = nil
				body, _ := e.Marshal()
				body = appendEmptyKey4(t, body)
				_, err := ParseEvidence(body)
				if err == nil || !strings.Contains(err.Error(), tc.detail) {
					t.Fatalf("empty manifest: %v", err)
				}
				return
			}
			r := appraise(t, e, simAt, simPolicy(t, ""), b[:])
			st := r.Devices["cpu0"].Step(tc.step)
			if st == nil || st.Status != attest.Fail || !strings.Contains(st.Detail, tc.detail) {
				t.Fatalf("%s: %+v", tc.step, r.Devices["cpu0"].Steps)
			}
			if r.Verdict != attest.Contraindicated {
				t.Fatalf("verdict %s", r.Verdict)
			}
		})
	}
}

// appendEmptyKey4 adds "4: h”" to a CBOR map of up to 23 entries.
func appendEmptyKey4(t testing.TB, body []byte) []byte {
	t.Helper()
	if body[0] < 0xa0 || body[0] > 0xb6 {
		t.Fatalf("not a small CBOR map: %x", body[0])
	}
	out := append([]byte{body[0] + 1}, body[1:]...)
	return append(out, 0x04, 0x40)
}
