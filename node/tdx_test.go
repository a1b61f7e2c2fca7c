package node

import (
	"encoding/hex"
	"testing"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tdx"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/policy"
)

// TestSimulatedTDXNode: a node on a simulated TDX CPU passes its own
// appraisal and serves a bundle that a client affirms under a TDX policy.
func TestSimulatedTDXNode(t *testing.T) {
	p, err := policy.Parse("tdx", []byte("version: 1\nroots: {intel: simulated}\ntdx:\n  mrtd: ["+hex.EncodeToString(tdx.SimMRTD[:])+"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	tn := startNode(t, 0, echo.Options{}, func(c *Config) {
		c.Platform = &SimPlatform{Seed: 1, TEE: attest.KindTDX}
		c.Policy = p
	})
	b := tn.fetchBundle(t)
	if b.Evidence[0].Kind != attest.KindTDX {
		t.Fatalf("cpu0 is %s evidence", b.Evidence[0].Kind)
	}
}
