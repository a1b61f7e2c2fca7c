package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestMultiCandidates(t *testing.T) {
	var cfgs []KeyConfig
	for i := range MaxCandidates {
		kem := KEMXWing
		if i%2 == 1 {
			kem = KEMX25519
		}
		cfgs = append(cfgs, mustKey(t, 1, kem).Config())
	}
	s := Suite{KDFHKDFSHA256, AEADChaCha20Poly1305}
	msg, _, err := EncapsulateMulti(cfgs, s, []byte("prompt"))
	if err != nil {
		t.Fatal(err)
	}
	// The largest header fits MaxMultiHeader, and a prefix that holds the
	// header is enough.
	hashes, err := MultiCandidates(msg[:min(len(msg), MaxMultiHeader)])
	if err != nil || len(hashes) != len(cfgs) {
		t.Fatalf("%d hashes, %v", len(hashes), err)
	}
	for i, c := range cfgs {
		if hashes[i] != c.KeyHash() {
			t.Fatalf("candidate %d: %x, want %x", i, hashes[i], c.KeyHash())
		}
	}
	if hdr := len(msg) - len("prompt") - tagSize; hdr > MaxMultiHeader {
		t.Fatalf("header of %d bytes exceeds MaxMultiHeader %d", hdr, MaxMultiHeader)
	}
	for _, bad := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version 2", append([]byte{2}, msg[1:]...), ErrMalformed},
		{"unknown suite", append([]byte{1, 0, 9, 0, 9}, msg[5:]...), ErrSuite},
		{"no candidates", append([]byte{1, 0, 1, 0, 3, 0}, msg[6:]...), ErrMalformed},
		{"9 candidates", append([]byte{1, 0, 1, 0, 3, 9}, msg[6:]...), ErrMalformed},
		{"truncated in an id", msg[:6+5], ErrMalformed},
		{"truncated in an entry", msg[:6+11+100], ErrMalformed},
		{"unknown KEM", append(append([]byte{}, msg[:6+9]...), append([]byte{0x99, 0x99}, msg[6+11:]...)...), ErrMalformed},
	} {
		if _, err := MultiCandidates(bad.b); !errors.Is(err, bad.want) {
			t.Errorf("%s: %v, want %v", bad.name, err, bad.want)
		}
	}
}

// FuzzMultiCandidates: no input panics, and every hash returned comes from
// the input.
func FuzzMultiCandidates(f *testing.F) {
	c := mustKey(f, 1, KEMX25519).Config()
	msg, _, _ := EncapsulateMulti([]KeyConfig{c}, Suite{KDFHKDFSHA256, AEADAES256GCM}, []byte("p"))
	f.Add(msg)
	f.Add([]byte{1, 0, 1, 0, 2, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := MultiCandidates(b)
		if err == nil && (len(hs) == 0 || len(hs) > MaxCandidates || !bytes.Equal(hs[0][:], b[6:14])) {
			t.Fatalf("%d hashes from %x", len(hs), b)
		}
	})
}
