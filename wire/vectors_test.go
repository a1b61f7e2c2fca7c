package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// rfcVector is the shape of wire/testdata/rfc9458.json and
// chunked-ohttp-08.json, transcribed from the RFC and the draft.
type rfcVector struct {
	GatewaySecretKey     string `json:"gateway_secret_key"`
	KeyConfig            string `json:"key_config"`
	Request              string `json:"request"`
	RequestChunks        []int  `json:"request_chunks"`
	Enc                  string `json:"enc"`
	Info                 string `json:"info"`
	EncapsulatedRequest  string `json:"encapsulated_request"`
	Response             string `json:"response"`
	ResponseChunks       []int  `json:"response_chunks"`
	ResponseNonce        string `json:"response_nonce"`
	EncapsulatedResponse string `json:"encapsulated_response"`
}

func loadVector(t testing.TB, name string) (v rfcVector, h func(string) []byte) {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v, func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// vectorKey makes the gateway key of a vector and checks that its
// configuration encodes to the vector's bytes exactly.
func vectorKey(t *testing.T, v rfcVector, h func(string) []byte) *PrivateKey {
	t.Helper()
	cfg, err := ParseKeyConfig(h(v.KeyConfig))
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewPrivateKey(cfg.ID, cfg.KEM, cfg.Suites, h(v.GatewaySecretKey))
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Config().Marshal(); !bytes.Equal(got, h(v.KeyConfig)) {
		t.Fatalf("key configuration %x, want %x", got, h(v.KeyConfig))
	}
	return k
}

// TestRFC9458 reproduces RFC 9458 Appendix A: the key configuration, the
// info string, the request decapsulated, the response encapsulated with
// the example's nonce byte for byte, and the response opened by the
// client's context. (The client's own encapsulation draws a fresh
// ephemeral key inside crypto/hpke, which cannot be fixed from outside;
// its bytes are checked by TestRoundTrip and TestInterop instead.)
func TestRFC9458(t *testing.T) {
	v, h := loadVector(t, "rfc9458.json")
	k := vectorKey(t, v, h)
	hdr := h(v.EncapsulatedRequest)[:headerSize]
	if got := info(labelRequest, hdr); !bytes.Equal(got, h(v.Info)) {
		t.Fatalf("info %x, want %x", got, h(v.Info))
	}
	req, g, err := DecapsulateRequest([]*PrivateKey{k}, h(v.EncapsulatedRequest))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req, h(v.Request)) || !bytes.Equal(g.enc, h(v.Enc)) {
		t.Fatalf("request %x enc %x", req, g.enc)
	}
	resp, err := g.sealResponse(h(v.Response), h(v.ResponseNonce))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp, h(v.EncapsulatedResponse)) {
		t.Fatalf("encapsulated response\n got %x\nwant %s", resp, v.EncapsulatedResponse)
	}
	c := &ClientContext{enc: g.enc, secret: g.secret, si: g.si}
	if pt, err := c.OpenResponse(h(v.EncapsulatedResponse)); err != nil || !bytes.Equal(pt, h(v.Response)) {
		t.Fatalf("client opens the response: %x, %v", pt, err)
	}
}

// TestChunkedOHTTP reproduces draft-ietf-ohai-chunked-ohttp-08 Appendix
// A: the chunked request opened chunk by chunk, and the chunked response
// sealed with the example's nonce and chunking byte for byte.
func TestChunkedOHTTP(t *testing.T) {
	v, h := loadVector(t, "chunked-ohttp-08.json")
	k := vectorKey(t, v, h)
	r, err := OpenChunkedRequest([]*PrivateKey{k}, bytes.NewReader(h(v.EncapsulatedRequest)))
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for {
		buf := make([]byte, 64)
		n, err := r.Read(buf)
		if n > 0 {
			got = append(got, buf[:n])
		}
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
	}
	var lens []int
	for _, g := range got {
		lens = append(lens, len(g))
	}
	if !bytes.Equal(bytes.Join(got, nil), h(v.Request)) || !slices.Equal(lens, v.RequestChunks) {
		t.Fatalf("request chunks %x, want lengths %v", got, v.RequestChunks)
	}
	var out bytes.Buffer
	w, err := r.newResponseWriter(&out, h(v.ResponseNonce))
	if err != nil {
		t.Fatal(err)
	}
	resp := h(v.Response)
	for _, n := range v.ResponseChunks {
		w.Write(resp[:n])
		resp = resp[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), h(v.EncapsulatedResponse)) {
		t.Fatalf("chunked response\n got %x\nwant %s", out.Bytes(), v.EncapsulatedResponse)
	}
}
