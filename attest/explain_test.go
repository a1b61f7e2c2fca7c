package attest

import (
	"strings"
	"testing"
	"time"
)

func explainFixture() *Result {
	r := &Result{At: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Devices: map[string]*Section{}}
	cpu := &Section{Kind: KindSNP}
	cpu.Add("snp.signature", Pass, "cpu signature ok")
	cpu.Add("snp.chain", Pass, "cpu chain ok")
	cpu.Add("snp.revocation", Pass, "cpu crl ok")
	cpu.Add("snp.tcb", Fail, "tcb too old \x1b[2J")
	tpm := &Section{Kind: KindTPM}
	tpm.Add("tpm.replay", Pass, "tpm replay ok")
	r.Devices["cpu0"], r.Devices["tpm0"] = cpu, tpm
	r.Bundle = &Section{}
	r.Bundle.Add("bundle.freshness", Pass, "fresh ok")
	r.Release = &Section{}
	r.Release.Add("release.revocation", Pass, "release revocation ok")
	r.Release.Add("release.witnesses", Skip, "no witness")
	r.Ledger.Verify("snp.report", "ledger cpu report")
	r.Ledger.Verify("tpm.replay", "ledger tpm replay")
	r.Ledger.Assume("amd.root", "ledger amd root")
	r.Ledger.Assume("release.witnesses", "ledger release witnesses")
	r.Ledger.Assume("fresh.no-log", "ledger fresh")
	r.Ledger.Assume("something.new", "ledger unknown id")
	r.Finish()
	return r
}

// TestWriteExplainLayers: the report tells the chain layer by layer, from
// the hardware up, each step and ledger sentence exactly once and in its
// layer, with what the layer rests on.
func TestWriteExplainLayers(t *testing.T) {
	var b strings.Builder
	if err := explainFixture().WriteExplain(&b); err != nil {
		t.Fatal(err)
	}
	full := b.String()
	out := full[strings.Index(full, "The chain of trust"):]
	layers := []string{"1. Hardware roots of trust", "2. CPU TEE", "3. Measured boot (vTPM)", "4. GPUs", "5. Release log", "6. Node keys, freshness and policy"}
	at := map[string]int{}
	for i, l := range layers {
		at[l] = strings.Index(out, l)
		if at[l] < 0 {
			t.Fatalf("no layer %q:\n%s", l, out)
		}
		if i > 0 && at[l] < at[layers[i-1]] {
			t.Fatalf("layer %q comes before %q", l, layers[i-1])
		}
	}
	if n := strings.Count(out, "Rests on: "); n != len(layers) {
		t.Errorf("%d layers say what they rest on, want %d", n, len(layers))
	}
	layerOf := func(s string) string {
		i := strings.Index(out, s)
		if i < 0 || strings.Count(out, s) != 1 {
			t.Errorf("%q appears %d times, want once", s, strings.Count(out, s))
			return ""
		}
		best := ""
		for _, l := range layers {
			if at[l] < i && (best == "" || at[l] > at[best]) {
				best = l
			}
		}
		return best
	}
	for text, want := range map[string]string{
		"cpu chain ok":             layers[0],
		"cpu crl ok":               layers[0],
		"ledger amd root":          layers[0],
		"cpu signature ok":         layers[1],
		"tcb too old":              layers[1],
		"ledger cpu report":        layers[1],
		"tpm replay ok":            layers[2],
		"ledger tpm replay":        layers[2],
		"release revocation ok":    layers[4],
		"no witness":               layers[4],
		"ledger release witnesses": layers[4],
		"fresh ok":                 layers[5],
		"ledger fresh":             layers[5],
		"ledger unknown id":        layers[5],
	} {
		if got := layerOf(text); got != want {
			t.Errorf("%q is under %q, want %q", text, got, want)
		}
	}
	for _, want := range []string{
		"2. CPU TEE — contraindicated", "✘ cpu0 snp.tcb", "Not verified:", "– release release.witnesses: skipped: no witness",
		"4. GPUs — not in this bundle", "Not verified: no GPU evidence", "Because: snp.tcb: tcb too old", "Verdict: CONTRAINDICATED",
	} {
		if !strings.Contains(full, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(full, "\x1b") {
		t.Errorf("a step's control bytes reach the output")
	}
	if strings.Contains(out, "SIMULATED") {
		t.Errorf("a real appraisal is marked SIMULATED")
	}
}

func TestWriteExplainSimulated(t *testing.T) {
	r := explainFixture()
	r.Simulated = true
	var b strings.Builder
	r.WriteExplain(&b)
	if strings.Count(b.String(), SimulatedBanner) != 2 {
		t.Errorf("a simulated appraisal's explanation does not say SIMULATED at top and bottom:\n%s", b.String())
	}
}
