package attest

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"
)

type aliased struct {
	F Bytes `cbor:"1,keyasint"`
}

type copied struct {
	F []byte `cbor:"1,keyasint"`
}

// TestBytes: a Bytes field decodes to what a []byte field decodes to, for
// every length head, and aliases the input instead of copying it.
func TestBytes(t *testing.T) {
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536, 70000} {
		in := bytes.Repeat([]byte{0xa5}, n)
		enc, err := MarshalCBOR(aliased{in})
		if err != nil {
			t.Fatal(err)
		}
		if plain, _ := MarshalCBOR(copied{in}); !bytes.Equal(enc, plain) {
			t.Fatalf("%d bytes: Bytes encodes differently from []byte", n)
		}
		var a aliased
		var c copied
		if err := UnmarshalCBOR(enc, &a); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if err := UnmarshalCBOR(enc, &c); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.F, c.F) || len(a.F) != n {
			t.Fatalf("%d bytes: decoded %d bytes", n, len(a.F))
		}
		if n > 0 {
			start := uintptr(unsafe.Pointer(unsafe.SliceData(enc)))
			if p := uintptr(unsafe.Pointer(&a.F[0])); p < start || p >= start+uintptr(len(enc)) {
				t.Fatalf("%d bytes: the value was copied", n)
			}
			if cap(a.F) != len(a.F) {
				t.Fatalf("%d bytes: an append could overwrite the input", n)
			}
		}
	}
}

func TestBytesRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"text string", []byte{0x61, 'a'}, "not a CBOR byte string"},
		{"integer", []byte{0x01}, "not a CBOR byte string"},
		{"null", []byte{0xf6}, "not a CBOR byte string"},
		{"empty", nil, "not a CBOR byte string"},
		{"indefinite", []byte{0x5f, 0x41, 0x00, 0xff}, "definite-length"},
		{"tagged", []byte{0xcf, 0x41, 0x00}, "not a CBOR byte string"},
		{"truncated head", []byte{0x59, 0x01}, "truncated"},
		{"short content", []byte{0x43, 1, 2}, "announces 3 bytes, 2 there"},
		{"long content", []byte{0x41, 1, 2}, "announces 1 bytes, 2 there"},
	} {
		var b Bytes
		err := b.UnmarshalCBOR(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Through the decoder, what is not a byte string is refused too.
	for _, enc := range [][]byte{{0xa1, 0x01, 0x61, 'a'}, {0xa1, 0x01, 0xf6}, {0xa1, 0x01, 0x5f, 0x41, 0x00, 0xff}} {
		var a aliased
		if err := UnmarshalCBOR(enc, &a); err == nil {
			t.Errorf("%x decoded into a Bytes field", enc)
		}
	}
}

// FuzzBytes: whatever a Bytes field accepts, a []byte field decodes to
// the same content. (A []byte field also takes a tagged byte string, whose
// tag it drops; Bytes refuses it.)
func FuzzBytes(f *testing.F) {
	f.Add([]byte{0xa1, 0x01, 0x43, 1, 2, 3})
	f.Add([]byte{0xa1, 0x01, 0x58, 0x01, 0xff})
	f.Add([]byte{0xa1, 0x01, 0x40})
	f.Fuzz(func(t *testing.T, enc []byte) {
		var a aliased
		var c copied
		errA, errC := UnmarshalCBOR(enc, &a), UnmarshalCBOR(enc, &c)
		if errA == nil && (errC != nil || !bytes.Equal(a.F, c.F)) {
			t.Fatalf("Bytes decoded %x from %x; []byte: %x, %v", a.F, enc, c.F, errC)
		}
	})
}
