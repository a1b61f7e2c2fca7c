// Package policy reads sworn's appraisal policy: a versioned YAML file that
// says which roots of trust to accept, which evidence is required, the
// floors and allow-lists per evidence kind, and optional CEL rules over the
// claims. Decoding is strict: an unknown field is an error that names its
// line.
package policy

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Version is the only policy format version this package reads.
const Version = 1

// MaxSize bounds a policy file.
const MaxSize = 1 << 20

// Root selects the trust roots for one vendor.
type Root string

// The root choices.
const (
	// Production trusts the vendor's real roots built into sworn.
	Production Root = "production"
	// Simulated trusts sworn's simulated roots only. Every result produced
	// under it is marked SIMULATED.
	Simulated Root = "simulated"
)

// Policy is a decoded policy file.
type Policy struct {
	Version int `yaml:"version"`
	// Roots selects, per vendor, the roots of trust.
	Roots Roots `yaml:"roots"`
	// Require lists evidence kinds that must be present (snp, tdx, tpm,
	// nvgpu). A kind whose section the policy configures is required too,
	// unless its section says optional: true; see Required. The CPU TEE
	// kinds (snp, tdx) are alternatives: a bundle carries exactly one.
	Require []string `yaml:"require"`
	// MaxAge is the oldest evidence accepted: the age of a passport-mode
	// epoch. Zero means no limit.
	MaxAge Duration `yaml:"max_age"`
	// SNP holds the AMD SEV-SNP checks.
	SNP SNP `yaml:"snp"`
	// TDX holds the Intel TDX checks.
	TDX TDX `yaml:"tdx"`
	// Rules are CEL expressions over the claims, each with its message.
	Rules []Rule `yaml:"rules"`
	// TPM holds the TPM / vTPM measured-boot checks.
	TPM TPM `yaml:"tpm"`
	// NVGPU holds the NVIDIA confidential GPU checks.
	NVGPU NVGPU `yaml:"nvgpu"`

	rules []*compiledRule
	// sections are the top-level keys the file sets.
	sections map[string]bool

	// Log pins the release transparency log: its key, the witnesses and
	// their quorum. Nil: release proofs cannot be checked.
	Log *Log `yaml:"log"`
	// Wire holds what a client may use to encrypt requests.
	Wire Wire `yaml:"wire"`
}

// Wire is the wire section of a policy (docs/protocol.md).
type Wire struct {
	// AllowClassical lets a client encrypt to a node key without
	// post-quantum protection (X25519 alone) when the node offers no
	// hybrid key. Default: refused.
	AllowClassical bool `yaml:"allow_classical"`
}

// Roots selects trust roots per vendor.
type Roots struct {
	AMD    Root `yaml:"amd"`
	Intel  Root `yaml:"intel"`
	NVIDIA Root `yaml:"nvidia"`
}

// SNP is the AMD SEV-SNP section of a policy.
type SNP struct {
	// Optional accepts a bundle whose CPU TEE is not SEV-SNP although this
	// section configures SEV-SNP checks (a policy for several platforms).
	Optional bool `yaml:"optional"`
	// MinTCB is the floor of the reported TCB, per component.
	MinTCB TCB `yaml:"min_tcb"`
	// Measurements lists the allowed launch measurements (hex, 48 bytes).
	// Empty means that no allow-list is set, and the check is skipped.
	Measurements []HexBytes `yaml:"measurements"`
	// AllowDebug permits guests whose policy allows debugging (the host can
	// then read guest memory). Default: refused.
	AllowDebug bool `yaml:"allow_debug"`
	// AllowMigrationAgent permits guests that allow a migration agent.
	AllowMigrationAgent bool `yaml:"allow_migration_agent"`
	// AllowSMT permits guests that allow simultaneous multithreading.
	// Default: refused, since SMT siblings share core resources.
	AllowSMT bool `yaml:"allow_smt"`
	// VMPL is the VMPL the report must come from. Nil accepts any.
	VMPL *int `yaml:"vmpl"`
	// SkipRevocation turns off the CRL check; the ledger then says so.
	SkipRevocation bool `yaml:"skip_revocation"`
}

// TCB is an AMD TCB version by component (SPL numbers).
type TCB struct {
	Bootloader uint8 `yaml:"bootloader"`
	TEE        uint8 `yaml:"tee"`
	SNP        uint8 `yaml:"snp"`
	Microcode  uint8 `yaml:"microcode"`
	// FMC is the Turin (and later) FMC SPL.
	FMC uint8 `yaml:"fmc"`
}

// Rule is a CEL expression over the claims that must evaluate to true.
type Rule struct {
	Name    string `yaml:"name"`
	Expr    string `yaml:"expr"`
	Message string `yaml:"message"`
}

// Duration is a time.Duration written as "24h", "90m", …
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 24h or 90m)", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// HexBytes is a byte string written in hex.
type HexBytes []byte

// UnmarshalText decodes hex.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("invalid hex %q: %v", b, err)
	}
	*h = v
	return nil
}

// MarshalText encodes hex.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

var knownKinds = []string{"snp", "tdx", "tpm", "nvgpu"}

// Parse decodes and checks a policy. name is used in error messages.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("policy %s is %d bytes; the limit is %d", name, len(data), MaxSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("policy %s is empty; write one with: sworn policy init", name)
	}
	sections, err := preflight(data)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %v", name, err)
	}
	p := Policy{sections: sections}
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField(), yaml.Strict())
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy %s: %s", name, yaml.FormatError(err, false, true))
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("policy %s: %v", name, err)
	}
	return &p, nil
}

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	data, err := ReadFileLimited(path, MaxSize)
	if err != nil {
		return nil, fmt.Errorf("policy: %v", err)
	}
	return Parse(path, data)
}

// ReadFileLimited reads at most limit bytes of the named file, and fails if
// the file is larger.
func ReadFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than the %d-byte limit", path, limit)
	}
	return data, nil
}

func (p *Policy) check() error {
	if p.Version != Version {
		if p.Version == 0 {
			return fmt.Errorf("missing \"version: %d\"", Version)
		}
		return fmt.Errorf("version %d is not supported (this sworn reads version %d)", p.Version, Version)
	}
	for vendor, r := range map[string]*Root{"amd": &p.Roots.AMD, "intel": &p.Roots.Intel, "nvidia": &p.Roots.NVIDIA} {
		switch *r {
		case "":
			*r = Production
		case Production, Simulated:
		default:
			return fmt.Errorf("roots.%s is %q; use %q or %q", vendor, *r, Production, Simulated)
		}
	}
	for i, k := range p.Require {
		if !slices.Contains(knownKinds, k) {
			return fmt.Errorf("require lists unknown evidence kind %q (known: %s)", k, strings.Join(knownKinds, ", "))
		}
		if slices.Contains(p.Require[:i], k) {
			return fmt.Errorf("require lists %s twice", k)
		}
	}
	if slices.Contains(p.Require, "snp") && slices.Contains(p.Require, "tdx") {
		return fmt.Errorf("require lists both snp and tdx; a node has one CPU TEE: require one, and configure the other's section to accept it too")
	}
	for _, k := range knownKinds {
		if slices.Contains(p.Require, k) && p.Optional(k) {
			return fmt.Errorf("%s says optional: true, but require lists %s; keep one", k, k)
		}
	}
	for i, m := range p.SNP.Measurements {
		if len(m) != 48 {
			return fmt.Errorf("snp.measurements[%d] is %d bytes; a launch measurement is 48 bytes (96 hex digits)", i, len(m))
		}
	}
	if p.SNP.VMPL != nil && (*p.SNP.VMPL < 0 || *p.SNP.VMPL > 3) {
		return fmt.Errorf("snp.vmpl is %d; it must be 0 to 3", *p.SNP.VMPL)
	}
	if err := p.TDX.check(); err != nil {
		return err
	}
	if err := p.TPM.check(); err != nil {
		return err
	}
	if err := p.NVGPU.check(); err != nil {
		return fmt.Errorf("nvgpu: %v", err)
	}
	if err := p.checkLog(); err != nil {
		return err
	}
	return p.compileRules()
}

// CPUKinds are the evidence kinds of CPU TEEs. A bundle carries exactly one
// CPU TEE entry; its binding is what protects the node's keys.
var CPUKinds = []string{"snp", "tdx"}

// Configured reports whether the policy file has a section for the kind.
func (p *Policy) Configured(kind string) bool { return p.sections[kind] }

// Optional reports whether the kind's section says optional: true.
func (p *Policy) Optional(kind string) bool {
	switch kind {
	case "snp":
		return p.SNP.Optional
	case "tdx":
		return p.TDX.Optional
	case "tpm":
		return p.TPM.Optional
	case "nvgpu":
		return p.NVGPU.Optional
	}
	return false
}

// Requires reports whether the policy requires evidence of the given kind:
// the kind is listed in require, or its section is configured and not
// optional. For the CPU TEE kinds, see CPUAllowed.
func (p *Policy) Requires(kind string) bool {
	if slices.Contains(p.Require, kind) {
		return true
	}
	if kind == "nvgpu" && (p.NVGPU.Count != nil && *p.NVGPU.Count == 0 || p.NVGPU.MinCount != nil && *p.NVGPU.MinCount == 0) {
		return false // "count: 0" or "min_count: 0": no GPU needs to be present
	}
	return p.Configured(kind) && !p.Optional(kind)
}

// Required returns the evidence kinds other than CPU TEEs that a bundle
// must carry, in a fixed order.
func (p *Policy) Required() []string {
	var out []string
	for _, k := range knownKinds {
		if !slices.Contains(CPUKinds, k) && p.Requires(k) {
			out = append(out, k)
		}
	}
	return out
}

// CPUAllowed returns the CPU TEE kinds the policy names, in require or by
// a section: the bundle's one CPU TEE must be of one of them.
func (p *Policy) CPUAllowed() []string {
	var out []string
	for _, k := range CPUKinds {
		if slices.Contains(p.Require, k) || p.Configured(k) {
			out = append(out, k)
		}
	}
	return out
}

// CheckComplete reports what makes a policy unfit to appraise whole
// bundles, beyond what Parse checks: a policy must require a CPU TEE,
// since nothing else protects the node's keys. sworn policy check runs it.
func (p *Policy) CheckComplete() error {
	if len(p.CPUAllowed()) == 0 {
		return fmt.Errorf("the policy requires no CPU TEE: add snp or tdx to require (without one, nothing protects the node's keys and no bundle can be affirming)")
	}
	return nil
}

// SimulatedRoots reports whether any vendor's roots are simulated.
func (p *Policy) SimulatedRoots() bool {
	return p.Roots.AMD == Simulated || p.Roots.Intel == Simulated || p.Roots.NVIDIA == Simulated
}

// Default returns the policy used when none is given: production roots,
// nothing required, no floors or allow-lists. Checks it cannot make are
// skipped, which keeps a result at best a warning.
func Default() *Policy {
	p := &Policy{Version: Version, Roots: Roots{Production, Production, Production}}
	return p
}
