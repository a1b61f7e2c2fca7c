// Package sim composes sworn's per-kind simulators into a whole simulated
// confidential node: per-boot keys, their binding, and evidence from every
// simulated device, all deterministic in a seed and a time.
//
// Simulated evidence has the real wire formats, signed under sworn's
// simulated roots. Only a policy that trusts simulated roots accepts it, and
// every result of such a policy is marked SIMULATED.
package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tdx"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/attest/tpm/tpmsim"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/wire"
)

// DefaultEpoch is the validity of a passport-mode bundle.
const DefaultEpoch = 24 * time.Hour

// Options configure a simulated boot.
type Options struct {
	// Seed selects the simulated machine and its keys.
	Seed uint64
	// At is the time of the boot.
	At time.Time
	// Nonce, when set, makes a challenge-mode bundle answering it;
	// otherwise the bundle is in passport mode for Epoch from At.
	Nonce []byte
	// Epoch is the validity of a passport-mode bundle (DefaultEpoch if zero).
	Epoch time.Duration
	// NoTPM leaves the vTPM out: the SEV-SNP report then carries the binding
	// in REPORT_DATA itself. With the vTPM, the quote's TPMS_CLOCK_INFO
	// comes from the simulator's running clock, so only a bundle without
	// it is byte-for-byte the same for the same seed and time.
	NoTPM bool
	// GPUs is the number of simulated NVIDIA confidential GPUs (gpu0…).
	GPUs int
	// Release, when set, is stapled to the bundle: the proof that the
	// simulated node software is a published release (see ReleaseRecord).
	Release []byte
	// TEE is the simulated CPU TEE: "snp" (the default) or "tdx". A
	// simulated TDX node has no vTPM: its quote's REPORTDATA carries the
	// binding itself, and NoTPM is implied.
	TEE string
	// Keys, when set, are the node's own public keys (a node that made its
	// keys in memory): the evidence binds them, and the returned Node holds
	// no private keys. Otherwise Boot derives the keys from Seed.
	Keys *attest.NodeKeys
}

// MaxGPUs bounds Options.GPUs.
const MaxGPUs = 16

// Node is a simulated node after boot: its bundle, and the private keys a
// real node would hold in memory only.
type Node struct {
	Bundle *attest.Bundle
	// RequestKeys are the OHTTP request keys: key 1 X-Wing, key 2 X25519.
	RequestKeys []*wire.PrivateKey
	ReceiptKey  ed25519.PrivateKey
}

// Boot simulates a node's boot: it derives the node's keys from the seed,
// binds them to the freshness, and collects evidence from the simulated
// devices. The node is shaped like an Azure confidential VM: a vTPM whose
// attestation key the paravisor puts, with the binding, in the runtime data
// of an HCL report, whose SEV-SNP REPORT_DATA binds that runtime data; the
// vTPM quotes a synthetic UEFI + UKI boot over the binding.
func Boot(o Options) (*Node, error) {
	if o.At.IsZero() {
		return nil, fmt.Errorf("sim: boot time is required")
	}
	if o.GPUs < 0 || o.GPUs > MaxGPUs {
		return nil, fmt.Errorf("sim: %d GPUs; a simulated node has 0 to %d", o.GPUs, MaxGPUs)
	}
	switch o.TEE {
	case "", attest.KindSNP:
	case attest.KindTDX:
		o.NoTPM = true
	default:
		return nil, fmt.Errorf("sim: TEE %q; a simulated node has an snp or a tdx CPU", o.TEE)
	}
	seed := func(label string) []byte {
		h := sha256.New()
		h.Write([]byte("sworn simulated node key: " + label))
		h.Write(binary.BigEndian.AppendUint64(nil, o.Seed))
		return h.Sum(nil)
	}
	var reqKeys []*wire.PrivateKey
	var rcptKey ed25519.PrivateKey
	b := &attest.Bundle{Version: attest.BundleVersion}
	if o.Keys != nil {
		b.Keys = *o.Keys
	} else {
		pq, err := wire.NewPrivateKey(1, wire.KEMXWing, wire.DefaultSuites, seed("request x-wing"))
		if err != nil {
			return nil, fmt.Errorf("sim: request key: %v", err)
		}
		classical, err := wire.NewPrivateKey(2, wire.KEMX25519, wire.DefaultSuites, seed("request x25519"))
		if err != nil {
			return nil, fmt.Errorf("sim: request key: %v", err)
		}
		reqKeys = []*wire.PrivateKey{pq, classical}
		rcptKey = ed25519.NewKeyFromSeed(seed("receipt"))
		b.Keys = attest.NodeKeys{
			RequestKeys: wire.MarshalKeyConfigs([]wire.KeyConfig{pq.Config(), classical.Config()}),
			ReceiptKey:  rcptKey.Public().(ed25519.PublicKey),
		}
	}
	if o.Nonce != nil {
		b.Freshness.Nonce = o.Nonce
	} else {
		epoch := o.Epoch
		if epoch <= 0 {
			epoch = DefaultEpoch
		}
		cp := make([]byte, 32)
		if o.Release != nil {
			p, err := tlog.ParseProof(o.Release)
			if err != nil {
				return nil, fmt.Errorf("sim: release proof: %v", err)
			}
			h := tlog.CheckpointHash(p.Checkpoint)
			cp = h[:]
		}
		b.Freshness.Epoch = &attest.Epoch{NotBefore: o.At.Unix(), NotAfter: o.At.Add(epoch).Unix(), Checkpoint: cp}
	}
	if err := b.Freshness.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %v", err)
	}
	binding := b.Binding()

	var vtpmEntry *attest.Entry
	var cpu attest.Entry
	var err error
	if o.TEE == attest.KindTDX {
		cpu, err = simTDX(o, binding)
	} else {
		cpu, vtpmEntry, err = simSNP(o, binding)
	}
	if err != nil {
		return nil, fmt.Errorf("sim: %v", err)
	}
	b.Evidence = append(b.Evidence, cpu)
	if vtpmEntry != nil {
		b.Evidence = append(b.Evidence, *vtpmEntry)
	}
	if o.GPUs > 0 {
		gpus, err := nvgpu.NewSimulator(seed("gpu")).Entries(binding, o.GPUs, o.At)
		if err != nil {
			return nil, fmt.Errorf("sim: GPUs: %v", err)
		}
		b.Evidence = append(b.Evidence, gpus...)
	}
	b.Release = o.Release
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %v", err)
	}
	return &Node{Bundle: b, RequestKeys: reqKeys, ReceiptKey: rcptKey}, nil
}

// simTDX returns the entry of a simulated TDX CPU whose quote binds the
// binding in REPORTDATA, with collateral issued a day before the boot.
func simTDX(o Options, binding attest.Binding) (attest.Entry, error) {
	var rd [64]byte
	copy(rd[:], binding[:])
	ev, err := tdx.NewSimPlatform(o.Seed).SimEvidence(tdx.SimQuoteOptions{ReportData: rd}, o.At)
	if err != nil {
		return attest.Entry{}, fmt.Errorf("TDX: %v", err)
	}
	body, err := ev.Marshal()
	return attest.Entry{Kind: attest.KindTDX, Device: "cpu0", Body: body}, err
}

// simSNP returns the entry of a simulated SEV-SNP CPU and, unless NoTPM,
// the vTPM's entry.
func simSNP(o Options, binding attest.Binding) (attest.Entry, *attest.Entry, error) {
	chip := snp.NewSimChip(o.Seed, snp.SimTCB)
	var ev *snp.Evidence
	var vtpmEntry *attest.Entry
	var err error
	if o.NoTPM {
		var rd [64]byte
		copy(rd[:], binding[:])
		ev, err = chip.SimEvidence(snp.SimReportOptions{ReportData: rd, Measurement: snp.SimMeasurement}, o.At)
	} else {
		// The vTPM boots the simulated UKI and quotes its PCRs over the
		// binding; the paravisor puts the AK and the binding in the HCL
		// runtime data, which the SEV-SNP report binds.
		vtpmEntry, ev, err = simVTPM(o, chip, binding)
	}
	if err != nil {
		return attest.Entry{}, nil, err
	}
	body, err := ev.Marshal()
	if err != nil {
		return attest.Entry{}, nil, err
	}
	return attest.Entry{Kind: attest.KindSNP, Device: "cpu0", Body: body}, vtpmEntry, nil
}

// simVTPM boots the simulated vTPM and returns its entry with the SEV-SNP
// evidence whose HCL runtime data carries its AK and the binding.
func simVTPM(o Options, chip *snp.SimChip, binding attest.Binding) (*attest.Entry, *snp.Evidence, error) {
	vtpm, err := tpmsim.Run(tpmsim.Options{Seed: int64(o.Seed), Binding: binding})
	if err != nil {
		return nil, nil, fmt.Errorf("vTPM: %v", err)
	}
	ak, err := tpm.ParseAK(vtpm.Evidence.AK)
	if err != nil {
		return nil, nil, fmt.Errorf("vTPM: %v", err)
	}
	runtime, err := snp.NewRuntimeData(ak.Key, binding[:])
	if err != nil {
		return nil, nil, err
	}
	ev, err := chip.SimHCLEvidence(snp.SimReportOptions{Measurement: snp.SimMeasurement}, runtime, o.At)
	if err != nil {
		return nil, nil, fmt.Errorf("SEV-SNP: %v", err)
	}
	return &vtpm.Entry, ev, nil
}

// Reference returns the reference values of the simulated node software:
// what a release of it would publish, and what a policy for simulated
// nodes expects.
func Reference() (*tpmsim.Reference, error) { return tpmsim.ComputeReference(tpmsim.Options{}) }

// ReleaseID is the release id of the simulated node software.
const ReleaseID = "sworn-sim-node"

// ReleaseRecord returns the unsigned release record of the simulated node
// software, valid for a year from created: the SEV-SNP launch measurement,
// the UKI (Authenticode, SHA-384) and its PCR 11, the node binary, and the
// machine shape's number of GPUs with, when there are any, the simulated
// GPUs' driver and VBIOS. Publish it with `sworn release publish` and
// staple the proof with Options.Release.
func ReleaseRecord(version string, created time.Time, gpus int) (*tlog.Record, error) {
	if gpus < 0 || gpus > MaxGPUs {
		return nil, fmt.Errorf("sim: %d GPUs; a simulated node has 0 to %d", gpus, MaxGPUs)
	}
	ref, err := Reference()
	if err != nil {
		return nil, err
	}
	created = created.UTC().Truncate(time.Second)
	r := &tlog.Record{
		Schema: tlog.Schema,
		Type:   tlog.TypeRelease,
		Release: &tlog.Release{
			ID: ReleaseID, Version: version, Created: created, NotAfter: created.AddDate(1, 0, 0),
			Components: []tlog.Component{
				{Name: "uki", Digest: "sha384:" + hex.EncodeToString(ref.UKIDigest[tpm.SHA384])},
				{Name: "node", Digest: "sha256:" + hex.EncodeToString(ref.NodeSoftware)},
			},
			TEE:  tlog.TEE{SNPMeasurements: []tlog.HexBytes{snp.SimMeasurement[:]}},
			PCRs: []tlog.PCR{{Bank: "sha384", Index: 11, Digest: ref.PCR11[tpm.SHA384]}},
			GPU:  tlog.GPU{Count: &gpus},
		},
	}
	if gpus > 0 {
		r.Release.GPU.DriverVersions = []string{nvgpu.SimDriverVersion}
		r.Release.GPU.VBIOSVersions = []string{nvgpu.SimVBIOSVersion}
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("sim: release record: %v", err)
	}
	return r, nil
}

// StarterOptions returns the options of the simulated starter policy
// (sworn policy init --simulated): simulated roots, the simulated launch
// measurement and TCB, the simulated UKI boot, and gpus GPUs.
func StarterOptions(gpus int) (policy.StarterOptions, error) {
	ref, err := Reference()
	if err != nil {
		return policy.StarterOptions{}, err
	}
	t := snp.DecodeTCB(snp.SimTCB, "Milan")
	return policy.StarterOptions{
		Simulated: true, GPUs: gpus,
		SNPMeasurements: []string{hex.EncodeToString(snp.SimMeasurement[:])},
		SNPMinTCB:       policy.TCB{Bootloader: t.Bootloader, TEE: t.TEE, SNP: t.SNP, Microcode: t.Microcode},
		UKI: &policy.StarterUKI{
			Name: "sworn simulated node", Cmdline: ref.Cmdline,
			Digest: hex.EncodeToString(ref.UKIDigest[tpm.SHA384]), PCR11: hex.EncodeToString(ref.PCR11[tpm.SHA384]),
			NodeSoftware: hex.EncodeToString(ref.NodeSoftware),
		},
	}, nil
}

// TDXStarterOptions returns the options of the simulated TDX starter
// policy (sworn policy init --simulated --tee tdx): simulated roots, the
// simulated TD's MRTD and RTMR2 (its UKI boot), and gpus GPUs.
func TDXStarterOptions(gpus int) (policy.StarterOptions, error) {
	_, rtmr, err := tdx.SimCCEL()
	if err != nil {
		return policy.StarterOptions{}, err
	}
	return policy.StarterOptions{
		Simulated: true, GPUs: gpus,
		TDX: &policy.StarterTDX{MRTD: []string{hex.EncodeToString(tdx.SimMRTD[:])}, RTMR2: []string{hex.EncodeToString(rtmr[2][:])}},
	}, nil
}

// StarterPolicy parses the simulated starter policy for gpus GPUs.
func StarterPolicy(gpus int) (*policy.Policy, error) {
	o, err := StarterOptions(gpus)
	if err != nil {
		return nil, err
	}
	return policy.Parse("simulated starter", policy.Starter(o))
}
