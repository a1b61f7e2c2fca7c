package bhttp

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// calls records each Write call.
type calls struct{ w [][]byte }

func (c *calls) Write(p []byte) (int, error) {
	c.w = append(c.w, bytes.Clone(p))
	return len(p), nil
}

func (c *calls) all() []byte { return bytes.Join(c.w, nil) }

func TestStreamWriterResponse(t *testing.T) {
	var c calls
	head := &Response{
		Informational: []InfoResponse{{Status: 103, Header: Fields{{"link", "</a>"}}}},
		Status:        200,
		Header:        Fields{{"content-type", "text/event-stream"}},
	}
	sw, err := NewResponseWriter(&c, head, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"data: Hel", "", "data: lo", "[DONE]"} {
		if n, err := sw.Write([]byte(tok)); err != nil || n != len(tok) {
			t.Fatalf("Write(%q) = %d, %v", tok, n, err)
		}
	}
	if err := sw.Finish(Fields{{"x-usage", "tokens=3"}}); err != nil {
		t.Fatal(err)
	}
	// One Write for the head, one per non-empty chunk, one for the end.
	if len(c.w) != 5 {
		t.Fatalf("%d writes, want 5", len(c.w))
	}
	if want := build(len("data: lo"), "data: lo"); !bytes.Equal(c.w[2], want) {
		t.Fatalf("chunk write %x, want %x", c.w[2], want)
	}
	got, err := DecodeResponse(c.all(), &Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	want := *head
	want.Framing = IndeterminateLength
	want.Content = []byte("data: Heldata: lo[DONE]")
	want.Trailer = Fields{{"x-usage", "tokens=3"}}
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("decoded %+v\nwant %+v", got, &want)
	}
	if err := sw.Close(); err != nil {
		t.Fatalf("Close after Finish: %v", err)
	}
	if _, err := sw.Write([]byte("x")); err == nil {
		t.Fatal("Write after Finish succeeded")
	}
	if err := sw.Finish(nil); err == nil {
		t.Fatal("second Finish succeeded")
	}
}

func TestStreamWriterRequest(t *testing.T) {
	var c calls
	sw, err := NewRequestWriter(&c, &Request{Method: "POST", Scheme: "https", Authority: "node", Path: "/v1/completions"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Write([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRequest(c.all(), &Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Framing != IndeterminateLength || string(r.Content) != "{}" || r.Path != "/v1/completions" {
		t.Fatalf("decoded %+v", r)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after == 0 {
		return 0, errors.New("pipe closed")
	}
	f.after--
	return len(p), nil
}

func TestStreamWriterRefuses(t *testing.T) {
	head := &Response{Status: 200}
	if _, err := NewResponseWriter(io.Discard, &Response{Status: 200, Content: []byte("x")}, nil); err == nil {
		t.Error("head with content accepted")
	}
	if _, err := NewRequestWriter(io.Discard, &Request{Method: "GET", Scheme: "https", Path: "/", Trailer: Fields{{"a", "b"}}}, nil); err == nil {
		t.Error("head with trailer accepted")
	}
	if _, err := NewResponseWriter(io.Discard, &Response{Status: 100}, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("status 100 as final: %v", err)
	}
	sw, _ := NewResponseWriter(io.Discard, head, &Options{Limits: Limits{MaxContent: 5}})
	if _, err := sw.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Write([]byte("def")); !errors.Is(err, ErrLimit) {
		t.Errorf("content over MaxContent: %v", err)
	}
	if err := sw.Finish(Fields{{"bad name", "x"}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad trailer: %v", err)
	}
	if err := sw.Finish(Fields{{"a", "1"}, {"b", "2"}}); err != nil {
		t.Errorf("Finish after a refused trailer: %v", err)
	}
	sw, _ = NewResponseWriter(io.Discard, head, &Options{Limits: Limits{MaxFields: 1}})
	if err := sw.Finish(Fields{{"a", "1"}, {"b", "2"}}); !errors.Is(err, ErrLimit) {
		t.Errorf("trailer over MaxFields: %v", err)
	}
	sw, _ = NewResponseWriter(io.Discard, head, &Options{Limits: Limits{MaxMessage: 10}})
	if _, err := sw.Write(make([]byte, 8)); !errors.Is(err, ErrLimit) {
		t.Errorf("message over MaxMessage: %v", err)
	}
	sw, err := NewResponseWriter(&failWriter{after: 1}, head, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Write([]byte("x")); err == nil {
		t.Fatal("write error not reported")
	}
	if err := sw.Finish(nil); err == nil {
		t.Fatal("error is not sticky")
	}
}

// TestReaderStreams reads each chunk while the writer is still producing.
func TestReaderStreams(t *testing.T) {
	pr, pw := io.Pipe()
	next := make(chan bool)
	go func() {
		sw, err := NewResponseWriter(pw, &Response{Status: 200}, nil)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		for _, tok := range []string{"one", "two"} {
			sw.Write([]byte(tok))
			if !<-next {
				pw.Close()
				return
			}
		}
		sw.Finish(Fields{{"x-done", "1"}})
		pw.Close()
	}()
	r, err := NewReader(pr, &Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Response() == nil || r.Response().Status != 200 || r.Request() != nil || r.Framing() != IndeterminateLength {
		t.Fatalf("head %+v", r.Response())
	}
	buf := make([]byte, 16)
	for _, want := range []string{"one", "two"} {
		n, err := r.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("Read = %q, %v; want %q", buf[:n], err, want)
		}
		if _, err := r.Trailer(); err == nil {
			t.Fatal("Trailer before the end of the content succeeded")
		}
		next <- true
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at end = %d, %v", n, err)
	}
	tr, err := r.Trailer()
	if err != nil || tr.Get("X-Done") != "1" || r.Truncated() {
		t.Fatalf("Trailer = %v, %v (truncated %v)", tr, err, r.Truncated())
	}
}

// TestReaderCutStream: a stream that ends between chunks is malformed; one
// that ends after the header section is truncated, which Strict refuses.
func TestReaderCutStream(t *testing.T) {
	var c calls
	sw, _ := NewResponseWriter(&c, &Response{Status: 200}, nil)
	sw.Write([]byte("partial answer"))
	cutMid := c.all()
	cutHead := c.w[0]

	r, err := NewReader(iotest.OneByteReader(bytes.NewReader(cutMid)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, ErrMalformed) {
		t.Fatalf("cut between chunks: %v, want ErrMalformed", err)
	}

	r, err = NewReader(iotest.OneByteReader(bytes.NewReader(cutHead)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
		t.Fatalf("cut after header, lenient: %q, %v", b, err)
	}
	if _, err := r.Trailer(); err != nil || !r.Truncated() {
		t.Fatalf("cut after header, lenient: Trailer %v, Truncated %v", err, r.Truncated())
	}

	r, err = NewReader(iotest.OneByteReader(bytes.NewReader(cutHead)), &Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut after header, strict: %v, want ErrTruncated", err)
	}
}

// TestReaderSlowSource decodes every example one byte per Read.
func TestReaderSlowSource(t *testing.T) {
	for _, v := range loadVectors(t) {
		r, err := NewReader(iotest.OneByteReader(bytes.NewReader(v.raw)), nil)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		content, err := readAll(r)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if string(content) != v.Content {
			t.Fatalf("%s: content %q", v.Name, content)
		}
	}
}
