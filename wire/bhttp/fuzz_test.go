package bhttp

import (
	"bytes"
	"io"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.raw)
	}
	f.Add(okKnownReq)
	f.Add(okIndReq)
}

// FuzzDecodeRequest: any input decodes or fails without panicking; what
// decodes encodes, and decodes again to the same request.
func FuzzDecodeRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { checkRoundTrip(t, b, false) })
}

// FuzzDecodeResponse is FuzzDecodeRequest for responses.
func FuzzDecodeResponse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { checkRoundTrip(t, b, true) })
}

// FuzzReader: the stream reader agrees with the slice decoders.
func FuzzReader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(struct{ io.Reader }{bytes.NewReader(b)}, nil)
		if err != nil {
			_, qerr := DecodeRequest(b, nil)
			_, serr := DecodeResponse(b, nil)
			if qerr == nil || serr == nil {
				t.Fatalf("%x: stream head refused (%v), a slice decoder accepts", b, err)
			}
			return
		}
		content, err := readAll(r)
		trailer, _ := r.Trailer()
		var want []byte
		var wantTrailer Fields
		var werr error
		if r.Response() != nil {
			var m *Response
			if m, werr = DecodeResponse(b, nil); werr == nil {
				want, wantTrailer = m.Content, m.Trailer
			}
		} else {
			var m *Request
			if m, werr = DecodeRequest(b, nil); werr == nil {
				want, wantTrailer = m.Content, m.Trailer
			}
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("%x: stream err %v, slice err %v", b, err, werr)
		}
		if err == nil && (!bytes.Equal(content, want) || !reflect.DeepEqual(trailer, wantTrailer)) {
			t.Fatalf("%x: stream and slice decoders disagree", b)
		}
	})
}
