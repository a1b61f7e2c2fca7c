package nvgpu

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

// CCState is the confidential-computing state NVML reports for the system.
type CCState struct {
	// CCEnabled is set when the CC feature is on (ccFeature != 0).
	CCEnabled bool
	// DevTools is set in CC dev-tools mode: the GPU can be debugged.
	DevTools bool
	// MultiGPU is "", "ppcie" or "nvle" (NVML multiGpuMode).
	MultiGPU string
	// Environment is NVML's environment value (2: production).
	Environment uint32
}

// DeviceInfo is what NVML says about one GPU (unauthenticated).
type DeviceInfo struct {
	Index  int
	UUID   string
	Name   string
	Arch   string
	VBIOS  string
	Driver string
}

// NVML is the part of NVIDIA's management library the collector uses. The
// real implementation (OpenNVML) needs cgo and libnvidia-ml; tests use a fake.
type NVML interface {
	CCState() (CCState, error)
	DeviceCount() (int, error)
	DeviceInfo(i int) (DeviceInfo, error)
	// Certificate returns the attestation chain of GPU i, PEM, leaf first.
	Certificate(i int) ([]byte, error)
	// Report returns GPU i's attestation report for the requester nonce.
	Report(i int, nonce [NonceSize]byte) ([]byte, error)
	// SetReady sets (or clears) the system's GPUs-ready state.
	SetReady(ready bool) error
	Close() error
}

// ErrCCOff is returned (wrapped) when the GPUs are not in CC mode and the
// policy does not allow it.
var ErrCCOff = errors.New("GPU confidential computing is off")

// ErrDevMode is returned (wrapped) in CC dev-tools mode unless the policy
// allows it.
var ErrDevMode = errors.New("GPU confidential computing is in dev-tools mode")

// CheckCCState refuses CC off unless the policy allows it, and dev-tools
// mode unless the policy allows a development mode.
func CheckCCState(st CCState, pol *policy.Policy) error {
	var n policy.NVGPU
	if pol != nil {
		n = pol.NVGPU
	}
	if !st.CCEnabled && !n.AllowCCOff {
		return fmt.Errorf("%w: turn CC on (nvidia-smi conf-compute / nvtrust's gpu-admin-tools), or set nvgpu.allow_cc_off for development", ErrCCOff)
	}
	if st.DevTools && !n.AllowDevMode {
		return fmt.Errorf("%w: the GPU can be debugged; set nvgpu.allow_dev_mode only for development", ErrDevMode)
	}
	return nil
}

// Collect reads the evidence of every GPU through NVML, each report
// answering Nonce(binding, index). It refuses to collect when the CC state
// is not acceptable to the policy. NVSwitch evidence is not collected.
func Collect(n NVML, binding attest.Binding, pol *policy.Policy) ([]attest.Entry, error) {
	st, err := n.CCState()
	if err != nil {
		return nil, fmt.Errorf("reading the CC state: %v", err)
	}
	if err := CheckCCState(st, pol); err != nil {
		return nil, err
	}
	count, err := n.DeviceCount()
	if err != nil {
		return nil, fmt.Errorf("counting GPUs: %v", err)
	}
	if count <= 0 || count > 64 {
		return nil, fmt.Errorf("NVML reports %d GPUs; expected 1 to 64", count)
	}
	var out []attest.Entry
	for i := range count {
		pem, err := n.Certificate(i)
		if err != nil {
			return nil, fmt.Errorf("gpu%d certificate chain: %v", i, err)
		}
		certs, err := ParseCertChain(pem)
		if err != nil {
			return nil, fmt.Errorf("gpu%d certificate chain: %v", i, err)
		}
		rep, err := n.Report(i, Nonce(binding, uint32(i)))
		if err != nil {
			return nil, fmt.Errorf("gpu%d attestation report: %v", i, err)
		}
		ev := &Evidence{Report: rep}
		for _, c := range certs {
			ev.Certs = append(ev.Certs, c.Raw)
		}
		body, err := ev.Marshal()
		if err != nil {
			return nil, err
		}
		out = append(out, attest.Entry{Kind: attest.KindNVGPU, Device: "gpu" + strconv.Itoa(i), Body: body})
	}
	return out, nil
}

// Collateral adds RIMs and OCSP responses to collected evidence (from a
// Fetcher, or a local mirror). It may be nil.
type Collateral func(ctx context.Context, ev *Evidence) error

// Gate collects every GPU's evidence, verifies it locally, and sets the
// GPUs ready (accepting work) only if every GPU is affirming under the
// policy. On any failure it leaves them not ready and returns the
// result (when there is one) with an error.
func Gate(ctx context.Context, n NVML, v *Verifier, binding attest.Binding, at time.Time, pol *policy.Policy, add Collateral) (*attest.Result, error) {
	entries, err := Collect(n, binding, pol)
	if err != nil {
		return nil, err
	}
	res := &attest.Result{At: at.UTC(), Devices: map[string]*attest.Section{}}
	env := &attest.Env{At: at, Binding: binding, Policy: pol, Ledger: &res.Ledger, Devices: res.Devices}
	if env.Policy == nil {
		env.Policy = policy.Default()
	}
	for i, e := range entries {
		if add != nil {
			ev, err := ParseEvidence(e.Body)
			if err != nil {
				return nil, err
			}
			if err := add(ctx, ev); err != nil {
				return nil, fmt.Errorf("%s collateral: %v", e.Device, err)
			}
			if entries[i].Body, err = ev.Marshal(); err != nil {
				return nil, err
			}
		}
		res.Devices[e.Device] = v.Verify(ctx, entries[i], env)
	}
	res.Simulated = env.Simulated
	if res.Finish() != attest.Affirming {
		return res, fmt.Errorf("GPU verification is %s; the GPUs stay not ready", res.Verdict)
	}
	if err := n.SetReady(true); err != nil {
		return res, fmt.Errorf("setting the GPUs ready: %v", err)
	}
	return res, nil
}
