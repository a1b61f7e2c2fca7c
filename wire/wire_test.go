package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

var allSuites = []Suite{
	{KDFHKDFSHA256, AEADAES128GCM}, {KDFHKDFSHA256, AEADAES256GCM}, {KDFHKDFSHA256, AEADChaCha20Poly1305},
	{KDFHKDFSHA384, AEADAES256GCM}, {KDFHKDFSHA512, AEADChaCha20Poly1305},
}

func mustKey(t testing.TB, id uint8, kem uint16) *PrivateKey {
	t.Helper()
	k, err := GenerateKey(id, kem, allSuites)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	for _, kem := range []uint16{KEMXWing, KEMX25519} {
		k := mustKey(t, 7, kem)
		for _, s := range allSuites {
			t.Run(fmt.Sprintf("%s %s", KEMName(kem), s), func(t *testing.T) {
				req := []byte("POST /v1/chat/completions")
				enc, cc, err := EncapsulateRequest(k.Config(), s, req)
				if err != nil {
					t.Fatal(err)
				}
				got, g, err := DecapsulateRequest([]*PrivateKey{k}, enc)
				if err != nil || !bytes.Equal(got, req) {
					t.Fatalf("decapsulate: %q %v", got, err)
				}
				resp, _ := g.SealResponse([]byte("200 OK"))
				if pt, err := cc.OpenResponse(resp); err != nil || string(pt) != "200 OK" {
					t.Fatalf("open response: %q %v", pt, err)
				}

				// Chunked, both ways.
				var wire bytes.Buffer
				w, err := NewChunkedRequestWriter(k.Config(), s, &wire)
				if err != nil {
					t.Fatal(err)
				}
				w.Write([]byte("hello "))
				w.CloseWith([]byte("world"))
				r, err := OpenChunkedRequest([]*PrivateKey{k}, &wire)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := io.ReadAll(r); err != nil || string(got) != "hello world" {
					t.Fatalf("chunked request: %q %v", got, err)
				}
				var out bytes.Buffer
				rw, _ := r.NewResponseWriter(&out)
				for _, tok := range []string{"The", " answer", " is", " 42"} {
					rw.Write([]byte(tok))
				}
				rw.Close()
				if got, err := io.ReadAll(w.OpenResponse(&out)); err != nil || string(got) != "The answer is 42" {
					t.Fatalf("chunked response: %q %v", got, err)
				}
			})
		}
	}
}

func TestMultiCandidate(t *testing.T) {
	var keys []*PrivateKey
	var cfgs []KeyConfig
	for i := range MaxCandidates {
		kem := KEMXWing
		if i%2 == 1 {
			kem = KEMX25519
		}
		keys = append(keys, mustKey(t, 1, kem)) // the same key id on every node
		cfgs = append(cfgs, keys[i].Config())
	}
	s := Suite{KDFHKDFSHA256, AEADAES256GCM}
	for k := 1; k <= MaxCandidates; k++ {
		msg, cc, err := EncapsulateMulti(cfgs[:k], s, []byte("prompt"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range k { // whichever candidate gets it can answer
			pt, g, err := OpenMulti(keys[i:i+1], msg)
			if err != nil || string(pt) != "prompt" || g.Candidates != k {
				t.Fatalf("k=%d candidate %d: %q %v", k, i, pt, err)
			}
			var out bytes.Buffer
			w, _ := g.NewResponseWriter(&out)
			w.Write([]byte(fmt.Sprint("answer from ", i)))
			w.Close()
			if got, err := io.ReadAll(cc.OpenResponse(&out)); err != nil || string(got) != fmt.Sprint("answer from ", i) {
				t.Fatalf("k=%d response from %d: %q %v", k, i, got, err)
			}
		}
		if k < MaxCandidates {
			if _, _, err := OpenMulti(keys[k:k+1], msg); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("k=%d: a node that is not a candidate: %v", k, err)
			}
		}
	}
	if _, _, err := EncapsulateMulti(append(cfgs, cfgs[0]), s, nil); err == nil {
		t.Fatal("9 candidates accepted")
	}
	if _, _, err := EncapsulateMulti([]KeyConfig{cfgs[0], cfgs[0]}, s, nil); err == nil {
		t.Fatal("a candidate listed twice accepted")
	}
}

// TestFlippedBytes: a flipped bit anywhere in a request, a response, a
// chunked message or a multi-candidate request is refused, never opened
// to other content.
func TestFlippedBytes(t *testing.T) {
	k := mustKey(t, 3, KEMX25519)
	s := allSuites[0]
	req, cc, _ := EncapsulateRequest(k.Config(), s, []byte("request"))
	_, g, _ := DecapsulateRequest([]*PrivateKey{k}, req)
	resp, _ := g.SealResponse([]byte("response"))
	var chunked bytes.Buffer
	w, _ := NewChunkedRequestWriter(k.Config(), s, &chunked)
	w.Write([]byte("one"))
	w.Write([]byte("two"))
	w.Close()
	multi, _, _ := EncapsulateMulti([]KeyConfig{k.Config(), mustKey(t, 4, KEMX25519).Config()}, s, []byte("request"))
	for name, tc := range map[string]struct {
		msg  []byte
		open func([]byte) error
	}{
		"request":  {req, func(b []byte) error { _, _, err := DecapsulateRequest([]*PrivateKey{k}, b); return err }},
		"response": {resp, func(b []byte) error { _, err := cc.OpenResponse(b); return err }},
		"chunked request": {chunked.Bytes(), func(b []byte) error {
			r, err := OpenChunkedRequest([]*PrivateKey{k}, bytes.NewReader(b))
			if err == nil {
				_, err = io.ReadAll(r)
			}
			return err
		}},
		"multi-candidate request": {multi, func(b []byte) error { _, _, err := OpenMulti([]*PrivateKey{k}, b); return err }},
	} {
		if err := tc.open(tc.msg); err != nil {
			t.Fatalf("%s: the original does not open: %v", name, err)
		}
		for i := range tc.msg {
			for _, bit := range []byte{0x01, 0x80} {
				b := bytes.Clone(tc.msg)
				b[i] ^= bit
				if err := tc.open(b); err == nil {
					t.Fatalf("%s: byte %d ^ %#x opened", name, i, bit)
				}
			}
		}
	}
}

// TestChunkAttacks: a dropped, reordered, duplicated or truncated chunk,
// and a stream cut before its final chunk, are errors.
func TestChunkAttacks(t *testing.T) {
	k := mustKey(t, 3, KEMXWing)
	s := allSuites[1]
	var req bytes.Buffer
	w, _ := NewChunkedRequestWriter(k.Config(), s, &req)
	w.Close()
	r, err := OpenChunkedRequest([]*PrivateKey{k}, &req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(r)
	var out bytes.Buffer
	rw, _ := r.NewResponseWriter(&out)
	var bounds []int // end offset of each chunk
	for _, tok := range []string{"a", "bb", "ccc"} {
		rw.Write([]byte(tok))
		bounds = append(bounds, out.Len())
	}
	rw.Close()
	full := out.Bytes()
	nonce := s2(k, s)
	chunks := [][]byte{full[nonce:bounds[0]], full[bounds[0]:bounds[1]], full[bounds[1]:bounds[2]], full[bounds[2]:]}
	join := func(idx ...int) []byte {
		b := bytes.Clone(full[:nonce])
		for _, i := range idx {
			b = append(b, chunks[i]...)
		}
		return b
	}
	read := func(b []byte) (string, error) {
		got, err := io.ReadAll(w.OpenResponse(bytes.NewReader(b)))
		return string(got), err
	}
	if got, err := read(full); err != nil || got != "abbccc" {
		t.Fatalf("intact: %q %v", got, err)
	}
	for name, b := range map[string][]byte{
		"dropped":      join(0, 2, 3),
		"reordered":    join(1, 0, 2, 3),
		"duplicated":   join(0, 0, 1, 2, 3),
		"no final":     join(0, 1, 2),
		"final first":  join(3),
		"cut inside":   full[:len(full)-3],
		"cut in nonce": full[:nonce-1],
	} {
		if got, err := read(b); err == nil {
			t.Errorf("%s: read %q with no error", name, got)
		} else if name == "no final" && !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: %v, want ErrTruncated", name, err)
		}
	}
}

// s2 is the response nonce size of a suite.
func s2(_ *PrivateKey, s Suite) int {
	si, _ := suiteByID(s)
	return si.secretN
}

func TestGatewayRefusals(t *testing.T) {
	k := mustKey(t, 1, KEMXWing)
	other := mustKey(t, 2, KEMXWing)
	s := allSuites[0]
	req, _, _ := EncapsulateRequest(other.Config(), s, []byte("x"))
	if _, _, err := DecapsulateRequest([]*PrivateKey{k}, req); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("key id not the node's: %v", err)
	}
	// The right key id, but another node's key.
	imposter, _ := GenerateKey(1, KEMXWing, allSuites)
	req, _, _ = EncapsulateRequest(imposter.Config(), s, []byte("x"))
	if _, _, err := DecapsulateRequest([]*PrivateKey{k}, req); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another node's key under the same id: %v", err)
	}
	// A suite the key does not offer.
	narrow, _ := GenerateKey(5, KEMX25519, []Suite{{KDFHKDFSHA256, AEADAES256GCM}})
	wide := narrow.Config()
	wide.Suites = allSuites
	req, _, _ = EncapsulateRequest(wide, allSuites[0], []byte("x"))
	if _, _, err := DecapsulateRequest([]*PrivateKey{narrow}, req); !errors.Is(err, ErrSuite) {
		t.Fatalf("suite not offered: %v", err)
	}
	if _, _, err := EncapsulateRequest(narrow.Config(), allSuites[0], nil); !errors.Is(err, ErrSuite) {
		t.Fatalf("client encrypting with a suite not offered: %v", err)
	}
}

func TestChoose(t *testing.T) {
	keys, err := NodeKeys(1)
	if err != nil {
		t.Fatal(err)
	}
	cs := []KeyConfig{keys[1].Config(), keys[0].Config()} // classical listed first
	c, s, err := Choose(cs, false)
	if err != nil || c.KEM != KEMXWing || s != DefaultSuites[0] {
		t.Fatalf("choose: %+v %v %v", c, s, err)
	}
	if _, _, err := Choose(cs[:1], false); err == nil {
		t.Fatal("a classical-only node chosen under a PQ-only policy")
	}
	if c, _, err := Choose(cs[:1], true); err != nil || c.KEM != KEMX25519 {
		t.Fatalf("classical allowed: %+v %v", c, err)
	}
}

func TestKeyConfigList(t *testing.T) {
	keys, _ := NodeKeys(1)
	list := MarshalKeyConfigs([]KeyConfig{keys[0].Config(), keys[1].Config()})
	cs, err := ParseKeyConfigs(list)
	if err != nil || len(cs) != 2 || !bytes.Equal(MarshalKeyConfigs(cs), list) {
		t.Fatalf("round trip: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"truncated":       list[:len(list)-1],
		"trailing":        append(bytes.Clone(list), 0),
		"duplicate id":    MarshalKeyConfigs([]KeyConfig{keys[0].Config(), keys[0].Config()}),
		"unknown KEM":     MarshalKeyConfigs([]KeyConfig{{ID: 1, KEM: 0x0011, PublicKey: make([]byte, 32), Suites: DefaultSuites}}),
		"no suites":       MarshalKeyConfigs([]KeyConfig{{ID: 1, KEM: KEMX25519, PublicKey: keys[1].Config().PublicKey}}),
		"unknown AEAD":    MarshalKeyConfigs([]KeyConfig{{ID: 1, KEM: KEMX25519, PublicKey: keys[1].Config().PublicKey, Suites: []Suite{{1, 9}}}}),
		"duplicate suite": MarshalKeyConfigs([]KeyConfig{{ID: 1, KEM: KEMX25519, PublicKey: keys[1].Config().PublicKey, Suites: []Suite{{1, 1}, {1, 1}}}}),
	} {
		if _, err := ParseKeyConfigs(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReplay(t *testing.T) {
	f := NewReplayFilter(time.Minute, 2)
	now := time.Unix(1e9, 0)
	if err := f.Check([]byte("a"), now); err != nil {
		t.Fatal(err)
	}
	if err := f.Check([]byte("a"), now.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	f.Check([]byte("b"), now)
	if err := f.Check([]byte("c"), now); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full: %v", err)
	}
	if err := f.Check([]byte("c"), now.Add(3*time.Minute)); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	for date, ok := range map[string]bool{
		now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"):                       true,
		now.Add(-2 * time.Minute).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"): false,
		now.Add(2 * time.Minute).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"):  false,
		"yesterday": false,
		"":          false,
	} {
		if err := f.CheckDate(date, now); (err == nil) != ok {
			t.Errorf("date %q: %v", date, err)
		}
	}
}

func FuzzParseKeyConfigs(f *testing.F) {
	keys, _ := NodeKeys(1)
	f.Add(MarshalKeyConfigs([]KeyConfig{keys[0].Config(), keys[1].Config()}))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseKeyConfigs(b)
		if err == nil && !bytes.Equal(MarshalKeyConfigs(cs), b) {
			t.Fatal("a parsed list does not re-encode to its bytes")
		}
	})
}

func FuzzDecapsulate(f *testing.F) {
	k, _ := GenerateKey(1, KEMX25519, allSuites)
	req, _, _ := EncapsulateRequest(k.Config(), allSuites[0], []byte("x"))
	var chunked bytes.Buffer
	w, _ := NewChunkedRequestWriter(k.Config(), allSuites[0], &chunked)
	w.Write([]byte("x"))
	w.Close()
	multi, _, _ := EncapsulateMulti([]KeyConfig{k.Config()}, allSuites[0], []byte("x"))
	f.Add(req)
	f.Add(chunked.Bytes())
	f.Add(multi)
	f.Fuzz(func(t *testing.T, b []byte) {
		DecapsulateRequest([]*PrivateKey{k}, b)
		OpenMulti([]*PrivateKey{k}, b)
		if r, err := OpenChunkedRequest([]*PrivateKey{k}, bytes.NewReader(b)); err == nil {
			io.Copy(io.Discard, r)
		}
	})
}

func FuzzOpenResponse(f *testing.F) {
	k, _ := GenerateKey(1, KEMX25519, allSuites)
	var req bytes.Buffer
	w, _ := NewChunkedRequestWriter(k.Config(), allSuites[0], &req)
	w.Close()
	r, _ := OpenChunkedRequest([]*PrivateKey{k}, &req)
	io.ReadAll(r)
	var out bytes.Buffer
	rw, _ := r.NewResponseWriter(&out)
	rw.Write([]byte("token"))
	rw.Close()
	f.Add(out.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := io.ReadAll(w.OpenResponse(bytes.NewReader(b)))
		if err == nil && !bytes.Equal(b, out.Bytes()) && string(got) == "token" {
			t.Fatal("an altered response opened")
		}
	})
}
