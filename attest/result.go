package attest

import (
	"fmt"
	"slices"
	"time"
)

// Status is the outcome of one appraisal step.
type Status string

// The outcomes of a step.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// Verdict is the appraisal of a device, a section or a whole bundle, in the
// vocabulary of draft-ietf-rats-ear.
type Verdict string

// The verdicts, from best to worst.
const (
	Affirming       Verdict = "affirming"
	Warning         Verdict = "warning"
	Contraindicated Verdict = "contraindicated"
)

func (v Verdict) rank() int {
	switch v {
	case Affirming:
		return 0
	case Warning:
		return 1
	default: // anything unknown is treated as the worst
		return 2
	}
}

// Worse returns the worse of v and w.
func (v Verdict) Worse(w Verdict) Verdict {
	if w.rank() > v.rank() {
		return w
	}
	return v
}

// Step is the outcome of one check, with a stable, kind-prefixed ID such as
// "snp.signature".
type Step struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Optional marks a step that the policy does not require: when it is
	// skipped, the verdict is not lowered. Failures always count.
	Optional bool `json:"optional,omitempty"`
}

// Section is an appraised unit: a device ("cpu0", "gpu0") or a part of the
// bundle that is not a device ("release", "policy").
type Section struct {
	Kind    string         `json:"kind,omitempty"`
	Verdict Verdict        `json:"verdict"`
	Steps   []Step         `json:"steps"`
	Claims  map[string]any `json:"claims,omitempty"`
}

// Add records a step.
func (s *Section) Add(id string, st Status, format string, args ...any) {
	s.Steps = append(s.Steps, Step{ID: id, Status: st, Detail: fmt.Sprintf(format, args...)})
}

// AddOptional records a step that the policy does not require.
func (s *Section) AddOptional(id string, st Status, format string, args ...any) {
	s.Steps = append(s.Steps, Step{ID: id, Status: st, Detail: fmt.Sprintf(format, args...), Optional: true})
}

// Step returns the first step with the given ID, or nil.
func (s *Section) Step(id string) *Step {
	for i := range s.Steps {
		if s.Steps[i].ID == id {
			return &s.Steps[i]
		}
	}
	return nil
}

// Finish computes the section's verdict from its steps: any failure makes it
// contraindicated; a warning or a required step that was skipped makes it at
// best a warning; a section with no steps is not affirming.
func (s *Section) Finish() Verdict {
	v := Affirming
	if len(s.Steps) == 0 {
		v = Warning
	}
	for _, st := range s.Steps {
		switch st.Status {
		case Pass:
		case Fail:
			v = v.Worse(Contraindicated)
		case Warn:
			v = v.Worse(Warning)
		case Skip:
			if !st.Optional {
				v = v.Worse(Warning)
			}
		default:
			v = v.Worse(Contraindicated)
		}
	}
	s.Verdict = v
	return v
}

// FirstFailure returns the first failed step, or nil.
func (s *Section) FirstFailure() *Step {
	for i := range s.Steps {
		if s.Steps[i].Status == Fail {
			return &s.Steps[i]
		}
	}
	return nil
}

// LedgerEntry is one sentence of the trust ledger, with a stable ID.
type LedgerEntry struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// Ledger says in plain sentences what an appraisal verified and what it
// still had to assume.
type Ledger struct {
	Verified []LedgerEntry `json:"verified"`
	Assumed  []LedgerEntry `json:"assumed"`
}

// Verify records a verified fact. An ID already present is not repeated.
func (l *Ledger) Verify(id, text string) { l.Verified = addEntry(l.Verified, id, text) }

// Assume records an assumption. An ID already present is not repeated.
func (l *Ledger) Assume(id, text string) { l.Assumed = addEntry(l.Assumed, id, text) }

// Vouched runs appraise on env with a ledger of its own, and adds to env's
// ledger what it verified only if the steps vouch (every one of them
// passed): evidence nobody vouches for proves nothing. What it assumed is
// added either way; env's Simulated mark is what appraise left.
func Vouched(env *Env, appraise func(*Env) *Section, vouch ...string) *Section {
	local := *env
	// Sized for what one section usually enters.
	local.Ledger = &Ledger{Verified: make([]LedgerEntry, 0, 8), Assumed: make([]LedgerEntry, 0, 8)}
	s := appraise(&local)
	env.Simulated = local.Simulated
	trusted := true
	for _, id := range vouch {
		trusted = trusted && s.Step(id).Status == Pass
	}
	if trusted {
		for _, e := range local.Ledger.Verified {
			env.Ledger.Verify(e.ID, e.Text)
		}
	}
	for _, e := range local.Ledger.Assumed {
		env.Ledger.Assume(e.ID, e.Text)
	}
	return s
}

func addEntry(es []LedgerEntry, id, text string) []LedgerEntry {
	if slices.ContainsFunc(es, func(e LedgerEntry) bool { return e.ID == id }) {
		return es
	}
	return append(es, LedgerEntry{ID: id, Text: text})
}

// Result is the outcome of an appraisal. Its JSON form is a contract that
// scripts read; see docs/result.md.
type Result struct {
	Verdict   Verdict             `json:"verdict"`
	Simulated bool                `json:"simulated"`
	At        time.Time           `json:"at"`
	Devices   map[string]*Section `json:"devices"`
	// Bundle holds the checks on the bundle itself (binding inputs,
	// freshness), when a whole bundle was appraised.
	Bundle *Section `json:"bundle,omitempty"`
	// Release holds the release.* steps, once a release log is configured.
	Release *Section `json:"release,omitempty"`
	// Policy holds the results of the policy's own rules.
	Policy *Section `json:"policy,omitempty"`
	// Receipt holds the receipt.* steps, when a receipt was verified
	// against the bundle (see docs/receipt.md).
	Receipt *Section `json:"receipt,omitempty"`
	Ledger  Ledger   `json:"ledger"`
}

// Sections returns the non-device sections that are present, in a fixed order.
func (r *Result) Sections() []NamedSection {
	var out []NamedSection
	for _, n := range []struct {
		name string
		s    *Section
	}{{"bundle", r.Bundle}, {"release", r.Release}, {"policy", r.Policy}, {"receipt", r.Receipt}} {
		if n.s != nil {
			out = append(out, NamedSection{n.name, n.s})
		}
	}
	return out
}

// NamedSection pairs a section with its name.
type NamedSection struct {
	Name string
	*Section
}

// DeviceNames returns the device names in a stable order (cpu, tpm, gpu, then others).
func (r *Result) DeviceNames() []string {
	names := make([]string, 0, len(r.Devices))
	for n := range r.Devices {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := deviceRank(a) - deviceRank(b); d != 0 {
			return d
		}
		if len(a) != len(b) { // gpu2 before gpu10
			return len(a) - len(b)
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	return names
}

func deviceRank(name string) int {
	for i, p := range []string{"cpu", "tpm", "gpu"} {
		if len(name) >= len(p) && name[:len(p)] == p {
			return i
		}
	}
	return 3
}

// Finish computes every section's verdict and the overall verdict, the worst
// of them all. A result with no devices is contraindicated: fail closed.
func (r *Result) Finish() Verdict {
	v := Affirming
	if len(r.Devices) == 0 {
		v = Contraindicated
	}
	for _, d := range r.Devices {
		v = v.Worse(d.Finish())
	}
	for _, s := range r.Sections() {
		v = v.Worse(s.Finish())
	}
	r.Verdict = v
	return v
}

// FirstProblem names the first failed step of r, or else its first warned
// or required-but-skipped step, as "device step: detail".
func (r *Result) FirstProblem() string {
	for _, st := range []Status{Fail, Warn, Skip} {
		for _, name := range r.DeviceNames() {
			for _, s := range r.Devices[name].Steps {
				if s.Status == st && !(st == Skip && s.Optional) {
					return fmt.Sprintf("%s %s: %s", name, s.ID, s.Detail)
				}
			}
		}
		for _, sec := range r.Sections() {
			for _, s := range sec.Steps {
				if s.Status == st && !(st == Skip && s.Optional) {
					return fmt.Sprintf("%s: %s", s.ID, s.Detail)
				}
			}
		}
	}
	return "no step passed"
}
