package policy

import (
	"bytes"
	_ "embed"
	"slices"
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
	// Require lists the evidence kinds to require (default: snp and tpm,
	// and nvgpu when GPUs is not zero).
	Require []string
	// UKI, when set, is the one allowed boot component (tpm.components).
	UKI *StarterUKI
	// GPUs is the number of GPUs of the machine shape (nvgpu.count).
	GPUs int
	// Log, when set, fills the log section.
	Log *StarterLog
	// TDX, when set, writes a tdx section instead of the snp one, and the
	// tpm section only when Require lists tpm (default require: tdx, and
	// nvgpu when GPUs is not zero).
	TDX *StarterTDX
}

// StarterTDX are the TDX registers a starter policy allows, in hex.
type StarterTDX struct {
	MRTD, RTMR2 []string
}

// StarterLog is the release log a starter policy pins.
type StarterLog struct {
	// Origin is the log's origin; Key its verifier key.
	Origin, Key string
	// Witnesses are the witnesses' verifier keys, Quorum how many must cosign.
	Witnesses []string
	Quorum    int
	// Publishers are the publishers' verifier keys (empty: not pinned).
	Publishers []string
}

// StarterUKI are the reference values of one allowed UKI boot, in hex.
type StarterUKI struct {
	Name, Digest, PCR11, Cmdline, NodeSoftware string
}

// Starter returns a commented starter policy. It parses with Parse.
func Starter(o StarterOptions) []byte {
	if len(o.Require) == 0 && o.TDX != nil {
		o.Require = []string{"tdx"}
		if o.GPUs > 0 {
			o.Require = append(o.Require, "nvgpu")
		}
	}
	if len(o.Require) == 0 {
		o.Require = []string{"snp", "tpm"}
		if o.GPUs > 0 {
			o.Require = append(o.Require, "nvgpu")
		}
	}
	t := template.Must(template.New("starter").Funcs(template.FuncMap{"join": strings.Join, "has": slices.Contains[[]string]}).Parse(starterTemplate))
	var b bytes.Buffer
	if err := t.Execute(&b, o); err != nil {
		panic("policy: starter template: " + err.Error())
	}
	return b.Bytes()
}
