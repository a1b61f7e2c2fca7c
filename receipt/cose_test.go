package receipt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/veraison/go-cose"

	"github.com/sworn-dev/sworn/attest"
)

// TestGoCOSE checks the receipt's COSE_Sign1 framing against go-cose, an
// independent implementation, both ways: go-cose verifies what Sign
// writes, and what go-cose signs with a receipt's headers is byte for byte
// what Sign writes (Ed25519 is deterministic) and verifies with Verify.
func TestGoCOSE(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	for name, p := range map[string]*Payload{
		"minimal": fill(t, key, &Payload{}),
		"full":    benchPayload(pub),
		"long origin": func() *Payload {
			p := benchPayload(pub)
			p.Release.Origin = string(bytes.Repeat([]byte("o"), MaxOriginSize))
			return p
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			ours := sign(t, key, p)

			var msg cose.Sign1Message
			if err := msg.UnmarshalCBOR(ours); err != nil {
				t.Fatalf("go-cose cannot decode a receipt: %v", err)
			}
			v, err := cose.NewVerifier(cose.AlgorithmEdDSA, pub)
			if err != nil {
				t.Fatal(err)
			}
			if err := msg.Verify(nil, v); err != nil {
				t.Fatalf("go-cose does not verify a receipt: %v", err)
			}
			if alg, _ := msg.Headers.Protected.Algorithm(); alg != cose.AlgorithmEdDSA {
				t.Fatalf("go-cose reads alg %v", alg)
			}
			if ct := msg.Headers.Protected[cose.HeaderLabelContentType]; ct != ContentType {
				t.Fatalf("go-cose reads content type %v", ct)
			}
			kid := KeyID(pub)
			if got := msg.Headers.Protected[cose.HeaderLabelKeyID]; !bytes.Equal(got.([]byte), kid[:]) || len(msg.Headers.Unprotected) != 0 {
				t.Fatalf("go-cose reads kid %x and unprotected %v", got, msg.Headers.Unprotected)
			}

			payload, err := attest.MarshalCBOR(p)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := cose.NewSigner(cose.AlgorithmEdDSA, key)
			if err != nil {
				t.Fatal(err)
			}
			hdr := cose.Headers{Protected: cose.ProtectedHeader{
				cose.HeaderLabelAlgorithm:   cose.AlgorithmEdDSA,
				cose.HeaderLabelContentType: ContentType,
				cose.HeaderLabelKeyID:       kid[:],
			}}
			theirs, err := cose.Sign1(nil, signer, hdr, payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(theirs, ours) {
				t.Fatalf("go-cose signs\n%x\nSign writes\n%x", theirs, ours)
			}
			r, err := Parse(theirs)
			if err != nil {
				t.Fatalf("a receipt go-cose signed does not parse: %v", err)
			}
			if err := r.Verify(pub); err != nil {
				t.Fatalf("a receipt go-cose signed does not verify: %v", err)
			}
		})
	}
}

// TestFraming refuses every change to the framing bytes around the
// payload: a longer length head, a truncation, a wrong major type.
func TestFraming(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	good := sign(t, key, fill(t, key, &Payload{}))
	if _, err := Parse(good); err != nil {
		t.Fatal(err)
	}
	at := len(cose1Prefix) + len(headerPrefix) + 32 + len(emptyMap) // the payload's head
	if good[at] != 0x58 {
		t.Fatalf("test payload head is %#x, want a one-byte length (0x58)", good[at])
	}
	long := append(append(bytes.Clone(good[:at]), 0x59, 0), good[at+1:]...)
	for name, data := range map[string][]byte{
		"two-byte length head": long,
		"payload as text":      append(append(bytes.Clone(good[:at]), 0x78), good[at+1:]...),
		"indefinite payload":   append(append(bytes.Clone(good[:at]), 0x5f), good[at+2:]...),
		"truncated signature":  good[:len(good)-1],
		"no signature":         good[:len(good)-66],
		"signature as text":    append(append(bytes.Clone(good[:len(good)-66]), 0x78), good[len(good)-65:]...),
		"untagged array of 5":  append([]byte{0xd2, 0x85}, good[2:]...),
		"no unprotected map":   append(bytes.Clone(good[:at-1]), good[at:]...),
	} {
		if _, err := Parse(data); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestPayloadEncoding holds appendPayload equal to the deterministic
// encoding fxamacker/cbor writes, over payloads whose integers cross every
// head size.
func TestPayloadEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ints := []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxUint64}
	pick := func() uint64 { return ints[rng.IntN(len(ints))] }
	for i := range 2000 {
		p := &Payload{Version: uint(pick()), Time: int64(pick()), Status: uint16(pick()),
			Tokens: Tokens{pick(), pick()}, Suite: Suite{uint16(pick()), uint16(pick()), uint16(pick()), uint16(pick())}}
		if i%3 == 0 {
			p.Time = -p.Time - 1
		}
		for _, d := range []*Digest{&p.Request, &p.Response, &p.Model, &p.Bundle, &p.NodeKey} {
			binary.BigEndian.PutUint64(d[:], rng.Uint64())
		}
		if i%2 == 0 {
			p.Release = &Release{Origin: strings.Repeat("o", int(pick()%300)), Index: pick()}
		}
		if i%5 != 0 {
			p.Nonce = bytes.Repeat([]byte{7}, int(pick()%70))
		}
		want, err := attest.MarshalCBOR(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendPayload(nil, p); !bytes.Equal(got, want) {
			t.Fatalf("payload %+v:\nappendPayload %x\nfxamacker     %x", p, got, want)
		}
	}
}

// TestParseCopies: a parsed receipt does not change when the caller reuses
// the buffer it was parsed from.
func TestParseCopies(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	data := sign(t, key, fill(t, key, &Payload{}))
	r, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	clear(data)
	if err := r.Verify(key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("the receipt changed with the caller's buffer: %v", err)
	}
}
