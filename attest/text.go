package attest

import (
	"fmt"
	"io"
	"strings"
)

// kindNames are the human names of evidence kinds, for text output.
var kindNames = map[string]string{
	KindSNP:   "AMD SEV-SNP",
	KindTDX:   "Intel TDX",
	KindTPM:   "TPM 2.0",
	KindNVGPU: "NVIDIA GPU",
}

var statusMarks = map[Status]string{Pass: "✔", Fail: "✘", Warn: "!", Skip: "–"}

// SimulatedBanner is printed at the top and bottom of every text rendering of
// a simulated appraisal.
const SimulatedBanner = "SIMULATED: this appraisal trusted simulated roots; it proves nothing about real hardware."

// WriteText renders the result as a readable chain-of-trust report: each
// device and section with its steps (✔ pass, ✘ fail, ! warning, – skipped)
// and why, then the trust ledger.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	r.writeHead(&b)
	for _, name := range r.DeviceNames() {
		d := r.Devices[name]
		writeSection(&b, fmt.Sprintf("%s (%s)", name, kindTitle(d.Kind)), d.Section())
	}
	for _, s := range r.Sections() {
		writeSection(&b, s.Name, s.Section)
	}
	b.WriteString("\nVerified:\n")
	writeLedger(&b, r.Ledger.Verified)
	b.WriteString("\nStill assumed (the trust ledger):\n")
	writeLedger(&b, r.Ledger.Assumed)
	if r.Simulated {
		fmt.Fprintf(&b, "\n%s\n", SimulatedBanner)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Section returns s itself; it lets devices and named sections share code.
func (s *Section) Section() *Section { return s }

func writeSection(b *strings.Builder, title string, s *Section) {
	fmt.Fprintf(b, "\n%s — %s\n", title, s.Verdict)
	width := 0
	for _, st := range s.Steps {
		width = max(width, len(st.ID))
	}
	for _, st := range s.Steps {
		mark, detail := st.markDetail()
		fmt.Fprintf(b, "  %s %-*s  %s\n", mark, width, st.ID, detail)
	}
}

func writeLedger(b *strings.Builder, es []LedgerEntry) {
	if len(es) == 0 {
		b.WriteString("  (nothing)\n")
	}
	for _, e := range es {
		fmt.Fprintf(b, "  • %s [%s]\n", e.Text, e.ID)
	}
}

// firstReason returns the first failure, or else the first warning or
// required skip, as "id: detail".
func (r *Result) firstReason() string {
	var all []*Section
	for _, n := range r.DeviceNames() {
		all = append(all, r.Devices[n])
	}
	for _, s := range r.Sections() {
		all = append(all, s.Section)
	}
	for _, want := range []Status{Fail, Warn, Skip} {
		for _, s := range all {
			for _, st := range s.Steps {
				if st.Status == want && !(want == Skip && st.Optional) {
					return st.ID + ": " + st.Detail
				}
			}
		}
	}
	return ""
}
