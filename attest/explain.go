package attest

import (
	"fmt"
	"io"
	"strings"

	"github.com/sworn-dev/sworn/internal/safetext"
)

// A trust layer of the chain, from the hardware up.
const (
	layerRoots = iota
	layerCPU
	layerBoot
	layerGPU
	layerRelease
	layerNode
	numLayers
)

// layerInfo names a layer, says what it rests on, and what its absence means.
var layerInfo = [numLayers]struct{ title, rests, absent string }{
	layerRoots: {"Hardware roots of trust",
		"nothing below it: the vendors' root keys pinned in sworn (AMD's ARK per product line, Intel's SGX Root CA, NVIDIA's device and RIM roots), or sworn's simulated roots when the policy trusts them; their revocation lists as stapled in the bundle",
		"no device evidence: nothing here rests on a hardware root"},
	layerCPU: {"CPU TEE",
		"the hardware roots: the report is signed by a chip key (VCEK or VLEK) that chains to AMD's root, or the quote by a Quoting Enclave whose PCK certificate chains to Intel's root",
		"no CPU TEE evidence: nothing shows that the node runs in a TEE"},
	layerBoot: {"Measured boot (vTPM)",
		"the CPU TEE when the vTPM's attestation key is bound to the TEE report (tpm.binding, tpm.ak); otherwise whoever runs the vTPM",
		"no TPM evidence: the guest's measured boot is not verified"},
	layerGPU: {"GPUs",
		"NVIDIA's device root, which certifies each GPU's attestation key, and NVIDIA's RIM root for the reference measurements; each report answers a nonce derived from the node's keys, which the CPU TEE report carries",
		"no GPU evidence: a node without GPUs, or one that left their evidence out (a policy pins the count with nvgpu.count)"},
	layerRelease: {"Release log",
		"the log key, witness keys and quorum pinned in the policy, and the measurements that the layers below verified",
		"the policy pins no release log: the node's software is not shown to be a published, witnessed release"},
	layerNode: {"Node keys, freshness and policy",
		"the layers above: every piece of evidence carries the binding of the node's request and receipt keys",
		"no checks of the bundle itself"},
}

// explainLayer is one layer's steps and ledger entries.
type explainLayer struct {
	devices  []string // "cpu0 (AMD SEV-SNP)"
	steps    []explainStep
	verified []LedgerEntry
	assumed  []LedgerEntry
}

type explainStep struct {
	where string // device or section name
	Step
}

// stepLayer places a step: the certificate chains and their revocation go
// to the hardware roots, every other step to its device's or section's layer.
func stepLayer(kind, section, id string) int {
	if kind != "" && (strings.HasSuffix(id, ".chain") || strings.HasSuffix(id, ".revocation") || id == "gpu.ocsp") {
		return layerRoots
	}
	switch {
	case section == "release":
		return layerRelease
	case section != "":
		return layerNode
	}
	return kindLayer(kind)
}

func kindLayer(kind string) int {
	switch kind {
	case KindSNP, KindTDX:
		return layerCPU
	case KindTPM:
		return layerBoot
	case KindNVGPU:
		return layerGPU
	}
	return layerNode
}

// ledgerLayer places a ledger entry by its ID.
func ledgerLayer(id string) int {
	prefix, _, _ := strings.Cut(id, ".")
	switch {
	case id == "amd.root" || id == "intel.root" || strings.HasSuffix(id, ".simulated") || id == "snp.revocation" || id == "snp.no-revocation" ||
		id == "tdx.revocation" || id == "tdx.no-revocation" || id == "tdx.collateral" ||
		id == "nvgpu.chain" || id == "nvgpu.rims" || id == "nvgpu.revocation":
		return layerRoots
	case prefix == "snp" || prefix == "tdx" || prefix == "amd" || prefix == "intel" || prefix == "azure":
		return layerCPU
	case prefix == "tpm":
		return layerBoot
	case prefix == "nvgpu" || prefix == "gpu":
		return layerGPU
	case prefix == "release" || prefix == "log":
		return layerRelease
	}
	return layerNode
}

// WriteExplain renders the result as the chain of trust, layer by layer
// from the hardware roots up: the CPU TEE, the measured boot, the GPUs, the
// release log, then the node's keys, freshness and policy. Each layer gives
// its verdict, what it rests on, the checks it verified (and any that
// failed, warned or were skipped), and what is still assumed there. Every
// step and ledger entry of the result appears in exactly one layer.
func (r *Result) WriteExplain(w io.Writer) error {
	var layers [numLayers]explainLayer
	for _, name := range r.DeviceNames() {
		d := r.Devices[name]
		l := &layers[kindLayer(d.Kind)]
		l.devices = append(l.devices, fmt.Sprintf("%s (%s) %s", name, kindTitle(d.Kind), d.Verdict))
		for _, st := range d.Steps {
			i := stepLayer(d.Kind, "", st.ID)
			layers[i].steps = append(layers[i].steps, explainStep{name, st})
		}
	}
	for _, s := range r.Sections() {
		for _, st := range s.Steps {
			i := stepLayer("", s.Name, st.ID)
			layers[i].steps = append(layers[i].steps, explainStep{s.Name, st})
		}
	}
	for _, e := range r.Ledger.Verified {
		l := &layers[ledgerLayer(e.ID)]
		l.verified = append(l.verified, e)
	}
	for _, e := range r.Ledger.Assumed {
		l := &layers[ledgerLayer(e.ID)]
		l.assumed = append(l.assumed, e)
	}

	var b strings.Builder
	r.writeHead(&b)
	b.WriteString("\nThe chain of trust, from the hardware up:\n")
	for i, l := range layers {
		writeLayer(&b, i, l)
	}
	if r.Simulated {
		fmt.Fprintf(&b, "\n%s\n", SimulatedBanner)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeLayer(b *strings.Builder, i int, l explainLayer) {
	info := layerInfo[i]
	s := Section{}
	for _, st := range l.steps {
		s.Steps = append(s.Steps, st.Step)
	}
	verdict := "not in this bundle"
	if len(s.Steps) > 0 {
		verdict = string(s.Finish())
	}
	fmt.Fprintf(b, "\n%d. %s — %s\n", i+1, info.title, verdict)
	if len(l.devices) > 0 {
		fmt.Fprintf(b, "   Devices: %s\n", strings.Join(l.devices, "; "))
	}
	fmt.Fprintf(b, "   Rests on: %s.\n", info.rests)
	var checked, problems []explainStep
	for _, st := range l.steps {
		if st.Status == Pass {
			checked = append(checked, st)
		} else {
			problems = append(problems, st)
		}
	}
	writeSteps(b, "Checked", checked)
	writeSteps(b, "Not verified", problems)
	writeEntries(b, "Verified", l.verified)
	writeEntries(b, "Assumed", l.assumed)
	if len(l.steps) == 0 && len(l.verified) == 0 && len(l.assumed) == 0 {
		fmt.Fprintf(b, "   Not verified: %s.\n", info.absent)
	}
}

func writeSteps(b *strings.Builder, title string, steps []explainStep) {
	if len(steps) == 0 {
		return
	}
	fmt.Fprintf(b, "   %s:\n", title)
	for _, st := range steps {
		mark, detail := st.markDetail()
		fmt.Fprintf(b, "     %s %s %s: %s\n", mark, st.where, st.ID, detail)
	}
}

// writeHead writes what every text rendering starts with: the SIMULATED
// banner when it applies, the verdict, and for a verdict that is not
// affirming, the first reason.
func (r *Result) writeHead(b *strings.Builder) {
	if r.Simulated {
		fmt.Fprintf(b, "%s\n\n", SimulatedBanner)
	}
	fmt.Fprintf(b, "Verdict: %s (at %s)\n", strings.ToUpper(string(r.Verdict)), FormatAt(r.At))
	if r.Verdict != Affirming {
		if why := r.firstReason(); why != "" {
			fmt.Fprintf(b, "Because: %s\n", safetext.Clean(why))
		}
	}
}

// kindTitle is the human name of an evidence kind.
func kindTitle(kind string) string {
	if t := kindNames[kind]; t != "" {
		return t
	}
	return kind
}

// markDetail returns a step's mark (✔ ✘ ! –) and its detail as printed:
// "skipped: " before a skip's reason, control bytes escaped.
func (st Step) markDetail() (mark, detail string) {
	mark = statusMarks[st.Status]
	if mark == "" {
		mark = "?"
	}
	detail = st.Detail
	if st.Status == Skip {
		detail = "skipped: " + detail
	}
	return mark, safetext.Clean(detail)
}

func writeEntries(b *strings.Builder, title string, es []LedgerEntry) {
	if len(es) == 0 {
		return
	}
	fmt.Fprintf(b, "   %s:\n", title)
	for _, e := range es {
		fmt.Fprintf(b, "     • %s [%s]\n", e.Text, e.ID)
	}
}
