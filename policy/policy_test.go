package policy

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
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
		{"empty", "  \n", "policy t is empty"},
		{"only a comment", "# nothing\n", "is empty"},
		{"version as a string", "version: '1'\n", "version must be the integer 1"},
		{"version as a float", "version: 1.0\n", "version must be the integer 1"},
		{"not a mapping", "- version: 1\n", "a policy is a mapping"},
		{"two documents", "version: 1\n---\nversion: 1\n", "2 YAML documents"},
		{"anchor", "version: 1\nrequire: &k [snp]\n", "anchors, aliases and merge keys"},
		{"alias", "version: 1\nrules:\n  - &r {name: a, expr: 'true', message: m}\n  - *r\n", "line 3"},
		{"merge key", "version: 1\nsnp: {<<: {allow_debug: true}}\n", "anchors, aliases and merge keys"},
		{"require twice", "version: 1\nrequire: [snp, snp]\n", "lists snp twice"},
		{"two CPU TEEs required", "version: 1\nrequire: [snp, tdx]\n", "both snp and tdx"},
		{"required and optional", "version: 1\nrequire: [tpm]\ntpm: {optional: true}\n", "keep one"},
		{"count and min_count", "version: 1\nnvgpu: {count: 1, min_count: 1}\n", "both set"},
		{"negative count", "version: 1\nnvgpu: {count: -1}\n", "count is -1"},
		{"huge count", "version: 1\nnvgpu: {min_count: 1000}\n", "min_count is 1000"},
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

// TestBillionLaughs: nested aliases would expand to gigabytes on decoding;
// they are refused from the syntax tree, in linear time.
func TestBillionLaughs(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	start := time.Now()
	_, err := Parse("laughs", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "anchors, aliases") {
		t.Fatalf("error %v", err)
	}
	t.Logf("%d bytes refused in %v: %v", b.Len(), time.Since(start), err)
}

func TestEmptyPublishers(t *testing.T) {
	_, lv, _ := note.GenerateKey(rand.Reader, "log.test")
	_, err := Parse("p", []byte(fmt.Sprintf("version: 1\nlog: {origin: log.test, key: %q, publishers: []}\n", lv)))
	if err == nil || !strings.Contains(err.Error(), "publishers is an empty list") {
		t.Fatalf("error %v", err)
	}
}

func TestCheckComplete(t *testing.T) {
	for yaml, ok := range map[string]bool{
		"version: 1\n":                            false,
		"version: 1\nrequire: []\n":               false,
		"version: 1\nrequire: [tpm, nvgpu]\n":     false,
		"version: 1\nrequire: [snp]\n":            true,
		"version: 1\nsnp: {allow_debug: false}\n": true,
	} {
		p, err := Parse("p", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CheckComplete(); (err == nil) != ok {
			t.Errorf("%q: CheckComplete %v, want ok=%v", yaml, err, ok)
		}
	}
}
