//go:build !(linux && cgo)

// Package nvml is the NVML backend of the GPU collector. This build has no
// cgo (or is not Linux), so Open always fails.
package nvml

import (
	"errors"

	"github.com/sworn-dev/sworn/attest/nvgpu"
)

// Open fails: this sworn was built without cgo, so it cannot load NVML.
func Open() (nvgpu.NVML, error) {
	return nil, errors.New("this sworn was built without cgo (or not for Linux), so it cannot use NVML; rebuild with CGO_ENABLED=1")
}
