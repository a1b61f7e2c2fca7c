package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tdx"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/tlog"
)

// EvidenceRequest is what a Platform must bind its evidence to.
type EvidenceRequest struct {
	// Keys are the node's public keys for this epoch.
	Keys attest.NodeKeys
	// Nonce is the client's nonce (challenge mode); nil in passport mode.
	Nonce []byte
	// At is now; Epoch the passport's validity from At.
	At    time.Time
	Epoch time.Duration
	// Release is the release proof to staple (may be nil).
	Release []byte
}

// Platform collects a node's evidence, bound to its keys and freshness,
// into a bundle.
type Platform interface {
	// Name says what the platform is, for logs and /healthz.
	Name() string
	// Bundle collects evidence and returns the bundle.
	Bundle(ctx context.Context, r EvidenceRequest) (*attest.Bundle, error)
}

// SimPlatform is a simulated node (package sim): a SEV-SNP CPU, a vTPM
// and GPUs, all signed by simulated roots. Everything it produces is
// marked SIMULATED by the appraisal.
type SimPlatform struct {
	// Seed selects the simulated machine.
	Seed uint64
	// GPUs is the number of simulated GPUs.
	GPUs int
	// TEE is the simulated CPU TEE: "snp" (the default) or "tdx".
	TEE string
}

// Name implements Platform.
func (p *SimPlatform) Name() string {
	if p.TEE == attest.KindTDX {
		return fmt.Sprintf("simulated TDX (%d GPUs)", p.GPUs)
	}
	return fmt.Sprintf("simulated (%d GPUs)", p.GPUs)
}

// Bundle implements Platform.
func (p *SimPlatform) Bundle(_ context.Context, r EvidenceRequest) (*attest.Bundle, error) {
	n, err := sim.Boot(sim.Options{Seed: p.Seed, At: r.At, Nonce: r.Nonce, Epoch: r.Epoch, GPUs: p.GPUs, Release: r.Release, Keys: &r.Keys, TEE: p.TEE})
	if err != nil {
		return nil, err
	}
	return n.Bundle, nil
}

// SNPPlatform collects real evidence inside an AMD SEV-SNP guest: the
// attestation report through configfs-tsm (or /dev/sev-guest) with the
// binding as REPORT_DATA, and, with GPUs, each GPU's SPDM report through
// NVML with the nonce derived from the binding. It has never run on real
// hardware in this project's tests (see README).
type SNPPlatform struct {
	// NVML is the GPU library (nil: no GPUs).
	NVML nvgpu.NVML
	// GPU verifies each GPU locally before it may take work (the ready
	// gate), with Collateral adding RIMs and OCSP responses to each GPU's
	// evidence. Both are needed with NVML.
	GPU        *nvgpu.Verifier
	Collateral nvgpu.Collateral
	// Policy is the node's policy (GPU CC-mode checks and the gate).
	Policy *policy.Policy
	// CRLs are AMD's CRLs (DER) for the chip's product, stapled to the
	// report (snp.FetchCRL fetches one).
	CRLs [][]byte
}

// Name implements Platform.
func (p *SNPPlatform) Name() string { return "AMD SEV-SNP" }

// Bundle implements Platform.
func (p *SNPPlatform) Bundle(ctx context.Context, r EvidenceRequest) (*attest.Bundle, error) {
	b, err := newBundle(r)
	if err != nil {
		return nil, err
	}
	binding := b.Binding()
	c, err := snp.NewCollector()
	if err != nil {
		return nil, fmt.Errorf("SEV-SNP: %v", err)
	}
	ev, err := c.Collect([64]byte(binding))
	if err != nil {
		return nil, fmt.Errorf("SEV-SNP report: %v", err)
	}
	ev.CRLs = append(ev.CRLs, p.CRLs...)
	body, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	b.Evidence = append(b.Evidence, attest.Entry{Kind: attest.KindSNP, Device: "cpu0", Body: body})
	if err := addGPUs(ctx, b, binding, r.At, p.NVML, p.GPU, p.Policy, p.Collateral); err != nil {
		return nil, err
	}
	return b, b.Validate()
}

// addGPUs passes every GPU through the ready gate and adds its evidence,
// with its collateral, to b (nothing when lib is nil).
func addGPUs(ctx context.Context, b *attest.Bundle, binding attest.Binding, at time.Time, lib nvgpu.NVML, v *nvgpu.Verifier, pol *policy.Policy, collateral nvgpu.Collateral) error {
	if lib == nil {
		return nil
	}
	// The ready gate: every GPU verified here before it takes work.
	if _, err := nvgpu.Gate(ctx, lib, v, binding, at, pol, collateral); err != nil {
		return fmt.Errorf("GPU ready gate: %v", err)
	}
	gpus, err := nvgpu.Collect(lib, binding, pol)
	if err != nil {
		return fmt.Errorf("GPUs: %v", err)
	}
	for i, e := range gpus {
		ev, err := nvgpu.ParseEvidence(e.Body)
		if err == nil && collateral != nil {
			err = collateral(ctx, ev)
		}
		if err == nil {
			gpus[i].Body, err = ev.Marshal()
		}
		if err != nil {
			return fmt.Errorf("%s collateral: %v", e.Device, err)
		}
	}
	b.Evidence = append(b.Evidence, gpus...)
	return nil
}

// TDXPlatform collects real evidence inside an Intel TDX guest: the quote
// through configfs-tsm with the binding as REPORTDATA, the DCAP collateral
// it is given, the CCEL event log when the firmware publishes one, and,
// with GPUs, each GPU's report as SNPPlatform does. It has never run on
// real hardware in this project's tests (see README).
type TDXPlatform struct {
	// NVML, GPU and Collateral are as in SNPPlatform.
	NVML       nvgpu.NVML
	GPU        *nvgpu.Verifier
	Collateral nvgpu.Collateral
	// Policy is the node's policy.
	Policy *policy.Policy
	// TDXCollateral is Intel's DCAP collateral for this platform (JSON,
	// see tdx.Collateral), stapled to every quote.
	TDXCollateral []byte
	// PCS, when set, fetches the collateral from Intel PCS or a PCCS at
	// the first quote and again once it is a day old, in place of
	// TDXCollateral.
	PCS *tdx.PCS

	mu      sync.Mutex
	fetched time.Time
}

// CollateralRefresh is how long a TDX node keeps collateral it fetched
// before it fetches it again (Intel issues TCB info daily or so).
const CollateralRefresh = 24 * time.Hour

// Name implements Platform.
func (p *TDXPlatform) Name() string { return "Intel TDX" }

// Bundle implements Platform.
func (p *TDXPlatform) Bundle(ctx context.Context, r EvidenceRequest) (*attest.Bundle, error) {
	b, err := newBundle(r)
	if err != nil {
		return nil, err
	}
	binding := b.Binding()
	p.mu.Lock()
	coll := p.TDXCollateral
	if p.PCS != nil && time.Since(p.fetched) > CollateralRefresh {
		coll = nil
	}
	p.mu.Unlock()
	c, err := tdx.NewCollector(coll)
	if err != nil {
		return nil, fmt.Errorf("TDX: %v", err)
	}
	c.PCS = p.PCS
	ev, err := c.Collect([64]byte(binding))
	if err != nil {
		return nil, fmt.Errorf("TDX quote: %v", err)
	}
	if coll == nil && p.PCS != nil {
		p.mu.Lock()
		p.TDXCollateral, p.fetched = ev.Collateral, time.Now()
		p.mu.Unlock()
	}
	body, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	b.Evidence = append(b.Evidence, attest.Entry{Kind: attest.KindTDX, Device: "cpu0", Body: body})
	if err := addGPUs(ctx, b, binding, r.At, p.NVML, p.GPU, p.Policy, p.Collateral); err != nil {
		return nil, err
	}
	return b, b.Validate()
}

// newBundle makes a bundle with the keys, freshness and release of r and
// no evidence yet.
func newBundle(r EvidenceRequest) (*attest.Bundle, error) {
	b := &attest.Bundle{Version: attest.BundleVersion, Keys: r.Keys, Release: r.Release}
	if r.Nonce != nil {
		b.Freshness.Nonce = r.Nonce
	} else {
		cp := make([]byte, 32)
		if r.Release != nil {
			p, err := tlog.ParseProof(r.Release)
			if err != nil {
				return nil, fmt.Errorf("release proof: %v", err)
			}
			h := tlog.CheckpointHash(p.Checkpoint)
			cp = h[:]
		}
		b.Freshness.Epoch = &attest.Epoch{NotBefore: r.At.Unix(), NotAfter: r.At.Add(r.Epoch).Unix(), Checkpoint: cp}
	}
	if err := b.Freshness.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

var errNotReady = errors.New("the node has not passed its self-appraisal")
