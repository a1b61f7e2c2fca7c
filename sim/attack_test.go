package sim

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/attesttest"
	"github.com/sworn-dev/sworn/policy"
)

// TestLeftOutEvidence: a node that leaves a piece of evidence out of its
// bundle is not affirming under any policy that configures that piece, and
// no bundle affirms without its one CPU TEE.
func TestLeftOutEvidence(t *testing.T) {
	n, err := Boot(Options{Seed: 3, At: at, GPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	when := at.Add(time.Hour)
	parse := func(t *testing.T, yaml []byte) *policy.Policy {
		t.Helper()
		p, err := policy.Parse("attack", yaml)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The production starter's shape: require lists only snp, beside a tpm
	// section and an nvgpu count.
	starter := func(gpus int, tpmOptional bool) *policy.Policy {
		data := policy.Starter(simStarter(t, []string{"snp"}, gpus))
		if tpmOptional {
			data = bytes.Replace(data, []byte("\ntpm:\n"), []byte("\ntpm:\n  optional: true\n"), 1)
		}
		return parse(t, data)
	}
	for _, tc := range []struct {
		name   string
		bundle *attest.Bundle
		policy *policy.Policy
		step   string // the step that must fail; "" for affirming
		ledger string // an assumption that must be made
	}{
		{"whole node", n.Bundle, starter(2, false), "", ""},
		{"vTPM left out, tpm section configured", attesttest.Drop(n.Bundle, "tpm0"), starter(2, false), "policy.require.tpm", ""},
		{"vTPM left out, tpm optional", attesttest.Drop(n.Bundle, "tpm0"), starter(2, true), "", "tpm.absent"},
		{"GPU left out", attesttest.Drop(n.Bundle, "gpu1"), starter(2, false), "policy.nvgpu.count", ""},
		{"all GPUs left out", attesttest.Drop(n.Bundle, "gpu0", "gpu1"), starter(2, false), "policy.require.nvgpu", ""},
		{"GPU-only bundle", attesttest.Drop(n.Bundle, "cpu0", "tpm0"), starter(2, true), "policy.require.cpu", ""},
		{"GPU-only bundle, no require", attesttest.Drop(n.Bundle, "cpu0", "tpm0"),
			parse(t, []byte("version: 1\nroots: {amd: simulated, nvidia: simulated}\nrequire: []\n")), "policy.require.cpu", ""},
		{"a second CPU report", attesttest.SetEntry(n.Bundle, attest.Entry{Kind: attest.KindSNP, Device: "cpu1", Body: n.Bundle.Evidence[0].Body}),
			starter(2, false), "policy.require.cpu", ""},
		{"one GPU's evidence under two names", attesttest.SetEntry(n.Bundle, attest.Entry{Kind: attest.KindNVGPU, Device: "gpu1", Body: n.Bundle.Evidence[2].Body}),
			starter(2, false), "gpu.nonce", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := appraise(t, &Node{Bundle: tc.bundle}, tc.policy, nil, when)
			if tc.step == "" {
				if r.Verdict != attest.Affirming {
					t.Fatalf("verdict %s: %+v", r.Verdict, r.Policy)
				}
			} else {
				if r.Verdict == attest.Affirming {
					t.Fatalf("affirming")
				}
				if st := findStep(r, tc.step); st == nil || st.Status != attest.Fail {
					t.Fatalf("step %s: %+v", tc.step, st)
				} else {
					t.Logf("%s: %s", st.ID, st.Detail)
				}
			}
			if tc.ledger != "" && !slices.ContainsFunc(r.Ledger.Assumed, func(e attest.LedgerEntry) bool { return e.ID == tc.ledger }) {
				t.Errorf("the ledger does not assume %s: %+v", tc.ledger, r.Ledger.Assumed)
			}
		})
	}
}

// findStep finds a step in any section of a result.
func findStep(r *attest.Result, id string) *attest.Step {
	for _, name := range r.DeviceNames() {
		if st := r.Devices[name].Step(id); st != nil && st.Status == attest.Fail {
			return st
		}
	}
	for _, s := range r.Sections() {
		if st := s.Step(id); st != nil {
			return st
		}
	}
	return nil
}

// TestUntrustedRootsVouchForNothing: when the CPU report's chain fails,
// tpm.ak names it as the cause; when a GPU's chain fails, its matching
// nonce proves nothing and the ledger does not claim the binding.
func TestUntrustedRootsVouchForNothing(t *testing.T) {
	n, err := Boot(Options{Seed: 4, At: at, GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, device, step, want string }{
		{"amd: simulated", "amd: production", "tpm0", "tpm.ak", "cpu0's report, which would bind it to the TEE, did not verify"},
		{"nvidia: simulated", "nvidia: production", "gpu0", "gpu.nonce", "proves nothing"},
	} {
		data := bytes.Replace(policy.Starter(simStarter(t, []string{"snp", "tpm"}, 1)), []byte(tc.from), []byte(tc.to), 1)
		p, err := policy.Parse("roots", data)
		if err != nil {
			t.Fatal(err)
		}
		r := appraise(t, n, p, nil, at.Add(time.Hour))
		st := r.Devices[tc.device].Step(tc.step)
		if st == nil || !strings.Contains(st.Detail, tc.want) {
			t.Errorf("%s: %+v", tc.step, st)
		}
		if tc.device == "gpu0" && slices.ContainsFunc(r.Ledger.Verified, func(e attest.LedgerEntry) bool { return e.ID == "nvgpu.binding" }) {
			t.Error("the ledger claims the GPU binding although the GPU's chain failed")
		}
	}
}
