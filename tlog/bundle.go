package tlog

import (
	"context"
	"encoding/hex"
	"strconv"

	"github.com/sworn-dev/sworn/attest"
)

// BundleVerifier appraises the release proof stapled to an evidence bundle:
// it implements attest.ReleaseVerifier. It compares the release with the
// claims of the devices appraised before it, under the policy's log section.
type BundleVerifier struct{}

// VerifyRelease returns the release section of a bundle's appraisal.
func (BundleVerifier) VerifyRelease(_ context.Context, proof []byte, env *attest.Env) *attest.Section {
	if proof == nil {
		s := &attest.Section{Kind: "release"}
		s.Add(StepInclusion, attest.Fail, "the bundle staples no release proof, but the policy pins a release log: the node's software cannot be shown to be a published release")
		return s
	}
	return AppraiseRelease(proof, env.Policy.Log, env.At, ClaimsFromDevices(env.Devices), env.Ledger, nil)
}

// tpmClaims adds the claims of an appraised TPM section that release
// records speak of: every quoted PCR; the node software ("node",
// sha256:<hex>); and the booted UKI ("uki", <bank>:<hex> of its
// Authenticode digest in the bank the event log was replayed in) when the
// log records exactly one EFI application.
func tpmClaims(c *Claims, s *attest.Section) {
	c.PCRs = []PCR{}
	pcrs, _ := s.Claims["pcrs"].(map[string]any)
	for bank, m := range pcrs {
		values, _ := m.(map[string]any)
		for idx, v := range values {
			i, err := strconv.Atoi(idx)
			hv, _ := v.(string)
			d, herr := hex.DecodeString(hv)
			if err == nil && herr == nil {
				c.PCRs = append(c.PCRs, PCR{Bank: bank, Index: i, Digest: d})
			}
		}
	}
	if c.Components == nil {
		c.Components = map[string]string{}
	}
	if nodes := stringList(s.Claims["node_software"]); len(nodes) == 1 {
		c.Components["node"] = "sha256:" + nodes[0]
	}
	bank, _ := s.Claims["eventlog_bank"].(string)
	if apps := stringList(s.Claims["efi_apps"]); len(apps) == 1 && bank != "" {
		c.Components["uki"] = bank + ":" + apps[0]
	}
}

// stringList returns a claim that is a list of strings.
func stringList(v any) []string {
	var out []string
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
