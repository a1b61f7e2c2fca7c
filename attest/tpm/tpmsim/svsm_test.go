package tpmsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/wire"
)

var svsmAt = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// svsmBundle returns a bundle with a node's keys and an epoch, and no
// evidence yet.
func svsmBundle(t testing.TB) *attest.Bundle {
	t.Helper()
	req, err := wire.NewPrivateKey(1, wire.KEMXWing, wire.DefaultSuites, []byte("sworn svsm test request key seed"))
	if err != nil {
		t.Fatal(err)
	}
	rcpt := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	return &attest.Bundle{
		Version:   attest.BundleVersion,
		Keys:      attest.NodeKeys{RequestKeys: wire.MarshalKeyConfigs([]wire.KeyConfig{req.Config()}), ReceiptKey: rcpt.Public().(ed25519.PublicKey)},
		Freshness: attest.Freshness{Epoch: &attest.Epoch{NotBefore: svsmAt.Add(-time.Minute).Unix(), NotAfter: svsmAt.Add(time.Hour).Unix(), Checkpoint: make([]byte, 32)}},
	}
}

func svsmPolicy(t testing.TB, r *Result) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("svsm", []byte("version: 1\nroots: {amd: simulated}\nsnp:\n  vmpl: 0\n  measurements: ["+hex.EncodeToString(snp.SimMeasurement[:])+"]\n"+
		"tpm:\n  components:\n    - name: uki\n      alternatives:\n        - uki_digest: "+hex.EncodeToString(r.UKIDigest[tpm.SHA384])+"\n          pcr11: "+hex.EncodeToString(r.PCR11[tpm.SHA384])+"\n          node_software: "+hex.EncodeToString(r.NodeSoftware)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// svsmNode boots an SVSM-style node: a vTPM with an EK (seed vtpmSeed),
// and the SVSM's VMPL0 report with REPORT_DATA = SHA-512(binding ‖ EK).
func svsmNode(t testing.TB, vtpmSeed int64, ek EKKind) (*attest.Bundle, *Result) {
	t.Helper()
	b := svsmBundle(t)
	binding := b.Binding()
	vtpm, err := Run(Options{Seed: vtpmSeed, Binding: binding, EK: ek})
	if err != nil {
		t.Fatal(err)
	}
	if len(vtpm.EK) == 0 || string(vtpm.Evidence.EK) != string(vtpm.EK) {
		t.Fatal("SVSM-style boot put no EK in the evidence")
	}
	ev, err := snp.NewSimChip(1, snp.SimTCB).SimSVSMEvidence(snp.SimReportOptions{Measurement: snp.SimMeasurement}, binding[:], vtpm.EK, svsmAt)
	if err != nil {
		t.Fatal(err)
	}
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b.Evidence = []attest.Entry{{Kind: attest.KindSNP, Device: "cpu0", Body: body}, vtpm.Entry}
	return b, vtpm
}

func appraiseSVSM(b *attest.Bundle, p *policy.Policy, activated ...string) *attest.Result {
	return attest.Appraise(context.Background(), b, attest.Options{
		At: svsmAt, Policy: p,
		Verifiers: []attest.Verifier{snp.NewVerifier(), &tpm.Verifier{Activated: activated}},
	})
}

// activate is the verifier's online step: it challenges the EK with the
// AK's name, lets the attester answer, and returns the AK's name (hex)
// when the answer is right.
func activate(t testing.TB, ek, ak []byte, attester func(*tpm.Activation) ([]byte, error)) (string, error) {
	t.Helper()
	act, secret, err := tpm.MakeActivation(rand.Reader, ek, ak)
	if err != nil {
		t.Fatal(err)
	}
	got, err := attester(act)
	if err != nil {
		return "", err
	}
	if err := tpm.CheckActivation(secret, got); err != nil {
		return "", err
	}
	name, err := tpm.AKName(ak)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(name), nil
}

func hasEntry(es []attest.LedgerEntry, id string) bool {
	for _, e := range es {
		if e.ID == id {
			return true
		}
	}
	return false
}

func TestSVSMEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		ek   EKKind
	}{{"RSA EK", EKRSA}, {"ECC EK", EKECC}} {
		t.Run(tc.name, func(t *testing.T) {
			b, vtpm := svsmNode(t, 11, tc.ek)
			name, err := activate(t, vtpm.EK, vtpm.Evidence.AK, vtpm.ActivateCredential)
			if err != nil {
				t.Fatal(err)
			}
			r := appraiseSVSM(b, svsmPolicy(t, vtpm), name)
			for _, d := range []string{"cpu0", "tpm0"} {
				if s := r.Devices[d]; s == nil || s.Verdict != attest.Affirming {
					t.Fatalf("%s: %+v", d, s)
				}
			}
			if got := r.Devices["cpu0"].Claims[tpm.ClaimSVSMEK]; got != hex.EncodeToString(vtpm.EK) {
				t.Fatalf("cpu0 claim %s = %v", tpm.ClaimSVSMEK, got)
			}
			if st := r.Devices["tpm0"].Step(tpm.StepBinding); st.Status != attest.Pass || !strings.Contains(st.Detail, "VMPL0") {
				t.Fatalf("tpm.binding: %+v", st)
			}
			for _, id := range []string{tpm.LedgerAKSVSM, snp.LedgerSVSMBound} {
				if !hasEntry(r.Ledger.Verified, id) {
					t.Fatalf("ledger lacks verified %s: %+v", id, r.Ledger.Verified)
				}
			}
			if !hasEntry(r.Ledger.Assumed, snp.LedgerSVSMHonest) || hasEntry(r.Ledger.Assumed, tpm.LedgerUnbound) {
				t.Fatalf("assumed: %+v", r.Ledger.Assumed)
			}
		})
	}
}

func TestSVSMNegative(t *testing.T) {
	b, vtpm := svsmNode(t, 11, EKRSA)
	p := svsmPolicy(t, vtpm)
	// Another vTPM, with its own EK and AK.
	other, err := Run(Options{Seed: 12, Binding: b.Binding(), EK: EKRSA})
	if err != nil {
		t.Fatal(err)
	}
	otherName, err := tpm.AKName(other.Evidence.AK)
	if err != nil {
		t.Fatal(err)
	}
	withTPM := func(ev *tpm.Evidence) *attest.Bundle {
		e, err := ev.Entry("tpm0")
		if err != nil {
			t.Fatal(err)
		}
		c := *b
		c.Evidence = []attest.Entry{b.Evidence[0], e}
		return &c
	}

	// Activation with another TPM's AK: the challenge is for the bound EK
	// and the other AK's name; no TPM can answer it.
	t.Run("activation with another TPM's AK", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			attester func(*tpm.Activation) ([]byte, error)
			want     string
		}{
			{"the other vTPM answers", other.ActivateCredential, "TPM_RC_VALUE"},                    // not its EK
			{"the bound vTPM answers with its own AK", vtpm.ActivateCredential, "TPM_RC_INTEGRITY"}, // not its AK's name
			{"the bound vTPM loads the other AK's public area", func(act *tpm.Activation) ([]byte, error) {
				return activateExternal(vtpm, other.Evidence.AK, act, tpm2.PasswordAuth(nil))
			}, "TPM_RC_AUTH_UNAVAILABLE"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := activate(t, vtpm.EK, other.Evidence.AK, tc.attester)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("activation for an AK outside the EK's TPM: %v, want %s", err, tc.want)
				}
			})
		}
		// An AK whose ADMIN role is a policy the attacker can satisfy
		// (PolicyCommandCode(ActivateCredential)), loaded public-only into
		// the bound vTPM: the TPM refuses policy authorization as well.
		t.Run("the bound vTPM loads a policy-authorized AK's public area", func(t *testing.T) {
			calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
			if err != nil {
				t.Fatal(err)
			}
			if err := (tpm2.PolicyCommandCode{Code: tpm2.TPMCCActivateCredential}).Update(calc); err != nil {
				t.Fatal(err)
			}
			// The public area is all the attacker needs: the other AK's
			// point, with the policy added.
			pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](other.Evidence.AK)
			if err != nil {
				t.Fatal(err)
			}
			pub.ObjectAttributes.AdminWithPolicy = true
			pub.AuthPolicy = tpm2.TPM2BDigest{Buffer: calc.Hash().Digest}
			ak := tpm2.Marshal(*pub)
			policyAuth := tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(tr transport.TPM, h tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
				_, err := tpm2.PolicyCommandCode{PolicySession: h, Code: tpm2.TPMCCActivateCredential}.Execute(tr)
				return err
			})
			_, err = activate(t, vtpm.EK, ak, func(act *tpm.Activation) ([]byte, error) { return activateExternal(vtpm, ak, act, policyAuth) })
			if err == nil || !strings.Contains(err.Error(), "TPM_RC_AUTH_UNAVAILABLE") {
				t.Fatalf("activation for a public-only AK: %v", err)
			}
		})
		// Unactivated, the other AK (presented with the bound EK) fails tpm.binding.
		ev := *other.Evidence
		ev.EK = vtpm.EK
		r := appraiseSVSM(withTPM(&ev), p)
		st := r.Devices["tpm0"].Step(tpm.StepBinding)
		if st == nil || st.Status != attest.Fail || !strings.Contains(st.Detail, "did not complete credential activation") {
			t.Fatalf("tpm.binding: %+v", r.Devices["tpm0"].Steps)
		}
		if r.Verdict != attest.Contraindicated {
			t.Fatalf("verdict %s", r.Verdict)
		}
	})

	// The other vTPM's evidence, with its own EK: its AK does pass
	// activation against its own EK, but that EK is not the one bound in
	// the VMPL0 report.
	for _, tc := range []struct {
		name   string
		ek     []byte
		detail string
	}{
		{"EK of another vTPM", other.EK, "is not the SVSM vTPM EK"},
		{"no EK", nil, "is not the SVSM vTPM EK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, err := activate(t, other.EK, other.Evidence.AK, other.ActivateCredential)
			if err != nil || name != hex.EncodeToString(otherName) {
				t.Fatalf("the other vTPM's own activation: %v", err)
			}
			ev := *other.Evidence
			ev.EK = tc.ek
			r := appraiseSVSM(withTPM(&ev), p, name)
			st := r.Devices["tpm0"].Step(tpm.StepBinding)
			if st == nil || st.Status != attest.Fail || !strings.Contains(st.Detail, tc.detail) {
				t.Fatalf("tpm.binding: %+v", r.Devices["tpm0"].Steps)
			}
			if r.Devices["cpu0"].Verdict != attest.Affirming || r.Verdict != attest.Contraindicated {
				t.Fatalf("verdicts cpu0 %s, overall %s", r.Devices["cpu0"].Verdict, r.Verdict)
			}
		})
	}
}

// activateExternal is an attacker on the bound vTPM: it loads another
// TPM's AK public area (LoadExternal, public part only; same name) and
// asks the bound EK to activate the credential for it. The TPM must
// refuse: a public-only object has no authValue or authPolicy available
// for the ADMIN role (TPM_RC_AUTH_UNAVAILABLE).
func activateExternal(r *Result, akPublic []byte, act *tpm.Activation, akAuth tpm2.Session) ([]byte, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](akPublic)
	if err != nil {
		return nil, err
	}
	t, err := Open(r.seed)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.RSAEKTemplate)}.Execute(t)
	if err != nil {
		return nil, err
	}
	ext, err := tpm2.LoadExternal{InPublic: tpm2.New2B(*pub), Hierarchy: tpm2.TPMRHOwner}.Execute(t)
	if err != nil {
		return nil, err
	}
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ext.ObjectHandle, Name: ext.Name, Auth: akAuth},
		KeyHandle:      tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16, tpm.EKPolicy)},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: act.CredentialBlob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: act.EncryptedSecret},
	}.Execute(t)
	if err != nil {
		return nil, err
	}
	return rsp.CertInfo.Buffer, nil
}
