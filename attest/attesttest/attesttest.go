// Package attesttest edits evidence bundles the way a hostile node or host
// would — dropping an entry, splicing one in from another node, rewriting
// a body — so that tests of each attack stay short. Every function returns
// a new bundle and leaves its inputs unchanged.
package attesttest

import (
	"bytes"
	"slices"
	"testing"

	"github.com/sworn-dev/sworn/attest"
)

// Clone returns a deep copy of b.
func Clone(b *attest.Bundle) *attest.Bundle {
	c := *b
	c.Keys.RequestKeys = bytes.Clone(b.Keys.RequestKeys)
	c.Keys.ReceiptKey = bytes.Clone(b.Keys.ReceiptKey)
	c.Freshness.Nonce = bytes.Clone(b.Freshness.Nonce)
	if b.Freshness.Epoch != nil {
		e := *b.Freshness.Epoch
		e.Checkpoint = bytes.Clone(e.Checkpoint)
		c.Freshness.Epoch = &e
	}
	c.Evidence = make([]attest.Entry, len(b.Evidence))
	for i, e := range b.Evidence {
		e.Body = bytes.Clone(e.Body)
		c.Evidence[i] = e
	}
	c.Release = bytes.Clone(b.Release)
	return &c
}

// Drop returns b without the entries of the named devices.
func Drop(b *attest.Bundle, devices ...string) *attest.Bundle {
	c := Clone(b)
	c.Evidence = slices.DeleteFunc(c.Evidence, func(e attest.Entry) bool { return slices.Contains(devices, e.Device) })
	return c
}

// Splice returns dst with src's entry for device in place of its own, or
// added when dst has none. It fails the test when src has no such entry.
func Splice(t testing.TB, dst, src *attest.Bundle, device string) *attest.Bundle {
	t.Helper()
	i := slices.IndexFunc(src.Evidence, func(e attest.Entry) bool { return e.Device == device })
	if i < 0 {
		t.Fatalf("attesttest: the source bundle has no %s entry", device)
	}
	return SetEntry(dst, Clone(src).Evidence[i])
}

// SetEntry returns b with e in place of the entry for the same device, or
// added at the end when b has none.
func SetEntry(b *attest.Bundle, e attest.Entry) *attest.Bundle {
	c := Clone(b)
	if j := slices.IndexFunc(c.Evidence, func(x attest.Entry) bool { return x.Device == e.Device }); j >= 0 {
		c.Evidence[j] = e
	} else {
		c.Evidence = append(c.Evidence, e)
	}
	return c
}

// EditBody returns b with the body of device's entry replaced by
// f(a copy of the body). It fails the test when b has no such entry.
func EditBody(t testing.TB, b *attest.Bundle, device string, f func([]byte) []byte) *attest.Bundle {
	t.Helper()
	c := Clone(b)
	i := slices.IndexFunc(c.Evidence, func(e attest.Entry) bool { return e.Device == device })
	if i < 0 {
		t.Fatalf("attesttest: the bundle has no %s entry", device)
	}
	c.Evidence[i].Body = f(c.Evidence[i].Body)
	return c
}

// Edit parses an encoded bundle, applies f, and returns the re-encoded
// bundle (deterministic CBOR, as a node would write it).
func Edit(t testing.TB, data []byte, f func(*attest.Bundle) *attest.Bundle) []byte {
	t.Helper()
	b, err := attest.ParseBundle(data)
	if err != nil {
		t.Fatalf("attesttest: %v", err)
	}
	out, err := f(b).Marshal()
	if err != nil {
		t.Fatalf("attesttest: re-encoding the edited bundle: %v", err)
	}
	return out
}
