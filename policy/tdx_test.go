package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestTDXSection(t *testing.T) {
	p, err := Parse("t", []byte("version: 1\ntdx:\n  tcb_status: {OutOfDate: warn, SWHardeningNeeded: refuse}\n  mrtd: ["+strings.Repeat("ab", 48)+"]\n  allow_sept_ve: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Requires("tdx") || p.Optional("tdx") || len(p.CPUAllowed()) != 1 || p.CPUAllowed()[0] != "tdx" {
		t.Fatalf("a tdx section must make tdx the required CPU TEE: %v", p.CPUAllowed())
	}
	for status, want := range map[string]TCBAction{
		"UpToDate": "", "OutOfDate": TCBWarn, "SWHardeningNeeded": TCBRefuse, "ConfigurationNeeded": TCBWarn,
		"ConfigurationAndSWHardeningNeeded": TCBWarn, "OutOfDateConfigurationNeeded": TCBRefuse, "Revoked": TCBRefuse, "Bogus": TCBRefuse,
	} {
		if got := p.TDX.Action(status); got != want {
			t.Errorf("%s: %q, want %q", status, got, want)
		}
	}
	opt, err := Parse("t", []byte("version: 1\nrequire: [snp]\ntdx: {optional: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if opt.Requires("tdx") || len(opt.CPUAllowed()) != 2 {
		t.Fatalf("optional tdx: requires %v, allowed %v", opt.Requires("tdx"), opt.CPUAllowed())
	}
}

func TestTDXSectionErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown status", "tdx: {tcb_status: {Stale: warn}}", "unknown TCB status \"Stale\""},
		{"UpToDate listed", "tdx: {tcb_status: {UpToDate: warn}}", "UpToDate is always affirming"},
		{"bad action", "tdx: {tcb_status: {OutOfDate: ignore}}", "use warn or refuse"},
		{"short MRTD", "tdx: {mrtd: [abcd]}", "tdx.mrtd[0] is 2 bytes"},
		{"short RTMR", "tdx: {rtmr1: [abcd]}", "tdx.rtmr1[0] is 2 bytes"},
		{"short MROWNER", "tdx: {mr_owner: abcd}", "tdx.mr_owner is 2 bytes"},
		{"short XFAM", "tdx: {xfam: [abcd]}", "tdx.xfam[0] is 2 bytes"},
		{"short TEE_TCB_SVN", "tdx: {min_tee_tcb_svn: abcd}", "tdx.min_tee_tcb_svn is 2 bytes"},
		{"unknown field", "tdx: {allow_debug: true}", "unknown field \"allow_debug\""},
		{"optional and required", "require: [tdx]\ntdx: {optional: true}", "tdx says optional: true, but require lists tdx"},
	} {
		_, err := Parse("t", []byte("version: 1\n"+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
}

func TestTDXStarter(t *testing.T) {
	for _, o := range []StarterOptions{
		{TDX: &StarterTDX{}},
		{Simulated: true, GPUs: 2, TDX: &StarterTDX{MRTD: []string{strings.Repeat("ab", 48)}, RTMR2: []string{strings.Repeat("cd", 48)}}},
		{TDX: &StarterTDX{}, Require: []string{"tdx", "tpm"}},
	} {
		data := Starter(o)
		p, err := Parse("starter", data)
		if err != nil {
			t.Fatalf("TDX starter does not parse: %v\n%s", err, data)
		}
		if got := p.CPUAllowed(); len(got) != 1 || got[0] != "tdx" {
			t.Fatalf("CPU TEEs %v\n%s", got, data)
		}
		if p.Requires("tpm") != slices.Contains(o.Require, "tpm") || len(p.TDX.MRTD) != len(o.TDX.MRTD) || len(p.TDX.RTMR2) != len(o.TDX.RTMR2) || p.SimulatedRoots() != o.Simulated {
			t.Fatalf("starter %+v:\n%s", o, data)
		}
		if err := p.CheckComplete(); err != nil {
			t.Fatal(err)
		}
	}
}
