package bhttp

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// TestHTTPRequestRoundTrip sends a converted request with a trailer over a
// real HTTP server and converts it back on the server side.
func TestHTTPRequestRoundTrip(t *testing.T) {
	got := make(chan *Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		br, err := FromHTTPRequest(r)
		if err != nil {
			t.Error(err)
		}
		got <- br
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	in := &Request{
		Method: "POST", Scheme: "http", Authority: host, Path: "/v1/chat/completions?stream=true",
		Header:  Fields{{"content-type", "application/json"}, {"x-multi", "a"}, {"x-multi", "b"}},
		Content: []byte(`{"model":"m"}`),
		Trailer: Fields{{"x-digest", "sha-256=:abc:"}},
	}
	hr, err := in.HTTPRequest()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := <-got
	if out.Method != in.Method || out.Scheme != "http" || out.Authority != host || out.Path != in.Path {
		t.Fatalf("control data %+v", out)
	}
	if !bytes.Equal(out.Content, in.Content) {
		t.Fatalf("content %q", out.Content)
	}
	if out.Header.Get("content-type") != "application/json" || len(multi(out.Header, "x-multi")) != 2 {
		t.Fatalf("header %v", out.Header)
	}
	if out.Header.Get("host") != "" || out.Header.Get("transfer-encoding") != "" {
		t.Fatalf("host or hop-by-hop field kept: %v", out.Header)
	}
	if !reflect.DeepEqual(out.Trailer, in.Trailer) {
		t.Fatalf("trailer %v, want %v", out.Trailer, in.Trailer)
	}
	if _, err := out.Encode(); err != nil {
		t.Fatal(err)
	}
}

func multi(f Fields, name string) []string {
	var v []string
	for _, fl := range f {
		if fl.Name == name {
			v = append(v, fl.Value)
		}
	}
	return v
}

// TestHTTPResponseRoundTrip converts a server's response with a trailer.
func TestHTTPResponseRoundTrip(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Usage")
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Connection", "close")
		w.WriteHeader(201)
		io.WriteString(w, "data: hi\n\n")
		w.Header().Set("X-Usage", "tokens=1")
	}))
	defer srv.Close()
	hresp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := FromHTTPResponse(hresp)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || string(resp.Content) != "data: hi\n\n" || resp.Header.Get("content-type") != "text/event-stream" {
		t.Fatalf("converted %+v", resp)
	}
	if resp.Header.Get("connection") != "" {
		t.Fatalf("connection field kept: %v", resp.Header)
	}
	if resp.Trailer.Get("x-usage") != "tokens=1" {
		t.Fatalf("trailer %v", resp.Trailer)
	}
	enc, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeResponse(enc, &Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	back := dec.HTTPResponse()
	body, _ := io.ReadAll(back.Body)
	if back.StatusCode != 201 || back.Status != "201 Created" || string(body) != "data: hi\n\n" ||
		back.Header.Get("Content-Type") != "text/event-stream" || back.Trailer.Get("X-Usage") != "tokens=1" {
		t.Fatalf("back to net/http: %+v", back)
	}
}

func TestHTTPConversionsRefuse(t *testing.T) {
	r := httptest.NewRequest("GET", "https://a.example/", nil)
	r.Header["Bad Name"] = []string{"x"}
	if _, err := FromHTTPRequest(r); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad header name: %v", err)
	}
	r = httptest.NewRequest("POST", "https://a.example/", io.LimitReader(zeros{}, DefaultLimits().MaxContent+1))
	if _, err := FromHTTPRequest(r); !errors.Is(err, ErrLimit) {
		t.Errorf("body over MaxContent: %v", err)
	}
	if _, err := FromHTTPResponse(&http.Response{StatusCode: 103, Body: http.NoBody}); err == nil {
		t.Error("status 103 as a final response accepted")
	}
	if _, err := (&Request{Method: "GET", Scheme: "https", Path: "/"}).HTTPRequest(); err == nil {
		t.Error("request with no authority and no Host field accepted")
	}
	if _, err := (&Request{Method: "GET", Scheme: "https", Authority: "a", Path: "no-slash"}).HTTPRequest(); err == nil {
		t.Error("relative path accepted")
	}
	hr, err := (&Request{Method: "GET", Scheme: "https", Path: "/x", Header: Fields{{"host", "h.example"}}}).HTTPRequest()
	if err != nil || hr.Host != "h.example" || hr.URL.String() != "https://h.example/x" || hr.Header.Get("Host") != "" {
		t.Errorf("Host field as authority: %v, %v", hr, err)
	}
}

func TestFromHTTPRequestScheme(t *testing.T) {
	r := httptest.NewRequest("GET", "/p?q=1", nil) // server-side: no scheme in the URL, TLS nil
	r.Host = "a.example"
	br, err := FromHTTPRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if br.Scheme != "http" || br.Authority != "a.example" || br.Path != "/p?q=1" {
		t.Fatalf("%+v", br)
	}
}

func TestFieldsHeader(t *testing.T) {
	h := http.Header{"B": {"2"}, "A": {"1", "3"}, "Connection": {"x-hop"}, "X-Hop": {"v"}}
	f := FromHeader(h)
	want := Fields{{"a", "1"}, {"a", "3"}, {"b", "2"}, {"connection", "x-hop"}, {"x-hop", "v"}}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("FromHeader = %v", f)
	}
	if got := withoutHopByHop(f); !reflect.DeepEqual(got, want[:3]) {
		t.Fatalf("withoutHopByHop = %v", got)
	}
	if !reflect.DeepEqual(f.Header(), h) {
		t.Fatalf("Header = %v", f.Header())
	}
	if Fields(nil).Header() != nil {
		t.Fatal("empty Fields gives a non-nil Header")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
