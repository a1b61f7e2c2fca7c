package nvgpu

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TestRawToDER: the signature encoding equals the general ASN.1 one for
// leading zeros, top bits set and random values.
func TestRawToDER(t *testing.T) {
	vals := [][]byte{make([]byte, 48), bytes.Repeat([]byte{0xff}, 48), append(make([]byte, 47), 1), append(make([]byte, 10), bytes.Repeat([]byte{0x80}, 38)...)}
	for range 64 {
		v := make([]byte, 48)
		rand.Read(v)
		vals = append(vals, v)
	}
	for _, r := range vals {
		for _, s := range vals {
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1BigInt(new(big.Int).SetBytes(r))
				b.AddASN1BigInt(new(big.Int).SetBytes(s))
			})
			want := b.BytesOrPanic()
			if got := rawToDER([]byte{9}, r, s); !bytes.Equal(got[1:], want) || got[0] != 9 {
				t.Fatalf("r %x s %x: %x, want %x", r, s, got, want)
			}
		}
	}
}
