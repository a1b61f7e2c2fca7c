package tlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/sworn-dev/sworn/attest"
)

// BundleVerifier appraises the release proof stapled to an evidence bundle:
// it implements attest.ReleaseVerifier. It compares the release with the
// claims of the devices appraised before it, under the policy's log section.
type BundleVerifier struct {
	// Revocations are proofs of revocation records from the log (sworn
	// release revoke, or the log's entries that sworn monitor saw); one that
	// revokes the bundle's release makes it contraindicated.
	Revocations [][]byte
}

// VerifyRelease returns the release section of a bundle's appraisal.
func (bv BundleVerifier) VerifyRelease(_ context.Context, proof []byte, env *attest.Env) *attest.Section {
	if proof == nil {
		s := &attest.Section{Kind: "release"}
		s.Add(StepInclusion, attest.Fail, "the bundle staples no release proof, but the policy pins a release log: the node's software cannot be shown to be a published release")
		return s
	}
	s := AppraiseRelease(proof, env.Policy.Log, env.At, ClaimsFromDevices(env.Devices), env.Ledger, &AppraiseOptions{Revocations: bv.Revocations})
	checkEpoch(s, proof, env)
	s.Finish()
	return s
}

// StepEpoch checks that a passport-mode bundle's epoch names the checkpoint
// of its stapled release proof, so the node bound its keys to that log state.
const StepEpoch = "release.epoch"

// checkEpoch adds release.epoch when the bundle's epoch names a checkpoint.
func checkEpoch(s *attest.Section, proof []byte, env *attest.Env) {
	e := env.Freshness.Epoch
	if e == nil || bytes.Equal(e.Checkpoint, make([]byte, len(e.Checkpoint))) {
		return
	}
	p, err := ParseProof(proof)
	if err != nil {
		s.Add(StepEpoch, attest.Fail, "the release proof does not parse, so the epoch's checkpoint cannot be matched: %v", err)
		return
	}
	h := CheckpointHash(p.Checkpoint)
	if !bytes.Equal(h[:], e.Checkpoint) {
		s.Add(StepEpoch, attest.Fail, "the bundle's epoch names checkpoint %x, but the stapled proof is for checkpoint %x: the proof was swapped", e.Checkpoint, h)
		return
	}
	s.Add(StepEpoch, attest.Pass, "the bundle's epoch names the stapled proof's checkpoint %x", h[:8])
	env.Ledger.Verify("release.epoch", "The node bound its keys to the log state of the stapled release proof.")
}

// CheckpointHash is the hash that names a checkpoint in a bundle's epoch:
// SHA-256 of the checkpoint's signed body (the note text before its
// signatures), so cosignatures added later do not change it.
func CheckpointHash(checkpoint []byte) [32]byte {
	body := checkpoint
	if i := bytes.Index(checkpoint, []byte("\n\n")); i >= 0 {
		body = checkpoint[:i+1]
	}
	return sha256.Sum256(body)
}

// tpmClaims adds the claims of an appraised TPM section that release
// records speak of: every quoted PCR; the node software ("node",
// sha256:<hex>); and the booted UKI ("uki", <bank>:<hex> of its
// Authenticode digest in the bank the event log was replayed in) when the
// log records exactly one EFI application.
func tpmClaims(c *Claims, dev string, s *attest.Section) {
	if c.PCRs == nil {
		c.PCRs = []PCR{}
	}
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
	set := func(name, v string) {
		if old, ok := c.Components[name]; ok && old != v {
			c.conflicts = append(c.conflicts, fmt.Sprintf("%s's %s %s differs from another TPM's %s", dev, name, v, old))
		}
		c.Components[name] = v
	}
	if nodes := stringList(s.Claims["node_software"]); len(nodes) == 1 {
		set("node", "sha256:"+nodes[0])
	}
	bank, _ := s.Claims["eventlog_bank"].(string)
	if apps := stringList(s.Claims["efi_apps"]); len(apps) == 1 && bank != "" {
		set("uki", bank+":"+apps[0])
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
