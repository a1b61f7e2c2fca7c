package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The OCSP states a policy may allow for NVIDIA certificates.
const (
	OCSPGood    = "good"
	OCSPRevoked = "revoked"
	OCSPHold    = "hold" // revoked with reason certificateHold
	OCSPUnknown = "unknown"
)

// The treatments of bytes after a GPU report's signature.
const (
	TrailingWarn  = "warn"
	TrailingFatal = "fatal"
)

// NVGPU is the NVIDIA confidential GPU section of a policy.
type NVGPU struct {
	// Optional accepts a bundle without GPU evidence although this section
	// configures GPU checks.
	Optional bool `yaml:"optional"`
	// Count is the exact number of GPUs a bundle must carry (the machine
	// shape's). Zero means no GPUs. Nil: see MinCount.
	Count *int `yaml:"count"`
	// MinCount is the least number of GPUs a bundle must carry, when Count
	// is not set. Without either, the trust ledger says that the number of
	// GPUs is not attested.
	MinCount *int `yaml:"min_count"`
	// MinDriver is the lowest driver version accepted ("550.90.07").
	// Empty: no floor.
	MinDriver string `yaml:"min_driver"`
	// MinVBIOS is the lowest VBIOS version accepted ("96.00.9F.00.01",
	// compared field by field in hex). Empty: no floor.
	MinVBIOS string `yaml:"min_vbios"`
	// RIMsOptional accepts a GPU whose driver and VBIOS RIMs are missing
	// (its measurements are then unchecked). Default: RIMs are required.
	RIMsOptional bool `yaml:"rims_optional"`
	// OCSPAllow lists the OCSP states accepted for the device and RIM
	// chains: good, hold, revoked, unknown. Default: good only. A revoked
	// or held certificate is never silent: when allowed it is a warning.
	OCSPAllow []string `yaml:"ocsp_allow"`
	// SkipRevocation accepts evidence with no stapled OCSP responses; the
	// trust ledger then says that revocation was not checked.
	SkipRevocation bool `yaml:"skip_revocation"`
	// TrailingBytes is what bytes after a report's signature (which are not
	// authenticated) make of it: warn (default) or fatal.
	TrailingBytes string `yaml:"trailing_bytes"`
	// AllowCCOff lets the node collector hand work to a GPU whose
	// confidential-computing mode is off. Default: refused.
	AllowCCOff bool `yaml:"allow_cc_off"`
	// AllowDevMode lets the node collector accept CC dev-tools mode (the
	// GPU can then be debugged). Default: refused.
	AllowDevMode bool `yaml:"allow_dev_mode"`
}

// MaxGPUs bounds count and min_count: more GPUs than a bundle can carry
// entries is a typo.
const MaxGPUs = 64

func (n *NVGPU) check() error {
	if n.Count != nil && n.MinCount != nil {
		return fmt.Errorf("count and min_count are both set; set count for an exact number of GPUs, or min_count for a floor")
	}
	for name, v := range map[string]*int{"count": n.Count, "min_count": n.MinCount} {
		if v != nil && (*v < 0 || *v > MaxGPUs) {
			return fmt.Errorf("%s is %d; it must be 0 to %d", name, *v, MaxGPUs)
		}
	}
	if n.Count != nil && *n.Count == 0 && n.Optional {
		return fmt.Errorf("count is 0 (no GPUs) and optional is true; count: 0 already means that no GPU may be present")
	}
	if n.MinDriver != "" {
		if _, err := CompareVersions(n.MinDriver, n.MinDriver, 10); err != nil {
			return fmt.Errorf("min_driver: %v", err)
		}
	}
	if n.MinVBIOS != "" {
		if _, err := CompareVersions(n.MinVBIOS, n.MinVBIOS, 16); err != nil {
			return fmt.Errorf("min_vbios: %v", err)
		}
	}
	for _, s := range n.OCSPAllow {
		if !slices.Contains([]string{OCSPGood, OCSPRevoked, OCSPHold, OCSPUnknown}, s) {
			return fmt.Errorf("ocsp_allow lists %q; use good, hold, revoked or unknown", s)
		}
	}
	switch n.TrailingBytes {
	case "":
		n.TrailingBytes = TrailingWarn
	case TrailingWarn, TrailingFatal:
	default:
		return fmt.Errorf("trailing_bytes is %q; use %q or %q", n.TrailingBytes, TrailingWarn, TrailingFatal)
	}
	return nil
}

// CheckCount reports whether n GPUs satisfy count or min_count, and a
// sentence saying why. ok is false with an empty sentence when neither is set.
func (n NVGPU) CheckCount(got int) (set, ok bool, why string) {
	switch {
	case n.Count != nil:
		return true, got == *n.Count, fmt.Sprintf("the policy requires exactly %d GPU(s); the bundle carries %d", *n.Count, got)
	case n.MinCount != nil:
		return true, got >= *n.MinCount, fmt.Sprintf("the policy requires at least %d GPU(s); the bundle carries %d", *n.MinCount, got)
	}
	return false, false, ""
}

// OCSPAllowed reports whether the policy accepts an OCSP state.
func (n NVGPU) OCSPAllowed(state string) bool {
	if len(n.OCSPAllow) == 0 {
		return state == OCSPGood
	}
	return slices.Contains(n.OCSPAllow, state)
}

// TrailingIsFatal reports whether bytes after a report's signature fail it.
func (n NVGPU) TrailingIsFatal() bool { return n.TrailingBytes == TrailingFatal }

// CompareVersions compares dotted versions field by field, each field a
// number in the given base (10 for drivers, 16 for VBIOS): -1, 0 or 1.
// A missing field counts as 0.
func CompareVersions(a, b string, base int) (int, error) {
	pa, err := splitVersion(a, base)
	if err != nil {
		return 0, err
	}
	pb, err := splitVersion(b, base)
	if err != nil {
		return 0, err
	}
	for i := range max(len(pa), len(pb)) {
		var x, y uint64
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			if x < y {
				return -1, nil
			}
			return 1, nil
		}
	}
	return 0, nil
}

func splitVersion(v string, base int) ([]uint64, error) {
	if v == "" || len(v) > 64 {
		return nil, fmt.Errorf("version %q is empty or too long", v)
	}
	var out []uint64
	for _, f := range strings.Split(v, ".") {
		n, err := strconv.ParseUint(f, base, 32)
		if err != nil {
			return nil, fmt.Errorf("version %q: field %q is not a base-%d number", v, f, base)
		}
		out = append(out, n)
	}
	return out, nil
}
