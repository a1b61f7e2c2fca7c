package bhttp

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// build concatenates parts: an int is a varint, a string or []byte is
// copied as it is; lp is a length-prefixed string.
func build(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			b = appendVarint(b, uint64(p))
		case string:
			b = append(b, p...)
		case []byte:
			b = append(b, p...)
		default:
			panic("build: bad part")
		}
	}
	return b
}

func lp(s string) []byte { return appendBytes(nil, s) }

// field is one field line.
func field(n, v string) []byte { return append(lp(n), lp(v)...) }

// kls is a known-length field section of the given field lines.
func kls(lines ...[]byte) []byte {
	body := bytes.Join(lines, nil)
	return append(appendVarint(nil, uint64(len(body))), body...)
}

var (
	ctlReq = build(lp("POST"), lp("https"), lp("example.com"), lp("/v1/chat/completions"))
	// okKnownReq is a complete known-length request with content and trailer.
	okKnownReq = build(0, ctlReq, kls(field("content-type", "application/json")), lp("{}"), kls(field("x-t", "1")))
	// okIndReq is a complete indeterminate-length request, content in two chunks.
	okIndReq = build(2, ctlReq, field("a", "1"), 0, lp("ab"), lp("c"), 0, field("t", "2"), 0)
)

func TestDecodeRefuses(t *testing.T) {
	small := &Options{Limits: Limits{MaxContent: 4, MaxFields: 2, MaxFieldSection: 64, MaxMessage: 200, MaxInformational: 1}}
	cases := []struct {
		name string
		resp bool
		in   []byte
		opts *Options
		want error // nil: must decode
	}{
		{"empty input", false, nil, nil, ErrMalformed},
		{"framing indicator 4", false, build(4), nil, ErrMalformed},
		{"framing indicator as 8-byte varint 2^62-1", false, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil, ErrMalformed},
		{"response given to DecodeRequest", false, build(1, 0x40, 200, 0, 0, 0), nil, ErrMalformed},
		{"request given to DecodeResponse", true, okKnownReq, nil, ErrMalformed},
		{"varint cut after its first byte", false, build(0, []byte{0x40}), nil, ErrMalformed},
		{"4-byte varint cut after 3 bytes", false, build(0, []byte{0x80, 0, 0}), nil, ErrMalformed},
		{"method length beyond the input", false, build(0, []byte{0x10}, "GET"), nil, ErrMalformed},
		{"empty method", false, build(0, lp(""), lp("https"), lp("a"), lp("/"), 0, 0, 0), nil, ErrMalformed},
		{"method not a token", false, build(0, lp("GE T"), lp("https"), lp("a"), lp("/"), 0, 0, 0), nil, ErrMalformed},
		{"path with a space", false, build(0, lp("GET"), lp("https"), lp("a"), lp("/a b"), 0, 0, 0), nil, ErrMalformed},
		{"authority with DEL", false, build(0, lp("GET"), lp("https"), lp("a\x7f"), lp("/"), 0, 0, 0), nil, ErrMalformed},
		{"path with CR LF", false, build(0, lp("GET"), lp("https"), lp("a"), lp("/\r\nx"), 0, 0, 0), nil, ErrMalformed},
		{"control data over MaxFieldSection", false, build(0, lp("GET"), lp("https"), lp("a"), lp("/"+strings.Repeat("a", 64)), 0, 0, 0), small, ErrLimit},
		{"ends after control data (no header section)", false, build(0, ctlReq), nil, ErrMalformed},
		{"header section length 2^62-1", false, build(0, ctlReq, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), nil, ErrLimit},
		{"header section length over MaxFieldSection", false, build(0, ctlReq, 65, strings.Repeat("a", 65)), small, ErrLimit},
		{"header section length beyond the input", false, build(0, ctlReq, 10, field("a", "b")), nil, ErrMalformed},
		{"field value length beyond its known-length section", false, build(0, ctlReq, 4, lp("a"), []byte{5}, "b", 0, 0), nil, ErrMalformed},
		{"empty name in known-length section", false, build(0, ctlReq, kls([]byte{0}, field("a", "b")), 0, 0), nil, ErrMalformed},
		{"more fields than MaxFields", false, build(0, ctlReq, kls(field("a", "1"), field("b", "2"), field("c", "3")), 0, 0), small, ErrLimit},
		{"indeterminate section over MaxFieldSection", false, build(2, ctlReq, field("a", strings.Repeat("v", 30)), field("b", strings.Repeat("v", 30)), 0, 0, 0), small, ErrLimit},
		{"pseudo-field :path", false, build(0, ctlReq, kls(field(":path", "/")), 0, 0), nil, ErrMalformed},
		{"pseudo-field :protocol", false, build(0, ctlReq, kls(field(":protocol", "x")), 0, 0), nil, ErrMalformed},
		{"name with a space", false, build(0, ctlReq, kls(field("bad name", "x")), 0, 0), nil, ErrMalformed},
		{"name with a non-ASCII byte", false, build(0, ctlReq, kls(field("caf\xc3\xa9", "x")), 0, 0), nil, ErrMalformed},
		{"value with NUL", false, build(0, ctlReq, kls(field("a", "x\x00y")), 0, 0), nil, ErrMalformed},
		{"value with CR LF", false, build(0, ctlReq, kls(field("a", "x\r\nevil: 1")), 0, 0), nil, ErrMalformed},
		{"value with LF", false, build(0, ctlReq, kls(field("a", "x\ny")), 0, 0), nil, ErrMalformed},
		{"value with leading space", false, build(0, ctlReq, kls(field("a", " x")), 0, 0), nil, ErrMalformed},
		{"value with trailing tab", false, build(0, ctlReq, kls(field("a", "x\t")), 0, 0), nil, ErrMalformed},
		{"pseudo-field in trailer", false, build(0, ctlReq, 0, 0, kls(field(":status", "200"))), nil, ErrMalformed},
		{"content length beyond the input", false, build(0, ctlReq, 0, 5, "abc"), nil, ErrMalformed},
		{"content length 2^62-1", false, build(0, ctlReq, 0, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), nil, ErrLimit},
		{"content over MaxContent", false, build(0, ctlReq, 0, lp("abcde"), 0), small, ErrLimit},
		{"chunks over MaxContent together", false, build(2, ctlReq, 0, lp("abc"), lp("de"), 0, 0), small, ErrLimit},
		{"indeterminate header without terminator", false, build(2, ctlReq, field("a", "1")), nil, ErrMalformed},
		{"indeterminate content without terminator", false, build(2, ctlReq, 0, lp("abc")), nil, ErrMalformed},
		{"indeterminate chunk cut short", false, build(2, ctlReq, 0, 5, "abc"), nil, ErrMalformed},
		{"indeterminate trailer without terminator", false, build(2, ctlReq, 0, 0, field("t", "1")), nil, ErrMalformed},
		{"known-length trailer cut short", false, build(0, ctlReq, 0, 0, 6, field("t", "1")), nil, ErrMalformed},
		{"trailing garbage after a known-length message", false, build(okKnownReq, 0, 0, 1), nil, ErrMalformed},
		{"trailing garbage after an indeterminate message", false, build(okIndReq, "x"), nil, ErrMalformed},
		{"padding over MaxMessage", false, build(okIndReq, make([]byte, 200)), small, ErrLimit},
		{"varint past MaxMessage", false, build(0, lp("GET"), lp("https"), lp(""), lp("/"), 0, 0, 0), &Options{Limits: Limits{MaxMessage: 3}}, ErrLimit},
		{"content past MaxMessage", false, build(0, ctlReq, 0, lp("0123456789"), 0), &Options{Limits: Limits{MaxMessage: 50, MaxContent: 100}}, ErrLimit},
		{"final status 99", true, build(1, 99, 0, 0, 0), nil, ErrMalformed},
		{"final status 600", true, build(1, 600, 0, 0, 0), nil, ErrMalformed},
		{"final status 0", true, build(3, 0, 0, 0, 0), nil, ErrMalformed},
		{"only an informational response", true, build(1, 103, 0), nil, ErrMalformed},
		{"informational responses over MaxInformational", true, build(1, 100, 0, 102, 0, 200, 0, 0, 0), small, ErrLimit},
		{"informational header without terminator", true, build(3, 103, field("link", "<a>")), nil, ErrMalformed},

		{"complete known-length request", false, okKnownReq, nil, nil},
		{"complete indeterminate-length request", false, okIndReq, nil, nil},
		{"non-minimal framing indicator (RFC 9292 §3)", false, build([]byte{0x40, 0x00}, ctlReq, 0, 0, 0), nil, nil},
		{"8-byte status (RFC 9000 §16 lengths)", true, build(1, []byte{0xc0, 0, 0, 0, 0, 0, 0, 200}, 0, 0, 0), nil, nil},
		{"non-minimal lengths everywhere", false, build(0, []byte{0x40, 3}, "GET", []byte{0x80, 0, 0, 5}, "https", []byte{0x40, 0}, []byte{0x40, 1}, "/",
			[]byte{0x40, 5}, []byte{0x40, 1}, "a", []byte{0x40, 0}, []byte{0x40, 0}, []byte{0x40, 0}), nil, nil},
		{"tab inside a value", false, build(0, ctlReq, kls(field("a", "x\ty")), 0, 0), nil, nil},
		{"obs-text in a value", false, build(0, ctlReq, kls(field("a", "caf\xc3\xa9")), 0, 0), nil, nil},
		{"empty value", false, build(0, ctlReq, kls(field("a", "")), 0, 0), nil, nil},
		{"informational responses at MaxInformational", true, build(1, 100, 0, 200, 0, 0, 0), small, nil},
		{"content at MaxContent", false, build(2, ctlReq, 0, lp("ab"), lp("cd"), 0, 0), small, nil},
	}
	// limitOf names the limit that each ErrLimit case must name.
	limitOf := map[string]string{
		"control data over MaxFieldSection":             "Limits.MaxFieldSection",
		"header section length 2^62-1":                  "Limits.MaxFieldSection",
		"header section length over MaxFieldSection":    "Limits.MaxFieldSection",
		"more fields than MaxFields":                    "Limits.MaxFields",
		"indeterminate section over MaxFieldSection":    "Limits.MaxFieldSection",
		"content length 2^62-1":                         "Limits.MaxContent",
		"content over MaxContent":                       "Limits.MaxContent",
		"chunks over MaxContent together":               "Limits.MaxContent",
		"varint past MaxMessage":                        "Limits.MaxMessage",
		"content past MaxMessage":                       "Limits.MaxMessage",
		"padding over MaxMessage":                       "Limits.MaxMessage",
		"informational responses over MaxInformational": "Limits.MaxInformational",
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.resp {
				_, err = DecodeResponse(c.in, c.opts)
			} else {
				_, err = DecodeRequest(c.in, c.opts)
			}
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.want == ErrLimit && (limitOf[c.name] == "" || !strings.Contains(err.Error(), limitOf[c.name])) {
				t.Fatalf("err = %v, want it to name %q", err, limitOf[c.name])
			}
			if strings.Contains(c.name, "given to") {
				return // the stream reader takes either kind
			}
			// The stream reader refuses it in the same way.
			r, err := NewReader(struct{ *bytes.Reader }{bytes.NewReader(c.in)}, c.opts)
			if err == nil {
				_, err = readAll(r)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("stream: err = %v, want %v", err, c.want)
			}
		})
	}
}

// readAll reads the content and trailer of r.
func readAll(r *Reader) ([]byte, error) {
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return nil, err
	}
	_, err := r.Trailer()
	return b.Bytes(), err
}

func TestDecodeLowerCasesNames(t *testing.T) {
	r, err := DecodeRequest(build(0, ctlReq, kls(field("Content-Type", "text/plain")), 0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header[0].Name != "content-type" {
		t.Fatalf("name %q, want content-type", r.Header[0].Name)
	}
}

// TestDecodeMutations changes each byte of each example to a few values:
// nothing panics, and what decodes survives an encode and decode round
// trip.
func TestDecodeMutations(t *testing.T) {
	for _, v := range loadVectors(t) {
		for i := range v.raw {
			for _, x := range []byte{0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff, v.raw[i] ^ 0x20} {
				b := bytes.Clone(v.raw)
				b[i] = x
				checkRoundTrip(t, b, v.Kind == "response")
			}
		}
	}
}

// checkRoundTrip decodes b; if it decodes, encoding and decoding again
// gives the same message.
func checkRoundTrip(t *testing.T, b []byte, response bool) {
	t.Helper()
	if response {
		m, err := DecodeResponse(b, nil)
		if err != nil {
			return
		}
		m.Truncated = false
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("%x: decoded but does not encode: %v", b, err)
		}
		m2, err := DecodeResponse(enc, &Options{Strict: true})
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("%x: round trip: %v\n%+v\n%+v", b, err, m, m2)
		}
		return
	}
	m, err := DecodeRequest(b, nil)
	if err != nil {
		return
	}
	m.Truncated = false
	enc, err := m.Encode()
	if err != nil {
		t.Fatalf("%x: decoded but does not encode: %v", b, err)
	}
	m2, err := DecodeRequest(enc, &Options{Strict: true})
	if err != nil || !reflect.DeepEqual(m, m2) {
		t.Fatalf("%x: round trip: %v\n%+v\n%+v", b, err, m, m2)
	}
}

func TestEncodeRefuses(t *testing.T) {
	good := func() *Request {
		return &Request{Method: "GET", Scheme: "https", Authority: "a", Path: "/", Header: Fields{{"a", "b"}}}
	}
	reqs := map[string]func(*Request){
		"method not a token":  func(r *Request) { r.Method = "G T" },
		"empty method":        func(r *Request) { r.Method = "" },
		"path with CR":        func(r *Request) { r.Path = "/\r" },
		"pseudo-field name":   func(r *Request) { r.Header = Fields{{":method", "GET"}} },
		"empty name":          func(r *Request) { r.Header = Fields{{"", "x"}} },
		"value with LF":       func(r *Request) { r.Trailer = Fields{{"a", "x\ny"}} },
		"unknown framing":     func(r *Request) { r.Framing = 7 },
		"name with a colon":   func(r *Request) { r.Header = Fields{{"a:b", "x"}} },
		"value with NUL byte": func(r *Request) { r.Header = Fields{{"a", "\x00"}} },
	}
	if _, err := good().Encode(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range reqs {
		r := good()
		mod(r)
		if _, err := r.Encode(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	resps := map[string]*Response{
		"final status 199":         {Status: 199},
		"final status 600":         {Status: 600},
		"informational status 200": {Status: 200, Informational: []InfoResponse{{Status: 200}}},
		"informational status 99":  {Status: 200, Informational: []InfoResponse{{Status: 99}}},
		"bad informational field":  {Status: 200, Informational: []InfoResponse{{Status: 103, Header: Fields{{"a b", "c"}}}}},
	}
	for name, r := range resps {
		if _, err := r.Encode(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestEncodeLowerCasesNames(t *testing.T) {
	r := &Request{Method: "GET", Scheme: "https", Path: "/", Header: Fields{{"X-Upper", "v"}}}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("x-upper")) || bytes.Contains(b, []byte("X-Upper")) {
		t.Fatalf("encoding %q does not lower-case the name", b)
	}
}
