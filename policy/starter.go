package policy

import (
	"bytes"
	_ "embed"
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
}

// Starter returns a commented starter policy. It parses with Parse.
func Starter(o StarterOptions) []byte {
	t := template.Must(template.New("starter").Parse(starterTemplate))
	var b bytes.Buffer
	if err := t.Execute(&b, o); err != nil {
		panic("policy: starter template: " + err.Error())
	}
	return b.Bytes()
}
