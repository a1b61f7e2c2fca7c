package attest_test

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/attesttest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
)

// TestParallelEqualsSequential appraises 8-GPU bundles, good and with
// broken GPUs, with the GPUs verified concurrently and one after another:
// the results must be the same, byte for byte, as JSON.
func TestParallelEqualsSequential(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	n, err := sim.Boot(sim.Options{Seed: 5, At: at, GPUs: 8})
	if err != nil {
		t.Fatal(err)
	}
	other, err := sim.Boot(sim.Options{Seed: 6, At: at, NoTPM: true, GPUs: 8})
	if err != nil {
		t.Fatal(err)
	}
	so, err := sim.StarterOptions(8)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse("starter", policy.Starter(so))
	if err != nil {
		t.Fatal(err)
	}
	floor := bytes.Replace(policy.Starter(so), []byte("nvgpu:\n"), []byte("nvgpu:\n  min_driver: \"999.0\"\n"), 1)
	polFloor, err := policy.Parse("floor", floor)
	if err != nil {
		t.Fatal(err)
	}
	bundles := map[string]*attest.Bundle{
		"good":            n.Bundle,
		"gpu3 corrupted":  attesttest.EditBody(t, n.Bundle, "gpu3", func(b []byte) []byte { return b[:len(b)/2] }),
		"gpu5 spliced":    attesttest.Splice(t, n.Bundle, other.Bundle, "gpu5"),
		"gpu0, gpu7 gone": attesttest.Drop(n.Bundle, "gpu0", "gpu7"),
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	defer attest.SetSequential(false)
	for name, b := range bundles {
		for pname, p := range map[string]*policy.Policy{"starter": pol, "driver floor": polFloor} {
			appraise := func(seq bool) []byte {
				attest.SetSequential(seq)
				// A fresh cache each time: the GPUs of one appraisal race
				// for the shared RIMs and chains.
				r := attest.Appraise(t.Context(), b, attest.Options{At: at.Add(time.Hour), Policy: p,
					Verifiers: []attest.Verifier{snp.NewVerifier(), tpm.NewVerifier(), nvgpu.NewVerifier(nvgpu.NewCache(0))}})
				j, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				return j
			}
			seq, par := appraise(true), appraise(false)
			if !bytes.Equal(seq, par) {
				t.Errorf("%s, %s: parallel result differs from the sequential one\nsequential: %s\nparallel:   %s", name, pname, seq, par)
			}
			if name == "good" && !bytes.Contains(seq, []byte(`"verdict":"affirming"`)) {
				t.Errorf("%s: %s", name, seq)
			}
		}
	}
}
