package main

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/sim"
)

// simSecrets returns the private keys of a simulated node in the encodings
// a leak would most likely use.
func simSecrets(t *testing.T, seed uint64) []string {
	n, err := sim.Boot(sim.Options{Seed: seed, At: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	req, err := n.RequestKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range [][]byte{req, n.ReceiptKey.Seed()} {
		out = append(out, hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k))
	}
	return out
}
