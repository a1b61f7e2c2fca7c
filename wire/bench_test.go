package wire

import (
	"bytes"
	"crypto/hpke"
	"io"
	"testing"
)

// The request and response sizes of a typical chat completion.
var (
	benchRequest  = bytes.Repeat([]byte("r"), 2048)
	benchResponse = bytes.Repeat([]byte("s"), 4096)
)

// BenchmarkBareHPKE is the baseline of BenchmarkRequest: one hybrid HPKE
// seal and open of the same request.
func BenchmarkBareHPKE(b *testing.B) {
	k, _ := hpke.MLKEM768X25519().GenerateKey()
	pk := k.PublicKey()
	for b.Loop() {
		ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := hpke.Open(k, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), ct); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequest: encapsulate + decapsulate an OHTTP request with the
// hybrid KEM (target: ≤ 1.1× BenchmarkBareHPKE).
func BenchmarkRequest(b *testing.B) {
	k, _ := GenerateKey(1, KEMXWing, DefaultSuites)
	keys, c := []*PrivateKey{k}, k.Config()
	for b.Loop() {
		enc, _, err := EncapsulateRequest(c, DefaultSuites[0], benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := DecapsulateRequest(keys, enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChunk: seal + open one 32-byte token chunk of a streamed
// response (target: ≤ 1.5 µs).
func BenchmarkChunk(b *testing.B) {
	k, _ := GenerateKey(1, KEMXWing, DefaultSuites)
	var req bytes.Buffer
	w, _ := NewChunkedRequestWriter(k.Config(), DefaultSuites[0], &req)
	w.Close()
	r, _ := OpenChunkedRequest([]*PrivateKey{k}, &req)
	io.ReadAll(r)
	var pipe bytes.Buffer
	rw, _ := r.NewResponseWriter(&pipe)
	tok := bytes.Repeat([]byte("t"), 32)
	rw.Write(tok) // the nonce goes out with the first chunk
	rd := w.OpenResponse(&pipe)
	buf := make([]byte, 64)
	if _, err := rd.Read(buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(32)
	for b.Loop() {
		rw.Write(tok)
		if _, err := rd.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchMulti(b *testing.B, k int) {
	var keys []*PrivateKey
	var cfgs []KeyConfig
	for range k {
		key, _ := GenerateKey(1, KEMXWing, DefaultSuites)
		keys, cfgs = append(keys, key), append(cfgs, key.Config())
	}
	for b.Loop() {
		msg, _, err := EncapsulateMulti(cfgs, DefaultSuites[0], benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := OpenMulti(keys[k-1:], msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMulti1 and BenchmarkMulti3: a multi-candidate request with one
// and three candidates, encapsulated and opened by the last (target: k=3
// ≤ 3.3× k=1).
func BenchmarkMulti1(b *testing.B) { benchMulti(b, 1) }
func BenchmarkMulti3(b *testing.B) { benchMulti(b, 3) }

// BenchmarkResponse: seal + open a 4 KiB OHTTP response.
func BenchmarkResponse(b *testing.B) {
	k, _ := GenerateKey(1, KEMXWing, DefaultSuites)
	enc, cc, _ := EncapsulateRequest(k.Config(), DefaultSuites[0], benchRequest)
	_, g, _ := DecapsulateRequest([]*PrivateKey{k}, enc)
	for b.Loop() {
		resp, _ := g.SealResponse(benchResponse)
		if _, err := cc.OpenResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}
