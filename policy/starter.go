package policy

import (
	"bytes"
	_ "embed"
	"strings"
	"text/template"
)

//go:embed starter.yaml.tmpl
var starterTemplate string

// StarterOptions choose what a starter policy trusts.
type StarterOptions struct {
	// Simulated makes a policy that trusts sworn's simulated roots.
	Simulated bool
	// SNPMeasurements are the launch measurements to allow (hex).
	SNPMeasurements []string
	// SNPMinTCB is the TCB floor to write.
	SNPMinTCB TCB
	// AllowSMT writes snp.allow_smt.
	AllowSMT bool
	// Require lists the evidence kinds to require (default: snp).
	Require []string
	// UKI, when set, is the one allowed boot component (tpm.components).
	UKI *StarterUKI
}

// StarterUKI are the reference values of one allowed UKI boot, in hex.
type StarterUKI struct {
	Name, Digest, PCR11, Cmdline, NodeSoftware string
}

// Starter returns a commented starter policy. It parses with Parse.
func Starter(o StarterOptions) []byte {
	if len(o.Require) == 0 {
		o.Require = []string{"snp"}
	}
	t := template.Must(template.New("starter").Funcs(template.FuncMap{"join": strings.Join}).Parse(starterTemplate))
	var b bytes.Buffer
	if err := t.Execute(&b, o); err != nil {
		panic("policy: starter template: " + err.Error())
	}
	return b.Bytes()
}
