// Package tpmsim runs a simulated TPM 2.0 in process (go-tpm-tools'
// simulator, Microsoft's reference implementation; cgo, gcc and libssl-dev
// needed to build) through a synthetic UEFI + UKI boot whose event log
// records exactly what it extends, and collects sworn TPM evidence bound
// to a given binding. The rest of sworn builds without cgo; only this
// package needs it.
package tpmsim

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf16"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpmutil"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tpm"
)

// The simulator is one global instance per process.
var mu sync.Mutex

// Banks are the PCR banks the synthetic boot records and quotes.
var Banks = []tpm.Alg{tpm.SHA256, tpm.SHA384}

// Options configure a simulated boot.
type Options struct {
	// Seed makes the TPM's seeds, hence its AK, deterministic.
	Seed int64
	// Binding goes into the quotes' qualifying data.
	Binding attest.Binding
	// Cmdline is the UKI's .cmdline; default "console=ttyS0 sworn.sim=1".
	Cmdline string
	// NodeBinarySHA256 is the node software's digest measured into PCR 15;
	// default SHA-256("sworn-sim-node").
	NodeBinarySHA256 []byte
	// EK makes the boot SVSM-style: the vTPM creates its endorsement key
	// from a TCG default template, and the evidence carries its TPMT_PUBLIC
	// (Evidence.EK), which the SVSM puts in its VMPL0 SNP report. The AK is
	// then proven to share the EK's TPM with Result.ActivateCredential.
	EK EKKind
}

// EKKind selects the endorsement key of a simulated vTPM.
type EKKind int

// The endorsement keys a simulated vTPM can have.
const (
	// NoEK leaves the EK out of the evidence (an Azure-style or bare vTPM).
	NoEK EKKind = iota
	// EKRSA is the TCG default RSA-2048 EK template (tpm2.RSAEKTemplate).
	EKRSA
	// EKECC is the TCG default ECC P-256 EK template (tpm2.ECCEKTemplate).
	EKECC
)

// Template returns the EK template of the kind; ok is false for NoEK or an
// unknown kind.
func (k EKKind) Template() (t tpm2.TPMTPublic, ok bool) {
	switch k {
	case EKRSA:
		return tpm2.RSAEKTemplate, true
	case EKECC:
		return tpm2.ECCEKTemplate, true
	}
	return tpm2.TPMTPublic{}, false
}

// Reference holds the reference values of the simulated node software:
// the synthetic UKI and what measuring it gives.
type Reference struct {
	// UKI is the synthetic UKI image that is "booted".
	UKI []byte
	// UKIDigest and PCR11 are its Authenticode digest and systemd-stub
	// PCR 11, per bank: the values `sworn measure uki` prints.
	UKIDigest map[tpm.Alg][]byte
	PCR11     map[tpm.Alg][]byte
	// NodeSoftware is the node digest measured into PCR 15.
	NodeSoftware []byte
	// Cmdline is the UKI's command line.
	Cmdline string
}

// Result is a simulated boot's evidence and its reference values.
type Result struct {
	Reference
	// Evidence is the TPM evidence; Entry the same as a bundle entry (tpm0).
	Evidence *tpm.Evidence
	Entry    attest.Entry
	// AK is the attestation key (PEM) and its policy fingerprint.
	AKPEM         string
	AKFingerprint [32]byte
	// EK is the endorsement key's TPMT_PUBLIC (SVSM-style boots only): the
	// SVSM vTPM service manifest, also in Evidence.EK.
	EK []byte

	seed   int64
	ekKind EKKind
}

// ActivateCredential plays the attester of an SVSM-style boot: on the
// same simulated vTPM (the simulator re-opened with the boot's seed, which
// re-creates the same EK and AK), it runs TPM2_ActivateCredential on a
// challenge from tpm.MakeActivation and returns the recovered secret.
func (r *Result) ActivateCredential(act *tpm.Activation) ([]byte, error) {
	tmpl, ok := r.ekKind.Template()
	if !ok {
		return nil, errors.New("this simulated boot has no EK (set Options.EK): credential activation needs one")
	}
	t, err := Open(r.seed)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return tpm.ActivateCredential(t, tmpl, nil, act)
}

var ukiNames = []string{".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat"}

func ukiContents(cmdline string) map[string][]byte {
	return map[string][]byte{
		".linux":   []byte("sworn simulated kernel image"),
		".osrel":   []byte("ID=sworn\nNAME=\"sworn node (simulated)\"\nVERSION_ID=1\n"),
		".cmdline": []byte(cmdline),
		".initrd":  []byte("sworn simulated initrd"),
		".uname":   []byte("6.12.0-sworn-sim"),
		".sbat":    []byte("sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"),
	}
}

// ComputeReference returns the reference values of the node software a
// simulated boot with these options runs. It needs no TPM.
func ComputeReference(o Options) (*Reference, error) {
	if o.Cmdline == "" {
		o.Cmdline = "console=ttyS0 sworn.sim=1"
	}
	if o.NodeBinarySHA256 == nil {
		d := sha256.Sum256([]byte("sworn-sim-node"))
		o.NodeBinarySHA256 = d[:]
	}
	uki := tpm.SyntheticUKI(ukiNames, ukiContents(o.Cmdline))
	pe, err := tpm.ParsePE(uki)
	if err != nil {
		return nil, err
	}
	ref := &Reference{UKI: uki, UKIDigest: map[tpm.Alg][]byte{}, PCR11: map[tpm.Alg][]byte{}, NodeSoftware: o.NodeBinarySHA256, Cmdline: o.Cmdline}
	for _, b := range Banks {
		ref.UKIDigest[b] = pe.Authenticode(b.Hash())
		ref.PCR11[b] = pe.MeasureUKI(b.Hash()).PCR11
	}
	return ref, nil
}

// Boot runs the synthetic boot on a fresh simulator seeded with seed and
// returns the TPM entry (device "tpm0") bound to binding. It is what
// `sworn sim boot` calls.
func Boot(seed int64, binding attest.Binding) (attest.Entry, error) {
	r, err := Run(Options{Seed: seed, Binding: binding})
	if err != nil {
		return attest.Entry{}, err
	}
	return r.Entry, nil
}

type simTPM struct{ rw io.ReadWriteCloser }

func (s simTPM) Send(cmd []byte) ([]byte, error) { return tpmutil.RunCommandRaw(s.rw, cmd) }
func (s simTPM) Close() error                    { return s.rw.Close() }

// Open starts a simulator seeded with seed. The caller must Close it
// before another is opened; Open waits for that.
func Open(seed int64) (transport.TPMCloser, error) {
	mu.Lock()
	sim, err := simulator.GetWithFixedSeedInsecure(seed)
	if err != nil {
		mu.Unlock()
		return nil, fmt.Errorf("start TPM simulator: %v", err)
	}
	return &lockedTPM{simTPM{sim}}, nil
}

type lockedTPM struct {
	simTPM
}

func (l *lockedTPM) Close() error {
	defer mu.Unlock()
	return l.simTPM.Close()
}

func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u)+2)
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

// Run performs the synthetic boot and collects the evidence.
func Run(o Options) (*Result, error) {
	ref, err := ComputeReference(o)
	if err != nil {
		return nil, err
	}
	o.Cmdline, o.NodeBinarySHA256 = ref.Cmdline, ref.NodeSoftware
	t, err := Open(o.Seed)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	uki, names, contents := ref.UKI, ukiNames, ukiContents(o.Cmdline)
	res := &Result{Reference: *ref, seed: o.Seed, ekKind: o.EK}
	if o.EK != NoEK {
		tmpl, ok := o.EK.Template()
		if !ok {
			return nil, fmt.Errorf("unknown EK kind %d; use EKRSA or EKECC", o.EK)
		}
		// The SVSM creates the vTPM's EK at boot, before the guest runs.
		if res.EK, err = tpm.CreateEK(t, tmpl); err != nil {
			return nil, err
		}
	}

	log := tpm.NewLogBuilder(Banks...)
	ext := func(pcr int, d map[tpm.Alg][]byte) error { return tpm.Extend(t, pcr, d) }
	measure := func(pcr int, typ uint32, data, measured []byte) error {
		return ext(pcr, log.Measure(pcr, typ, data, measured))
	}
	const (
		evSCRTMVersion    = 0x00000008
		evSeparator       = 0x00000004
		evEFIAction       = 0x80000007
		evEFIBootServices = 0x80000003
		evIPL             = 0x0000000d
	)
	steps := []func() error{
		func() error { v := utf16z("sworn-sim firmware 1.0"); return measure(0, evSCRTMVersion, v, v) },
		func() error {
			return measure(4, evEFIAction, []byte("Calling EFI Application from Boot Option"), []byte("Calling EFI Application from Boot Option"))
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	sep := []byte{0, 0, 0, 0}
	for pcr := range 8 {
		if err := measure(pcr, evSeparator, sep, sep); err != nil {
			return nil, err
		}
	}
	// The firmware loads the UKI: its Authenticode digest on PCR 4.
	loadData := make([]byte, 32) // UEFI_IMAGE_LOAD_EVENT with an empty device path
	binary.LittleEndian.PutUint64(loadData[0:], 0x10000000)
	binary.LittleEndian.PutUint64(loadData[8:], uint64(len(uki)))
	log.Add(4, evEFIBootServices, loadData, res.UKIDigest)
	if err := ext(4, res.UKIDigest); err != nil {
		return nil, err
	}
	// systemd-stub: each section's name, then its contents, on PCR 11.
	for _, n := range names {
		if err := measure(11, evIPL, utf16z(n), append([]byte(n), 0)); err != nil {
			return nil, err
		}
		if err := measure(11, evIPL, utf16z(n), contents[n]); err != nil {
			return nil, err
		}
	}
	for _, a := range []string{"Exit Boot Services Invocation", "Exit Boot Services Returned with Success"} {
		if err := measure(5, evEFIAction, []byte(a), []byte(a)); err != nil {
			return nil, err
		}
	}
	// The node software measures itself before it makes its keys.
	nodeData := tpm.NodeEventData(o.NodeBinarySHA256)
	if err := measure(tpm.NodePCR, evIPL, nodeData, nodeData); err != nil {
		return nil, err
	}

	ev, err := tpm.Collect(t, tpm.CollectOptions{QualifyingData: o.Binding[:], Banks: Banks, EventLog: log.Bytes()})
	if err != nil {
		return nil, err
	}
	ev.EK = res.EK
	res.Evidence = ev
	if res.Entry, err = ev.Entry("tpm0"); err != nil {
		return nil, err
	}
	ak, err := tpm.ParseAK(ev.AK)
	if err != nil {
		return nil, err
	}
	res.AKPEM = ak.PEM()
	res.AKFingerprint = ak.Fingerprint()
	return res, nil
}
