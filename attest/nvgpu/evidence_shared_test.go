package nvgpu

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"slices"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/sworn-dev/sworn/attest"
)

func sameEvidence(a, b *Evidence) bool {
	eq := func(x, y [][]byte) bool { return slices.EqualFunc(x, y, bytes.Equal) }
	return bytes.Equal(a.Report, b.Report) && eq(a.Certs, b.Certs) && eq(a.RIMs, b.RIMs) && eq(a.OCSP, b.OCSP)
}

// checkShared: whatever decodeEvidenceShared accepts, the strict decoder
// accepts with the same values, and parseEvidenceShared answers as
// ParseEvidence does.
func checkShared(t *testing.T, body []byte) (shared bool) {
	t.Helper()
	e, ok := decodeEvidenceShared(body)
	if ok {
		var want Evidence
		if err := attest.UnmarshalCBOR(body, &want); err != nil {
			t.Fatalf("the shared decoder accepts %x, the strict decoder refuses it: %v", body, err)
		}
		if !sameEvidence(e, &want) {
			t.Fatalf("the decoders disagree on %x", body)
		}
	}
	got, err1 := parseEvidenceShared(body)
	want, err2 := ParseEvidence(body)
	switch {
	case (err1 == nil) != (err2 == nil), err1 != nil && err1.Error() != err2.Error():
		t.Fatalf("parseEvidenceShared: %v; ParseEvidence: %v", err1, err2)
	case err1 == nil && !sameEvidence(got, want):
		t.Fatal("parseEvidenceShared and ParseEvidence disagree")
	case err1 != nil && got != nil:
		t.Fatal("evidence returned with an error")
	}
	return ok
}

func TestEvidenceShared(t *testing.T) {
	var b attest.Binding
	sim, err := NewSimulator([]byte("shared")).Entries(b, 1, at2024)
	if err != nil {
		t.Fatal(err)
	}
	canonical := [][]byte{
		vectorEvidence(t, "nvtrust-initial-hopper-545", "attestationReport.txt", "gpuAkCertChain.txt", rim545Driver, rim545VBIOS),
		vectorEvidence(t, "nvtrust-initial-hopper-545", "attestationReport.txt", "gpuAkCertChain.txt"),
		sim[0].Body,
	}
	for i, body := range canonical {
		if !checkShared(t, body) {
			t.Errorf("body %d, as Marshal writes it, does not take the shared path", i)
		}
		// The slices are body's, capped so that an append cannot write
		// into the next item.
		e, _ := decodeEvidenceShared(body)
		if cap(e.Report) != len(e.Report) || &e.Report[0] != &body[bytes.Index(body, e.Report)] {
			t.Errorf("body %d: the report is not a capped slice of the body", i)
		}
		// Every truncation, and trailing bytes, are refused by both.
		for n := range len(body) {
			if n%97 == 0 || n > len(body)-64 {
				checkShared(t, body[:n])
			}
		}
		checkShared(t, append(bytes.Clone(body), 0))
	}
	// Valid but not canonical: decoded by the strict decoder instead.
	for _, body := range [][]byte{
		{0xa2, 0x01, 0x41, 0x07, 0x02, 0x81, 0x41, 0x08},                   // canonical, small
		{0xa2, 0x01, 0x58, 0x01, 0x07, 0x02, 0x81, 0x41, 0x08},             // long length form
		{0xa2, 0x02, 0x81, 0x41, 0x08, 0x01, 0x41, 0x07},                   // keys out of order
		{0xa2, 0x01, 0x41, 0x07, 0x02, 0x98, 0x01, 0x41, 0x08},             // long array length
		{0xa2, 0x01, 0x41, 0x07, 0x02, 0x9f, 0x41, 0x08, 0xff},             // indefinite array
		{0xa3, 0x01, 0x41, 0x07, 0x01, 0x41, 0x07, 0x02, 0x81, 0x41, 0x08}, // duplicate key
		{0xa2, 0x01, 0x41, 0x07, 0x05, 0x80},                               // unknown key
		{0xa2, 0x01, 0xf6, 0x02, 0x81, 0x41, 0x08},                         // null report
		{0xa3, 0x01, 0x41, 0x07, 0x02, 0x81, 0x41, 0x08, 0x03, 0x80},       // empty RIM list
		{0xa0},
	} {
		checkShared(t, body)
	}
}

func FuzzEvidenceShared(f *testing.F) {
	var b attest.Binding
	if es, err := NewSimulator([]byte("fuzz")).Entries(b, 1, at2024); err == nil {
		f.Add(es[0].Body)
	}
	f.Add([]byte{0xa2, 0x01, 0x41, 0x07, 0x02, 0x81, 0x41, 0x08})
	f.Add([]byte{0xa4, 0x01, 0x41, 0x07, 0x02, 0x81, 0x41, 0x08, 0x03, 0x80, 0x04, 0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, body []byte) { checkShared(t, body) })
}

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
