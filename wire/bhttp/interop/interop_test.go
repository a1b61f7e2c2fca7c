// Package interop checks that wire/bhttp and github.com/openpcc/bhttp read
// each other's messages, both framings, both directions.
package interop

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	obhttp "github.com/openpcc/bhttp"
	"github.com/sworn-dev/sworn/wire/bhttp"
)

var framings = []bhttp.Framing{bhttp.KnownLength, bhttp.IndeterminateLength}

const body = `{"model":"m","messages":[{"role":"user","content":"hello"}]}`

// TestOursToTheirsRequest: openpcc decodes requests we encode.
func TestOursToTheirsRequest(t *testing.T) {
	for _, f := range framings {
		t.Run(f.String(), func(t *testing.T) {
			req := &bhttp.Request{
				Framing: f, Method: "POST", Scheme: "https", Authority: "node.example", Path: "/v1/chat/completions?x=1",
				Header:  bhttp.Fields{{Name: "content-type", Value: "application/json"}, {Name: "x-multi", Value: "a"}, {Name: "x-multi", Value: "b"}},
				Content: []byte(body),
			}
			enc, err := req.Encode()
			if err != nil {
				t.Fatal(err)
			}
			enc = append(enc, make([]byte, 7)...) // padding
			var d obhttp.RequestDecoder
			hr, err := d.DecodeRequest(context.Background(), bytes.NewReader(enc))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(hr.Body)
			if err != nil {
				t.Fatal(err)
			}
			if hr.Method != "POST" || hr.Host != "node.example" || hr.URL.RequestURI() != "/v1/chat/completions?x=1" || string(got) != body {
				t.Fatalf("openpcc decoded %s %s %s %q", hr.Method, hr.Host, hr.URL, got)
			}
			if hr.Header.Get("Content-Type") != "application/json" || len(hr.Header.Values("X-Multi")) != 2 {
				t.Fatalf("openpcc decoded header %v", hr.Header)
			}
		})
	}
}

// TestTheirsToOursRequest: we decode requests openpcc encodes, chunked
// small and padded.
func TestTheirsToOursRequest(t *testing.T) {
	encs := map[string]*obhttp.RequestEncoder{"known-length": obhttp.NewKnownLengthRequestEncoder(), "indeterminate-length": obhttp.NewIndeterminateLengthRequestEncoder()}
	for name, e := range encs {
		t.Run(name, func(t *testing.T) {
			e.MaxEncodedChunkLen = 8
			e.PadToMultipleOf = 64
			hr, err := http.NewRequest("POST", "https://node.example/v1/chat/completions", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Add("X-Multi", "a")
			hr.Header.Add("X-Multi", "b")
			msg, err := e.EncodeRequest(hr)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := io.ReadAll(msg)
			if err != nil {
				t.Fatal(err)
			}
			req, err := bhttp.DecodeRequest(enc, nil)
			if err != nil {
				t.Fatalf("%v\n%x", err, enc)
			}
			if req.Framing.String() != name || req.Method != "POST" || req.Scheme != "https" || req.Path != "/v1/chat/completions" || string(req.Content) != body {
				t.Fatalf("decoded %+v", req)
			}
			if req.Authority != "node.example" && req.Header.Get("host") != "node.example" {
				t.Fatalf("no authority: %+v", req)
			}
			if req.Header.Get("content-type") != "application/json" || len(req.Header.Header().Values("X-Multi")) != 2 {
				t.Fatalf("decoded header %v", req.Header)
			}
		})
	}
}

// TestOursToTheirsResponse: openpcc decodes responses we encode, and the
// stream our StreamWriter writes.
func TestOursToTheirsResponse(t *testing.T) {
	for _, f := range framings {
		t.Run(f.String(), func(t *testing.T) {
			resp := &bhttp.Response{
				Framing:       f,
				Informational: []bhttp.InfoResponse{{Status: 103, Header: bhttp.Fields{{Name: "link", Value: "</a>"}}}},
				Status:        200, Header: bhttp.Fields{{Name: "content-type", Value: "text/event-stream"}, {Name: "trailer", Value: "x-usage"}},
				Content: []byte("data: hi\n\n"), Trailer: bhttp.Fields{{Name: "x-usage", Value: "tokens=2"}},
			}
			enc, err := resp.Encode()
			if err != nil {
				t.Fatal(err)
			}
			checkTheirResponse(t, enc)
		})
	}
	t.Run("stream", func(t *testing.T) {
		var buf bytes.Buffer
		sw, err := bhttp.NewResponseWriter(&buf, &bhttp.Response{Status: 200, Header: bhttp.Fields{{Name: "content-type", Value: "text/event-stream"}, {Name: "trailer", Value: "x-usage"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{"data: ", "hi", "\n\n"} {
			if _, err := sw.Write([]byte(tok)); err != nil {
				t.Fatal(err)
			}
		}
		if err := sw.Finish(bhttp.Fields{{Name: "x-usage", Value: "tokens=2"}}); err != nil {
			t.Fatal(err)
		}
		checkTheirResponse(t, buf.Bytes())
	})
}

func checkTheirResponse(t *testing.T, enc []byte) {
	t.Helper()
	var d obhttp.ResponseDecoder
	hr, err := d.DecodeResponse(context.Background(), bytes.NewReader(enc))
	if err != nil {
		t.Fatalf("%v\n%x", err, enc)
	}
	got, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatal(err)
	}
	if hr.StatusCode != 200 || string(got) != "data: hi\n\n" || hr.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("openpcc decoded %d %v %q", hr.StatusCode, hr.Header, got)
	}
	if hr.Trailer.Get("X-Usage") != "tokens=2" {
		t.Fatalf("openpcc decoded trailer %v", hr.Trailer)
	}
}

// TestTheirsToOursResponse: we decode responses openpcc encodes.
func TestTheirsToOursResponse(t *testing.T) {
	encs := map[string]*obhttp.ResponseEncoder{"known-length": obhttp.NewKnownLengthResponseEncoder(), "indeterminate-length": obhttp.NewIndeterminateLengthResponseEncoder()}
	for name, e := range encs {
		t.Run(name, func(t *testing.T) {
			e.MaxEncodedChunkLen = 4
			e.PadToMultipleOf = 32
			hr := &http.Response{
				StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header:        http.Header{"Content-Type": {"text/event-stream"}},
				Body:          io.NopCloser(strings.NewReader("data: hi\n\n")),
				ContentLength: -1,
			}
			if name == "known-length" {
				hr.ContentLength = 10
			}
			msg, err := e.EncodeResponse(hr)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := io.ReadAll(msg)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := bhttp.DecodeResponse(enc, nil)
			if err != nil {
				t.Fatalf("%v\n%x", err, enc)
			}
			if resp.Framing.String() != name || resp.Status != 200 || string(resp.Content) != "data: hi\n\n" || resp.Header.Get("content-type") != "text/event-stream" {
				t.Fatalf("decoded %+v", resp)
			}
		})
	}
}
