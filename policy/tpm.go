package policy

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
)

// AK trust modes: how the TPM attestation key may be trusted.
const (
	// AKTrustTEE: the AK is bound to the CPU TEE's report (Azure CVM HCL
	// runtime data, or an SVSM vTPM's EK in a VMPL0 report plus credential
	// activation).
	AKTrustTEE = "tee"
	// AKTrustCloudCA: an AK certificate chains to a cloud vTPM CA root named
	// in the policy (GCE's, for example). The hypervisor is trusted.
	AKTrustCloudCA = "cloud_ca"
	// AKTrustPinned: the AK is pinned in the policy. The hypervisor (or
	// whoever pinned it) is trusted.
	AKTrustPinned = "pinned"
	// AKTrustUnbound: nothing vouches for the AK. Only with allow_unbound_ak.
	AKTrustUnbound = "unbound"
)

var akTrustModes = []string{AKTrustTEE, AKTrustCloudCA, AKTrustPinned, AKTrustUnbound}

// TPM is the TPM / vTPM section of a policy.
type TPM struct {
	// Optional accepts a bundle without TPM evidence although this section
	// configures TPM checks; the trust ledger then says that the guest's
	// measured boot was not verified.
	Optional bool `yaml:"optional"`
	// AllowSHA1 accepts quotes that are signed with SHA-1 or cover only
	// SHA-1 PCRs. Default: refused.
	AllowSHA1 bool `yaml:"allow_sha1"`
	// AKTrust lists the AK trust modes accepted (tee, cloud_ca, pinned).
	// Empty means tee, cloud_ca and pinned. "unbound" is accepted only
	// together with AllowUnboundAK.
	AKTrust []string `yaml:"ak_trust"`
	// AllowUnboundAK accepts an AK that nothing vouches for; the ledger then
	// says that the hypervisor is trusted.
	AllowUnboundAK bool `yaml:"allow_unbound_ak"`
	// PinnedAKs are SHA-256 fingerprints (hex) of the DER
	// SubjectPublicKeyInfo of accepted AKs (sworn verify tpm prints it).
	PinnedAKs []HexBytes `yaml:"pinned_aks"`
	// CARoots are PEM certificates of cloud vTPM CAs whose AK certificates
	// are accepted (for example Google's GCE EK/AK CA root).
	CARoots []string `yaml:"ca_roots"`
	// PCRs are expected PCR values: bank ("sha256", "sha384", …) → index →
	// hex value. Every listed PCR must be quoted and equal.
	PCRs map[string]map[int]HexBytes `yaml:"pcrs"`
	// Components are expected boot components in the style of
	// systemd-pcrlock: each must match one of its alternatives.
	Components []Component `yaml:"components"`
	// AllowNoEventLog accepts evidence without an event log (the replay
	// step is then skipped and not counted against the verdict).
	AllowNoEventLog bool `yaml:"allow_no_event_log"`

	roots *x509.CertPool
}

// Component is one expected part of the boot, with alternatives (for
// example two kernel versions during an update).
type Component struct {
	Name         string        `yaml:"name"`
	Alternatives []Alternative `yaml:"alternatives"`
}

// Alternative is one accepted variant of a component: every field that is
// set must match what the replayed event log says.
type Alternative struct {
	// Name labels the variant in results (e.g. "6.12.1").
	Name string `yaml:"name"`
	// UKIDigest is the PE Authenticode digest (hex) of the UKI or another
	// EFI application measured into PCR 4, in the replayed bank's hash.
	UKIDigest HexBytes `yaml:"uki_digest"`
	// PCR11 is the PCR 11 value systemd-stub produces for the UKI (hex, in
	// the replayed bank), as `sworn measure uki` prints it.
	PCR11 HexBytes `yaml:"pcr11"`
	// Cmdline is the kernel command line.
	Cmdline string `yaml:"cmdline"`
	// SecureBoot, when set, is the required Secure Boot state.
	SecureBoot *bool `yaml:"secure_boot"`
	// DB lists certificates that must be in the Secure Boot db, each by
	// its exact subject (as `sworn measure eventlog` prints it), its exact
	// well-known name, or "sha256:<hex>" of its DER.
	DB []string `yaml:"db"`
	// NodeSoftware is the SHA-256 (hex) of the node binary measured into
	// PCR 15.
	NodeSoftware HexBytes `yaml:"node_software"`
}

// AKTrustAllowed reports whether the policy accepts an AK trusted in the
// given mode.
func (t *TPM) AKTrustAllowed(mode string) bool {
	if mode == AKTrustUnbound {
		return t.AllowUnboundAK
	}
	if len(t.AKTrust) == 0 {
		return true
	}
	return slices.Contains(t.AKTrust, mode)
}

// Roots returns the cloud vTPM CA roots as a pool (nil when none).
func (t *TPM) Roots() *x509.CertPool { return t.roots }

// Empty reports whether the section sets nothing.
func (t *TPM) Empty() bool {
	return !t.AllowSHA1 && len(t.AKTrust) == 0 && !t.AllowUnboundAK && len(t.PinnedAKs) == 0 &&
		len(t.CARoots) == 0 && len(t.PCRs) == 0 && len(t.Components) == 0 && !t.AllowNoEventLog
}

var pcrBankSizes = map[string]int{"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}

func (t *TPM) check() error {
	for _, m := range t.AKTrust {
		if !slices.Contains(akTrustModes, m) {
			return fmt.Errorf("tpm.ak_trust lists unknown mode %q (known: %s)", m, strings.Join(akTrustModes, ", "))
		}
		if m == AKTrustUnbound && !t.AllowUnboundAK {
			return fmt.Errorf("tpm.ak_trust lists %q; set tpm.allow_unbound_ak: true to accept an AK that nothing vouches for", m)
		}
	}
	for i, k := range t.PinnedAKs {
		if len(k) != 32 {
			return fmt.Errorf("tpm.pinned_aks[%d] is %d bytes; it is the SHA-256 (64 hex digits) of the AK's SubjectPublicKeyInfo", i, len(k))
		}
	}
	if len(t.CARoots) > 0 {
		t.roots = x509.NewCertPool()
	}
	for i, p := range t.CARoots {
		rest := []byte(p)
		n := 0
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return fmt.Errorf("tpm.ca_roots[%d]: certificate %d: %v", i, n, err)
			}
			t.roots.AddCert(c)
			n++
		}
		if n == 0 {
			return fmt.Errorf("tpm.ca_roots[%d] holds no PEM certificate", i)
		}
	}
	for bank, m := range t.PCRs {
		size, ok := pcrBankSizes[bank]
		if !ok {
			return fmt.Errorf("tpm.pcrs has unknown bank %q (use sha1, sha256, sha384 or sha512)", bank)
		}
		if bank == "sha1" && !t.AllowSHA1 {
			return fmt.Errorf("tpm.pcrs lists sha1 values; set tpm.allow_sha1: true to rely on SHA-1")
		}
		for i, v := range m {
			if i < 0 || i > 23 {
				return fmt.Errorf("tpm.pcrs.%s: PCR index %d is out of range (0 to 23)", bank, i)
			}
			if len(v) != size {
				return fmt.Errorf("tpm.pcrs.%s.%d is %d bytes; a %s PCR is %d bytes", bank, i, len(v), bank, size)
			}
		}
	}
	for i, c := range t.Components {
		if c.Name == "" {
			return fmt.Errorf("tpm.components[%d] has no name", i)
		}
		if len(c.Alternatives) == 0 {
			return fmt.Errorf("tpm.components[%d] (%s) has no alternatives", i, c.Name)
		}
		for j, a := range c.Alternatives {
			if len(a.UKIDigest) == 0 && len(a.PCR11) == 0 && a.Cmdline == "" && a.SecureBoot == nil && len(a.DB) == 0 && len(a.NodeSoftware) == 0 {
				return fmt.Errorf("tpm.components[%d] (%s) alternative %d sets nothing to check", i, c.Name, j)
			}
			if n := len(a.NodeSoftware); n != 0 && n != 32 {
				return fmt.Errorf("tpm.components[%d] (%s) alternative %d: node_software is %d bytes, want a SHA-256 (32)", i, c.Name, j, n)
			}
		}
	}
	return nil
}
