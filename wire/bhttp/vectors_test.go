package bhttp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

// vector is one example of RFC 9292 §5 in testdata/rfc9292.json.
type vector struct {
	Name          string
	Kind          string
	Framing       string
	Hex           string
	Padding       int
	Method        string
	Scheme        string
	Authority     string
	Path          string
	Informational []struct {
		Status int
		Header [][2]string
	}
	Status  int
	Header  [][2]string
	Content string
	Trailer [][2]string

	raw []byte
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc9292.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Vectors []vector }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for i := range doc.Vectors {
		v := &doc.Vectors[i]
		if v.raw, err = hex.DecodeString(v.Hex); err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
	}
	if len(doc.Vectors) != 4 {
		t.Fatalf("testdata/rfc9292.json has %d vectors, want 4", len(doc.Vectors))
	}
	return doc.Vectors
}

func toFields(p [][2]string) Fields {
	var f Fields
	for _, kv := range p {
		f = append(f, Field{Name: kv[0], Value: kv[1]})
	}
	return f
}

func (v *vector) framing() Framing {
	if v.Framing == "indeterminate-length" {
		return IndeterminateLength
	}
	return KnownLength
}

func (v *vector) content() []byte {
	if v.Content == "" {
		return nil
	}
	return []byte(v.Content)
}

func (v *vector) request() *Request {
	return &Request{Framing: v.framing(), Method: v.Method, Scheme: v.Scheme, Authority: v.Authority, Path: v.Path,
		Header: toFields(v.Header), Content: v.content(), Trailer: toFields(v.Trailer)}
}

func (v *vector) response() *Response {
	r := &Response{Framing: v.framing(), Status: v.Status, Header: toFields(v.Header), Content: v.content(), Trailer: toFields(v.Trailer)}
	for _, ir := range v.Informational {
		r.Informational = append(r.Informational, InfoResponse{Status: ir.Status, Header: toFields(ir.Header)})
	}
	return r
}

// decodeVector decodes b as the kind of v, returning the message with
// Truncated cleared and whether it was set.
func decodeVector(v *vector, b []byte, opts *Options) (any, bool, error) {
	if v.Kind == "request" {
		r, err := DecodeRequest(b, opts)
		if err != nil {
			return nil, false, err
		}
		t := r.Truncated
		r.Truncated = false
		return r, t, nil
	}
	r, err := DecodeResponse(b, opts)
	if err != nil {
		return nil, false, err
	}
	t := r.Truncated
	r.Truncated = false
	return r, t, nil
}

func (v *vector) want() any {
	if v.Kind == "request" {
		return v.request()
	}
	return v.response()
}

func TestRFC9292Examples(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			got, trunc, err := decodeVector(&v, v.raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			if trunc {
				t.Error("Truncated set for the whole example")
			}
			if want := v.want(); !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
			}
			var enc []byte
			switch m := got.(type) {
			case *Request:
				enc, err = m.Encode()
			case *Response:
				enc, err = m.Encode()
			}
			if err != nil {
				t.Fatal(err)
			}
			enc = append(enc, make([]byte, v.Padding)...)
			if !bytes.Equal(enc, v.raw) {
				t.Fatalf("re-encoded\n%x\nwant\n%x", enc, v.raw)
			}
		})
	}
}

// TestRFC9292Truncation decodes every prefix of every example: exactly the
// prefixes that §3.8 allows (less padding, the trailer section omitted, or
// content and trailer section omitted) decode, to the example with what was
// omitted empty; every other prefix is malformed.
func TestRFC9292Truncation(t *testing.T) {
	const (
		same = iota
		noTrailer
		noContent
	)
	// valid maps, per example, the number of bytes cut from the end to
	// what the rest decodes to.
	valid := map[string]map[int]int{
		// §5.1: "the last two bytes ... can each be removed".
		"request known-length (Figure 2)": {0: same, 1: same, 2: same},
		// §5.1: 10 bytes of padding, "anything up to 12 bytes can be removed".
		"request indeterminate-length (Figure 3)": {0: same, 1: same, 2: same, 3: same, 4: same, 5: same, 6: same,
			7: same, 8: same, 9: same, 10: same, 11: same, 12: same},
		// The trailer terminator, then the chunk of 51 bytes with its length
		// and terminator.
		"response indeterminate-length with informational responses (Figure 5)": {0: same, 1: same, 54: noContent},
		// The trailer section of 1+13 bytes, then the content of 1+29 bytes.
		"response known-length with a trailer (Figure 7)": {0: same, 14: noTrailer, 44: noContent},
	}
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			ok, found := valid[v.Name]
			if !found {
				t.Fatal("no truncation expectations")
			}
			for cut := 0; cut <= len(v.raw); cut++ {
				b := v.raw[:len(v.raw)-cut]
				got, trunc, err := decodeVector(&v, b, nil)
				drop, allowed := ok[cut]
				if !allowed {
					if err == nil || !errors.Is(err, ErrMalformed) {
						t.Fatalf("cut %d bytes: err %v, want ErrMalformed", cut, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("cut %d bytes: %v", cut, err)
				}
				want := v.want()
				if drop != same {
					switch m := want.(type) {
					case *Request:
						m.Trailer = nil
						if drop == noContent {
							m.Content = nil
						}
					case *Response:
						m.Trailer = nil
						if drop == noContent {
							m.Content = nil
						}
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("cut %d bytes: decoded %+v", cut, got)
				}
				wantTrunc := cut > v.Padding
				if trunc != wantTrunc {
					t.Fatalf("cut %d bytes: Truncated %v, want %v", cut, trunc, wantTrunc)
				}
				_, _, err = decodeVector(&v, b, &Options{Strict: true})
				if wantTrunc != errors.Is(err, ErrTruncated) || (!wantTrunc && err != nil) {
					t.Fatalf("cut %d bytes, strict: err %v", cut, err)
				}
			}
		})
	}
}
