//go:build linux && cgo

// Package nvml is the NVML backend of the GPU collector: it implements
// nvgpu.NVML with NVIDIA's go-nvml (≥ v0.13.0-1, the first that passes the
// caller's nonce). It needs cgo and loads libnvidia-ml.so.1 at Open.
package nvml

import (
	"fmt"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/sworn-dev/sworn/attest/nvgpu"
)

type lib struct{}

// Open initializes NVML. Close it when done.
func Open() (nvgpu.NVML, error) {
	if ret := gonvml.Init(); ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("NVML init: %v (is the NVIDIA driver installed and a GPU present?)", gonvml.ErrorString(ret))
	}
	return lib{}, nil
}

func errOf(what string, ret gonvml.Return) error {
	if ret == gonvml.SUCCESS {
		return nil
	}
	return fmt.Errorf("NVML %s: %v", what, gonvml.ErrorString(ret))
}

func (lib) CCState() (nvgpu.CCState, error) {
	s, ret := gonvml.SystemGetConfComputeSettings()
	if ret == gonvml.SUCCESS {
		st := nvgpu.CCState{CCEnabled: s.CcFeature != 0, DevTools: s.DevToolsMode != 0, Environment: s.Environment}
		switch s.MultiGpuMode {
		case 1:
			st.MultiGPU = "ppcie"
		case 2:
			st.MultiGPU = "nvle"
		}
		return st, nil
	}
	c, ret := gonvml.SystemGetConfComputeState()
	if err := errOf("get CC state", ret); err != nil {
		return nvgpu.CCState{}, err
	}
	return nvgpu.CCState{CCEnabled: c.CcFeature != 0, DevTools: c.DevToolsMode != 0, Environment: c.Environment}, nil
}

func (lib) DeviceCount() (int, error) {
	n, ret := gonvml.DeviceGetCount()
	return n, errOf("device count", ret)
}

func device(i int) (gonvml.Device, error) {
	d, ret := gonvml.DeviceGetHandleByIndex(i)
	return d, errOf(fmt.Sprintf("device %d", i), ret)
}

func (lib) DeviceInfo(i int) (nvgpu.DeviceInfo, error) {
	d, err := device(i)
	if err != nil {
		return nvgpu.DeviceInfo{}, err
	}
	info := nvgpu.DeviceInfo{Index: i}
	info.UUID, _ = d.GetUUID()
	info.Name, _ = d.GetName()
	info.VBIOS, _ = d.GetVbiosVersion()
	info.Driver, _ = gonvml.SystemGetDriverVersion()
	if a, ret := d.GetArchitecture(); ret == gonvml.SUCCESS {
		switch a {
		case 9:
			info.Arch = "HOPPER"
		case 10:
			info.Arch = "BLACKWELL"
		default:
			info.Arch = fmt.Sprintf("arch-%d", a)
		}
	}
	return info, nil
}

func (lib) Certificate(i int) ([]byte, error) {
	d, err := device(i)
	if err != nil {
		return nil, err
	}
	c, ret := d.GetConfComputeGpuCertificate()
	if err := errOf("get GPU certificate", ret); err != nil {
		return nil, err
	}
	n := int(c.AttestationCertChainSize)
	if n <= 0 || n > len(c.AttestationCertChain) {
		return nil, fmt.Errorf("NVML returned a %d-byte attestation chain", n)
	}
	return append([]byte(nil), c.AttestationCertChain[:n]...), nil
}

func (lib) Report(i int, nonce [nvgpu.NonceSize]byte) ([]byte, error) {
	d, err := device(i)
	if err != nil {
		return nil, err
	}
	r := &gonvml.ConfComputeGpuAttestationReport{}
	copy(r.Nonce[:], nonce[:])
	if err := errOf("get attestation report", d.GetConfComputeGpuAttestationReport(r)); err != nil {
		return nil, err
	}
	n := int(r.AttestationReportSize)
	if n <= 0 || n > len(r.AttestationReport) {
		return nil, fmt.Errorf("NVML returned a %d-byte report", n)
	}
	return append([]byte(nil), r.AttestationReport[:n]...), nil
}

func (lib) SetReady(ready bool) error {
	v := uint32(0)
	if ready {
		v = 1 // NVML_CC_ACCEPTING_CLIENT_REQUESTS_TRUE
	}
	return errOf("set GPUs ready state", gonvml.SystemSetConfComputeGpusReadyState(v))
}

func (lib) Close() error { return errOf("shutdown", gonvml.Shutdown()) }
