package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "regenerate wire/testdata/sworn.json")

// swornVectors are sworn's own test vectors (wire/testdata/sworn.json),
// for the parts no RFC has vectors for: OHTTP with the X-Wing hybrid,
// chunked OHTTP with it, and multi-candidate requests. Encapsulation draws
// fresh randomness, so a vector fixes the gateway keys (by their seeds),
// the encapsulated request and the response nonce; an implementation must
// open the request to the plaintext and seal the response to exactly the
// bytes given. Regenerate with:
//
//	go test ./wire -run TestSwornVectors -update
type swornVectors struct {
	Note  string        `json:"note"`
	OHTTP []ohttpVector `json:"ohttp"`
	Multi multiVector   `json:"multi"`
}

type ohttpVector struct {
	Name                 string `json:"name"`
	KeyID                uint8  `json:"key_id"`
	KEM                  uint16 `json:"kem"`
	Suite                Suite  `json:"suite"`
	Secret               string `json:"gateway_secret_key"`
	KeyConfig            string `json:"key_config"`
	Chunked              bool   `json:"chunked"`
	Request              string `json:"request"`
	EncapsulatedRequest  string `json:"encapsulated_request"`
	Response             string `json:"response"`
	ResponseNonce        string `json:"response_nonce"`
	EncapsulatedResponse string `json:"encapsulated_response"`
}

type multiVector struct {
	Suite                Suite    `json:"suite"`
	Secrets              []string `json:"candidate_secret_keys"` // X-Wing seeds, key id 1 each
	KeyConfigs           []string `json:"candidate_key_configs"`
	Request              string   `json:"request"`
	EncapsulatedRequest  string   `json:"encapsulated_request"`
	Response             string   `json:"response"`
	ResponseNonce        string   `json:"response_nonce"`
	EncapsulatedResponse string   `json:"encapsulated_response"`
}

func seedOf(label string) []byte {
	b := bytes.Repeat([]byte(label), 32/len(label)+1)
	return b[:32]
}

func TestSwornVectors(t *testing.T) {
	if *update {
		writeSwornVectors(t)
	}
	data, err := os.ReadFile("testdata/sworn.json")
	if err != nil {
		t.Fatal(err)
	}
	var v swornVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, o := range v.OHTTP {
		k, err := NewPrivateKey(o.KeyID, o.KEM, []Suite{o.Suite}, h(o.Secret))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k.Config().Marshal(), h(o.KeyConfig)) {
			t.Fatalf("%s: key configuration", o.Name)
		}
		var out bytes.Buffer
		if o.Chunked {
			r, err := OpenChunkedRequest([]*PrivateKey{k}, bytes.NewReader(h(o.EncapsulatedRequest)))
			if err != nil {
				t.Fatalf("%s: %v", o.Name, err)
			}
			if pt, err := io.ReadAll(r); err != nil || !bytes.Equal(pt, h(o.Request)) {
				t.Fatalf("%s: request %x %v", o.Name, pt, err)
			}
			w, _ := r.newResponseWriter(&out, h(o.ResponseNonce))
			w.Write(h(o.Response))
			w.Close()
		} else {
			pt, g, err := DecapsulateRequest([]*PrivateKey{k}, h(o.EncapsulatedRequest))
			if err != nil || !bytes.Equal(pt, h(o.Request)) {
				t.Fatalf("%s: request %x %v", o.Name, pt, err)
			}
			resp, _ := g.sealResponse(h(o.Response), h(o.ResponseNonce))
			out.Write(resp)
		}
		if !bytes.Equal(out.Bytes(), h(o.EncapsulatedResponse)) {
			t.Fatalf("%s: encapsulated response\n got %x\nwant %s", o.Name, out.Bytes(), o.EncapsulatedResponse)
		}
	}
	m := v.Multi
	for i, sec := range m.Secrets {
		k, err := NewPrivateKey(1, KEMXWing, []Suite{m.Suite}, h(sec))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k.Config().Marshal(), h(m.KeyConfigs[i])) {
			t.Fatalf("multi: candidate %d key configuration", i)
		}
		pt, g, err := OpenMulti([]*PrivateKey{k}, h(m.EncapsulatedRequest))
		if err != nil || !bytes.Equal(pt, h(m.Request)) {
			t.Fatalf("multi: candidate %d: %x %v", i, pt, err)
		}
		var out bytes.Buffer
		w, _ := g.newResponseWriter(&out, h(m.ResponseNonce))
		w.Write(h(m.Response))
		w.Close()
		if !bytes.Equal(out.Bytes(), h(m.EncapsulatedResponse)) {
			t.Fatalf("multi: candidate %d's response differs from the vector", i)
		}
	}
}

func writeSwornVectors(t *testing.T) {
	x := hex.EncodeToString
	req := []byte("\x00\x04POST\x05https\x0cnode.example\x14/v1/chat/completions\x00\x10{\"model\":\"m\"}\x00\x00")
	resp := []byte("\x01\x40\xc8\x00\x05hello\x00")
	v := swornVectors{Note: "sworn wire vectors; see docs/protocol.md. Regenerate: go test ./wire -run TestSwornVectors -update"}
	for _, c := range []struct {
		name    string
		kem     uint16
		suite   Suite
		chunked bool
	}{
		{"ohttp x-wing aes-256-gcm", KEMXWing, Suite{KDFHKDFSHA256, AEADAES256GCM}, false},
		{"ohttp x-wing chacha20-poly1305", KEMXWing, Suite{KDFHKDFSHA256, AEADChaCha20Poly1305}, false},
		{"chunked ohttp x-wing aes-256-gcm", KEMXWing, Suite{KDFHKDFSHA256, AEADAES256GCM}, true},
		{"ohttp x25519 aes-256-gcm", KEMX25519, Suite{KDFHKDFSHA256, AEADAES256GCM}, false},
	} {
		secret := seedOf(c.name)
		k, err := NewPrivateKey(1, c.kem, []Suite{c.suite}, secret)
		if err != nil {
			t.Fatal(err)
		}
		nonce := seedOf("nonce " + c.name)[:32]
		o := ohttpVector{Name: c.name, KeyID: 1, KEM: c.kem, Suite: c.suite, Secret: x(secret), KeyConfig: x(k.Config().Marshal()),
			Chunked: c.chunked, Request: x(req), Response: x(resp), ResponseNonce: x(nonce)}
		var out bytes.Buffer
		if c.chunked {
			var enc bytes.Buffer
			w, _ := NewChunkedRequestWriter(k.Config(), c.suite, &enc)
			w.Write(req[:10])
			w.CloseWith(req[10:])
			o.EncapsulatedRequest = x(enc.Bytes())
			r, _ := OpenChunkedRequest([]*PrivateKey{k}, &enc)
			io.ReadAll(r)
			rw, _ := r.newResponseWriter(&out, nonce)
			rw.Write(resp)
			rw.Close()
		} else {
			enc, _, _ := EncapsulateRequest(k.Config(), c.suite, req)
			o.EncapsulatedRequest = x(enc)
			_, g, _ := DecapsulateRequest([]*PrivateKey{k}, enc)
			r, _ := g.sealResponse(resp, nonce)
			out.Write(r)
		}
		o.EncapsulatedResponse = x(out.Bytes())
		v.OHTTP = append(v.OHTTP, o)
	}
	m := multiVector{Suite: Suite{KDFHKDFSHA256, AEADAES256GCM}, Request: x(req), Response: x(resp), ResponseNonce: x(seedOf("multi nonce"))}
	var keys []*PrivateKey
	var cfgs []KeyConfig
	for _, label := range []string{"candidate a", "candidate b", "candidate c"} {
		k, _ := NewPrivateKey(1, KEMXWing, []Suite{m.Suite}, seedOf(label))
		keys, cfgs = append(keys, k), append(cfgs, k.Config())
		m.Secrets, m.KeyConfigs = append(m.Secrets, x(seedOf(label))), append(m.KeyConfigs, x(k.Config().Marshal()))
	}
	msg, _, err := EncapsulateMulti(cfgs, m.Suite, req)
	if err != nil {
		t.Fatal(err)
	}
	m.EncapsulatedRequest = x(msg)
	_, g, _ := OpenMulti(keys[:1], msg)
	var out bytes.Buffer
	w, _ := g.newResponseWriter(&out, seedOf("multi nonce"))
	w.Write(resp)
	w.Close()
	m.EncapsulatedResponse = x(out.Bytes())
	v.Multi = m
	data, _ := json.MarshalIndent(v, "", "  ")
	if err := os.WriteFile("testdata/sworn.json", append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
