package policy

import (
	"strings"
	"testing"
)

func TestStarterPoliciesParse(t *testing.T) {
	for _, o := range []StarterOptions{{}, {Simulated: true, SNPMeasurements: []string{strings.Repeat("ab", 48)}, SNPMinTCB: TCB{Bootloader: 4, SNP: 22, Microcode: 213}}} {
		data := Starter(o)
		p, err := Parse("starter", data)
		if err != nil {
			t.Fatalf("starter (simulated=%v) does not parse: %v\n%s", o.Simulated, err, data)
		}
		if p.SimulatedRoots() != o.Simulated {
			t.Errorf("simulated=%v starter has SimulatedRoots %v", o.Simulated, p.SimulatedRoots())
		}
		if !p.Requires("snp") || p.SNP.VMPL == nil || *p.SNP.VMPL != 0 {
			t.Errorf("starter requirements not as documented: %+v", p)
		}
		if len(p.SNP.Measurements) != len(o.SNPMeasurements) {
			t.Errorf("measurements %d, want %d", len(p.SNP.Measurements), len(o.SNPMeasurements))
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown field names its line", "version: 1\nsnp:\n  allow_debugg: true\n", "[3:3] unknown field \"allow_debugg\""},
		{"missing version", "roots: {amd: production}\n", "missing \"version: 1\""},
		{"future version", "version: 2\n", "version 2 is not supported"},
		{"bad root", "version: 1\nroots: {amd: test}\n", "roots.amd is \"test\""},
		{"unknown kind", "version: 1\nrequire: [sgx]\n", "unknown evidence kind \"sgx\""},
		{"short measurement", "version: 1\nsnp: {measurements: [abcd]}\n", "48 bytes"},
		{"bad hex", "version: 1\nsnp: {measurements: [xyz]}\n", "invalid hex"},
		{"bad duration", "version: 1\nmax_age: soon\n", "invalid duration"},
		{"bad vmpl", "version: 1\nsnp: {vmpl: 4}\n", "snp.vmpl is 4"},
		{"rule without message", "version: 1\nrules: [{name: a, expr: 'true'}]\n", "needs a message"},
		{"rule does not compile", "version: 1\nrules: [{name: a, expr: 'claims.', message: m}]\n", "rules[0] (a)"},
		{"rule not bool", "version: 1\nrules: [{name: a, expr: '1 + 1', message: m}]\n", "must give a bool"},
		{"duplicate rule", "version: 1\nrules: [{name: a, expr: 'true', message: m}, {name: a, expr: 'true', message: m}]\n", "used twice"},
		{"duplicate key", "version: 1\nversion: 1\n", "already defined"},
		{"not yaml", "{{{", "policy t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRules(t *testing.T) {
	p, err := Parse("t", []byte(`version: 1
rules:
  - name: vmpl0
    expr: claims.cpu0.vmpl == 0
    message: the report is not from VMPL 0
  - name: svn
    expr: claims.cpu0.guest_svn >= 2
    message: guest SVN too old
  - name: missing
    expr: claims.gpu0.driver == "x"
    message: no GPU
`))
	if err != nil {
		t.Fatal(err)
	}
	out := p.EvalRules(map[string]map[string]any{"cpu0": {"vmpl": uint32(0), "guest_svn": uint32(1)}})
	if len(out) != 3 {
		t.Fatalf("%d outcomes", len(out))
	}
	if !out[0].OK || out[0].Err != nil {
		t.Errorf("vmpl0: %+v", out[0])
	}
	if out[1].OK || out[1].Err != nil {
		t.Errorf("svn: %+v", out[1])
	}
	if out[2].OK || out[2].Err == nil {
		t.Errorf("a rule over a missing claim must not pass: %+v", out[2])
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Starter(StarterOptions{}))
	f.Add(Starter(StarterOptions{Simulated: true}))
	f.Add([]byte("version: 1\nrules: [{name: a, expr: 'claims.cpu0.x > 1', message: m}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		p.EvalRules(map[string]map[string]any{"cpu0": {"x": 2}})
	})
}
