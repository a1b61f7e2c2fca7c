package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudflare/circl/hpke"
	"github.com/openpcc/ohttp"

	"github.com/sworn-dev/sworn/wire"
)

// bhttpResponse is a known-length Binary HTTP response (RFC 9292): status
// 200, no header fields, the given content, no trailer.
func bhttpResponse(content string) []byte {
	b := []byte{0x01, 0x40, 0xc8, 0x00, byte(len(content))}
	return append(append(b, content...), 0x00)
}

// bhttpRequest is a known-length Binary HTTP request (RFC 9292):
// POST https://node.example/v1/chat, no header fields, the given content.
func bhttpRequest(content string) []byte {
	b := []byte{0x00}
	for _, s := range []string{"POST", "https", "node.example", "/v1/chat"} {
		b = append(append(b, byte(len(s))), s...)
	}
	b = append(b, 0x00, byte(len(content)))
	return append(append(b, content...), 0x00)
}

var allowAll = ohttp.WithRequestValidator(validatorFunc(func(*http.Request) error { return nil }))

type validatorFunc func(*http.Request) error

func (f validatorFunc) ValidRequest(r *http.Request) error { return f(r) }

// TestTheirClientOurGateway: openpcc's client encapsulates, sworn's wire
// decapsulates and answers, openpcc's client opens the answer.
func TestTheirClientOurGateway(t *testing.T) {
	for _, kem := range []uint16{wire.KEMX25519, wire.KEMXWing} {
		k, err := wire.GenerateKey(1, kem, []wire.Suite{{KDF: wire.KDFHKDFSHA256, AEAD: wire.AEADAES128GCM}})
		if err != nil {
			t.Fatal(err)
		}
		var cfg ohttp.KeyConfig
		if err := cfg.UnmarshalBinary(k.Config().Marshal()); err != nil {
			t.Fatalf("%s: openpcc cannot read sworn's key configuration: %v", wire.KEMName(kem), err)
		}
		tr, err := ohttp.NewTransport(cfg, "http://relay.invalid/")
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, "https://node.example/v1/chat", strings.NewReader(`{"prompt":"hi"}`))
		req.ContentLength = int64(len(`{"prompt":"hi"}`))
		outer, decap, err := tr.Encapsulate(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := outer.Header.Get("Content-Type"); ct != wire.MediaTypeRequest {
			t.Fatalf("content type %q", ct)
		}
		body, _ := io.ReadAll(outer.Body)
		pt, g, err := wire.DecapsulateRequest([]*wire.PrivateKey{k}, body)
		if err != nil {
			t.Fatalf("%s: sworn cannot open openpcc's request: %v", wire.KEMName(kem), err)
		}
		if !bytes.Contains(pt, []byte(`{"prompt":"hi"}`)) || !bytes.Contains(pt, []byte("/v1/chat")) {
			t.Fatalf("inner request %q", pt)
		}
		sealed, err := g.SealResponse(bhttpResponse("hello"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := decap.Decapsulate(context.Background(), &http.Response{
			StatusCode: 200, Header: http.Header{"Content-Type": {wire.MediaTypeResponse}},
			Body: io.NopCloser(bytes.NewReader(sealed)), ContentLength: int64(len(sealed)),
		})
		if err != nil {
			t.Fatalf("%s: openpcc cannot open sworn's response: %v", wire.KEMName(kem), err)
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(got) != "hello" {
			t.Fatalf("response %d %q", resp.StatusCode, got)
		}
	}
}

// TestOurClientTheirGateway: sworn's wire encapsulates, openpcc's gateway
// decapsulates and answers, sworn's wire opens the answer.
func TestOurClientTheirGateway(t *testing.T) {
	for _, kemID := range []hpke.KEM{hpke.KEM_X25519_HKDF_SHA256, hpke.KEM_XWING} {
		pk, sk, err := kemID.Scheme().GenerateKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		cfg := ohttp.KeyConfig{KeyID: 9, KemID: kemID, PublicKey: pk, SymmetricAlgorithms: []ohttp.SymmetricAlgorithm{{KDFID: hpke.KDF_HKDF_SHA256, AEADID: hpke.AEAD_AES256GCM}}}
		enc, err := cfg.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		ours, err := wire.ParseKeyConfig(enc)
		if err != nil {
			t.Fatalf("sworn cannot read openpcc's key configuration: %v", err)
		}
		gw, err := ohttp.NewGateway(ohttp.KeyPair{SecretKey: sk, KeyConfig: cfg}, allowAll)
		if err != nil {
			t.Fatal(err)
		}
		msg, cc, err := wire.EncapsulateRequest(ours, ours.Suites[0], bhttpRequest(`{"prompt":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		outer, _ := http.NewRequest(http.MethodPost, "https://gateway.example/", bytes.NewReader(msg))
		outer.Header.Set("Content-Type", wire.MediaTypeRequest)
		inner, encap, err := gw.Decapsulate(outer)
		if err != nil {
			t.Fatalf("%v: openpcc cannot open sworn's request: %v", kemID, err)
		}
		body, _ := io.ReadAll(inner.Body)
		if inner.Method != http.MethodPost || inner.URL.Path != "/v1/chat" || string(body) != `{"prompt":"hi"}` {
			t.Fatalf("inner request %s %s %q", inner.Method, inner.URL, body)
		}
		resp, err := encap.Encapsulate(&http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("hello")), ContentLength: 5})
		if err != nil {
			t.Fatal(err)
		}
		sealed, _ := io.ReadAll(resp.Body)
		pt, err := cc.OpenResponse(sealed)
		if err != nil {
			t.Fatalf("%v: sworn cannot open openpcc's response: %v", kemID, err)
		}
		if !bytes.Contains(pt, []byte("hello")) {
			t.Fatalf("inner response %x", pt)
		}
	}
	_ = rand.Reader
}

// TestChunkedTheirClientOurGateway: a request of unknown length makes
// openpcc's client send chunked OHTTP (draft-08); sworn's gateway opens it
// and streams a chunked response that openpcc's client reads.
func TestChunkedTheirClientOurGateway(t *testing.T) {
	k, err := wire.GenerateKey(1, wire.KEMXWing, wire.DefaultSuites)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ohttp.KeyConfig
	if err := cfg.UnmarshalBinary(k.Config().Marshal()); err != nil {
		t.Fatal(err)
	}
	tr, _ := ohttp.NewTransport(cfg, "http://relay.invalid/")
	req, _ := http.NewRequest(http.MethodPost, "https://node.example/v1/chat", io.MultiReader(strings.NewReader(`{"stream":`), strings.NewReader(`true}`)))
	req.ContentLength = -1
	outer, decap, err := tr.Encapsulate(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := outer.Header.Get("Content-Type"); ct != wire.MediaTypeChunkedReq {
		t.Skipf("openpcc sent %q for a request of unknown length, not a chunked request", ct)
	}
	r, err := wire.OpenChunkedRequest([]*wire.PrivateKey{k}, outer.Body)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := io.ReadAll(r)
	if err != nil || !bytes.Contains(pt, []byte(`{"stream":`)) || !bytes.Contains(pt, []byte(`true}`)) {
		t.Fatalf("inner request %q %v", pt, err)
	}
	var out bytes.Buffer
	w, _ := r.NewResponseWriter(&out)
	// An indeterminate-length BHTTP response (RFC 9292 §3.2): status 200,
	// empty header section, content chunks, end of content, empty trailer.
	w.Write([]byte{0x03, 0x40, 0xc8, 0x00})
	for _, tok := range []string{"The", " answer"} {
		w.Write(append([]byte{byte(len(tok))}, tok...))
	}
	w.Write([]byte{0x00, 0x00})
	w.Close()
	resp, err := decap.Decapsulate(context.Background(), &http.Response{
		StatusCode: 200, Header: http.Header{"Content-Type": {wire.MediaTypeChunkedRes}},
		Body: io.NopCloser(&out), ContentLength: -1,
	})
	if err != nil {
		t.Fatalf("openpcc cannot open sworn's chunked response: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || string(got) != "The answer" {
		t.Fatalf("response %q %v", got, err)
	}
}
