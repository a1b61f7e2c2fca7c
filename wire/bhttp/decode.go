package bhttp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// DecodeRequest decodes a whole binary request of either framing. b must
// hold the message and nothing but zero padding after it. opts may be nil.
func DecodeRequest(b []byte, opts *Options) (*Request, error) {
	r, err := newReader(bytes.NewReader(b), int64(len(b)), opts, kindRequest)
	if err != nil {
		return nil, err
	}
	req := r.req
	if req.Content, req.Trailer, err = r.rest(); err != nil {
		return nil, err
	}
	req.Truncated = r.truncated
	return req, nil
}

// DecodeResponse decodes a whole binary response of either framing. b must
// hold the message and nothing but zero padding after it. opts may be nil.
func DecodeResponse(b []byte, opts *Options) (*Response, error) {
	r, err := newReader(bytes.NewReader(b), int64(len(b)), opts, kindResponse)
	if err != nil {
		return nil, err
	}
	resp := r.resp
	if resp.Content, resp.Trailer, err = r.rest(); err != nil {
		return nil, err
	}
	resp.Truncated = r.truncated
	return resp, nil
}

// Reader decodes one binary message of either kind and framing from a
// stream: NewReader reads the head, Read returns the content as it arrives,
// and Trailer returns the trailer section once the content is read. The
// stream must hold only this message: after the trailer section the Reader
// reads it to its end and refuses anything but zero padding. Every size is
// checked against the [Limits] before anything is allocated for it. It is
// not safe for concurrent use.
type Reader struct {
	s         src
	lim       Limits
	strict    bool
	framing   Framing
	req       *Request
	resp      *Response
	state     int
	remain    uint64 // bytes left in the known-length content or the current chunk
	content   int64  // content bytes so far
	trailer   Fields
	truncated bool
	scratch   []byte
	err       error
}

// Reader states.
const (
	stContent  = iota // before the content length or the first chunk length
	stBody            // inside the content or a chunk; remain bytes left
	stChunkLen        // after a chunk, before the next chunk length
	stTrailer         // content read, trailer section not yet
	stDone            // trailer section and padding read
)

// byteSource is what a Reader reads from.
type byteSource interface {
	io.Reader
	io.ByteScanner
}

// NewReader reads the head of a message from r: the framing indicator, the
// control data (and informational responses) and the header section. It
// buffers r unless r is an io.ByteScanner. opts may be nil.
func NewReader(r io.Reader, opts *Options) (*Reader, error) {
	bs, ok := r.(byteSource)
	if !ok {
		bs = bufio.NewReader(r)
	}
	return newReader(bs, -1, opts, kindAny)
}

// Kinds of message a reader accepts.
const (
	kindAny = iota
	kindRequest
	kindResponse
)

// newReader reads the head from bs of a message of the given kind; size is
// the length of bs when known, else -1.
func newReader(bs byteSource, size int64, opts *Options, kind int) (*Reader, error) {
	lim := opts.limits()
	r := &Reader{s: src{r: bs, max: lim.MaxMessage, size: size}, lim: lim, strict: opts.strict()}
	if err := r.head(kind); err != nil {
		return nil, fmt.Errorf("bhttp: decode: %w (at byte %d)", err, r.s.n)
	}
	return r, nil
}

// Framing returns the framing of the message.
func (r *Reader) Framing() Framing { return r.framing }

// Request returns the head of the message (control data and header
// section) if it is a request, else nil. Its Content and Trailer are empty.
func (r *Reader) Request() *Request { return r.req }

// Response returns the head of the message (informational responses,
// status and header section) if it is a response, else nil. Its Content
// and Trailer are empty.
func (r *Reader) Response() *Response { return r.resp }

// Truncated reports whether the message omitted its empty trailing
// sections (RFC 9292 §3.8). It is final once Trailer returned without
// error.
func (r *Reader) Truncated() bool { return r.truncated }

// Read reads content. It returns io.EOF at the end of the content, and an
// error wrapping [ErrMalformed] if the stream ends inside the content (for
// indeterminate-length content: before the content terminator).
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.read(p)
	if err != nil && err != io.EOF {
		r.err = fmt.Errorf("bhttp: decode: content: %w (at byte %d)", eofIsMalformed(err), r.s.n)
		return n, r.err
	}
	return n, err
}

func (r *Reader) read(p []byte) (int, error) {
	for {
		switch r.state {
		case stContent:
			eof, err := r.s.atEOF()
			if err != nil {
				return 0, err
			}
			if eof {
				return 0, r.truncate("header section")
			}
			l, err := r.s.varint()
			if err != nil {
				return 0, err
			}
			if l == 0 {
				r.state = stTrailer
				continue
			}
			if err := r.startBody(l); err != nil {
				return 0, err
			}
		case stChunkLen:
			l, err := r.s.varint()
			if err == io.EOF {
				return 0, fmt.Errorf("%w: the stream ends after %d bytes of content without the content terminator", ErrMalformed, r.content)
			}
			if err != nil {
				return 0, err
			}
			if l == 0 {
				r.state = stTrailer
				continue
			}
			if err := r.startBody(l); err != nil {
				return 0, err
			}
		case stBody:
			if len(p) == 0 {
				return 0, nil
			}
			k := len(p)
			if uint64(k) > r.remain {
				k = int(r.remain)
			}
			n, err := r.s.r.Read(p[:k])
			r.s.n += int64(n)
			r.remain -= uint64(n)
			if r.remain == 0 {
				r.state = stChunkLen
				if r.framing == KnownLength {
					r.state = stTrailer
				}
			}
			if n > 0 {
				return n, nil
			}
			if err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			if err != nil {
				return 0, err
			}
		default:
			return 0, io.EOF
		}
	}
}

// startBody starts known-length content or a chunk of l bytes.
func (r *Reader) startBody(l uint64) error {
	if l > uint64(r.lim.MaxContent-r.content) {
		return fmt.Errorf("%w: content of more than %d bytes (Limits.MaxContent)", ErrLimit, r.lim.MaxContent)
	}
	if err := r.s.need(l, "content"); err != nil {
		return err
	}
	r.content += int64(l)
	r.remain = l
	r.state = stBody
	return nil
}

// truncate records that the message ended after section what, which §3.8
// allows; Strict refuses it.
func (r *Reader) truncate(what string) error {
	r.truncated = true
	r.state = stDone
	if r.strict {
		return fmt.Errorf("%w: it ends after its %s (Options.Strict wants every section)", ErrTruncated, what)
	}
	return io.EOF
}

// Trailer returns the trailer section, after Read returned io.EOF, and
// checks that only zero padding follows it.
func (r *Reader) Trailer() (Fields, error) {
	if r.err != nil {
		return nil, r.err
	}
	switch r.state {
	case stDone:
		return r.trailer, nil
	case stTrailer:
	default:
		return nil, errors.New("bhttp: Trailer called before the content was read to io.EOF")
	}
	if err := r.readTrailer(); err != nil {
		r.err = fmt.Errorf("bhttp: decode: %w (at byte %d)", eofIsMalformed(err), r.s.n)
		return nil, r.err
	}
	return r.trailer, nil
}

func (r *Reader) readTrailer() error {
	eof, err := r.s.atEOF()
	if err != nil {
		return err
	}
	if eof {
		if err := r.truncate("content"); err != io.EOF {
			return err
		}
		return nil
	}
	if r.trailer, err = r.section("trailer section"); err != nil {
		return err
	}
	if err := r.s.padding(); err != nil {
		return err
	}
	r.state = stDone
	return nil
}

// rest reads the content and the trailer section of a message decoded from
// a slice, whose size bounds every allocation.
func (r *Reader) rest() ([]byte, Fields, error) {
	var b []byte
	for {
		if r.state == stBody && uint64(cap(b)-len(b)) < r.remain {
			b = slices.Grow(b, int(r.remain))
		}
		if len(b) == cap(b) {
			b = slices.Grow(b, 64)
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
	}
	t, err := r.Trailer()
	if err != nil {
		return nil, nil, err
	}
	if len(b) == 0 {
		b = nil
	}
	return b, t, nil
}

// head reads the framing indicator, control data and header section.
func (r *Reader) head(kind int) error {
	ind, err := r.s.varint()
	if err != nil {
		return eofIsMalformed(err, "framing indicator")
	}
	if ind > 3 {
		return fmt.Errorf("%w: framing indicator %d, want 0 to 3 (RFC 9292 §3.3)", ErrMalformed, ind)
	}
	r.framing = KnownLength
	if ind >= 2 {
		r.framing = IndeterminateLength
	}
	switch {
	case kind == kindRequest && ind%2 == 1:
		return fmt.Errorf("%w: framing indicator %d is a response, want a request (0 or 2)", ErrMalformed, ind)
	case kind == kindResponse && ind%2 == 0:
		return fmt.Errorf("%w: framing indicator %d is a request, want a response (1 or 3)", ErrMalformed, ind)
	case ind%2 == 0:
		return r.requestHead()
	}
	return r.responseHead()
}

func (r *Reader) requestHead() error {
	var cd [4]string
	start := r.s.n
	for i, what := range [...]string{"method", "scheme", "authority", "path"} {
		l, err := r.s.varint()
		if err != nil {
			return eofIsMalformed(err, "request control data: "+what)
		}
		b, err := r.fieldBytes(&r.s, l, start, "request control data")
		if err != nil {
			return fmt.Errorf("request control data: %s: %w", what, eofIsMalformed(err))
		}
		cd[i] = string(b)
	}
	if err := validRequestControl(cd[0], cd[1], cd[2], cd[3]); err != nil {
		return fmt.Errorf("request control data: %w", err)
	}
	h, err := r.section("header section")
	if err != nil {
		return err
	}
	r.req = &Request{Framing: r.framing, Method: cd[0], Scheme: cd[1], Authority: cd[2], Path: cd[3], Header: h}
	return nil
}

func (r *Reader) responseHead() error {
	resp := &Response{Framing: r.framing}
	for {
		st, err := r.s.varint()
		what := "final response status"
		if len(resp.Informational) > 0 {
			what = fmt.Sprintf("status after informational response %d", len(resp.Informational))
		}
		if err != nil {
			return eofIsMalformed(err, what)
		}
		if st < 100 || st > 599 {
			return fmt.Errorf("%w: %s is %d, want 100 to 599", ErrMalformed, what, st)
		}
		if st >= 200 {
			resp.Status = int(st)
			break
		}
		if len(resp.Informational) >= r.lim.MaxInformational {
			return fmt.Errorf("%w: more than %d informational responses (Limits.MaxInformational)", ErrLimit, r.lim.MaxInformational)
		}
		h, err := r.section(fmt.Sprintf("informational response %d header section", len(resp.Informational)+1))
		if err != nil {
			return err
		}
		resp.Informational = append(resp.Informational, InfoResponse{Status: int(st), Header: h})
	}
	h, err := r.section("header section")
	if err != nil {
		return err
	}
	resp.Header = h
	r.resp = resp
	return nil
}

// section reads a field section in the framing of the message.
func (r *Reader) section(what string) (Fields, error) {
	var (
		f   Fields
		err error
	)
	if r.framing == KnownLength {
		var l uint64
		if l, err = r.s.varint(); err != nil {
			return nil, fmt.Errorf("%s: length: %w", what, eofIsMalformed(err))
		}
		if l > uint64(r.lim.MaxFieldSection) {
			return nil, fmt.Errorf("%s: %w: length %d, over %d (Limits.MaxFieldSection)", what, ErrLimit, l, r.lim.MaxFieldSection)
		}
		if err = r.s.need(l, what); err != nil {
			return nil, err
		}
		b := make([]byte, l)
		if _, err = io.ReadFull(r.s.r, b); err == nil {
			r.s.n += int64(l)
			sub := src{r: bytes.NewReader(b), max: int64(l), size: int64(l)}
			f, err = r.lines(&sub, true)
		}
	} else {
		f, err = r.lines(&r.s, false)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, eofIsMalformed(err))
	}
	return f, nil
}

// lines reads field lines from s. A known-length section ends at the end
// of s, which holds just the section; an indeterminate-length one ends at a
// zero name length.
func (r *Reader) lines(s *src, known bool) (Fields, error) {
	var f Fields
	start := s.n
	for {
		nl, err := s.varint()
		if err == io.EOF && known {
			return f, nil
		}
		if err != nil {
			return nil, err
		}
		if nl == 0 {
			if known {
				return nil, fmt.Errorf("%w: field line %d has an empty name", ErrMalformed, len(f)+1)
			}
			return f, nil
		}
		if len(f) >= r.lim.MaxFields {
			return nil, fmt.Errorf("%w: more than %d field lines (Limits.MaxFields)", ErrLimit, r.lim.MaxFields)
		}
		b, err := r.fieldBytes(s, nl, start, "field section")
		if err != nil {
			return nil, fmt.Errorf("field line %d: name: %w", len(f)+1, err)
		}
		name := lower(string(b))
		vl, err := s.varint()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("field line %d: value length: %w", len(f)+1, err)
		}
		if b, err = r.fieldBytes(s, vl, start, "field section"); err != nil {
			return nil, fmt.Errorf("field line %d: value: %w", len(f)+1, err)
		}
		value := string(b)
		if err := validField(name, value); err != nil {
			return nil, fmt.Errorf("field line %d: %w", len(f)+1, err)
		}
		f = append(f, Field{Name: name, Value: value})
	}
}

// fieldBytes reads l bytes of a field section or control data that began
// at offset start of s, into scratch space valid until the next call.
func (r *Reader) fieldBytes(s *src, l uint64, start int64, what string) ([]byte, error) {
	if l > uint64(int64(r.lim.MaxFieldSection)-(s.n-start)) {
		return nil, fmt.Errorf("%w: %s of more than %d bytes (Limits.MaxFieldSection)", ErrLimit, what, r.lim.MaxFieldSection)
	}
	if err := s.need(l, what); err != nil {
		return nil, err
	}
	if uint64(cap(r.scratch)) < l {
		r.scratch = make([]byte, l)
	}
	b := r.scratch[:l]
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, err
	}
	s.n += int64(l)
	return b, nil
}

// src is a decoder's byte source: it counts the bytes read against max
// and, when the size is known, checks lengths against what is left.
type src struct {
	r    byteSource
	n    int64 // bytes read
	max  int64 // most bytes allowed
	size int64 // bytes in all, or -1 when not known
}

func (s *src) readByte() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, err
	}
	if s.n++; s.n > s.max {
		return 0, fmt.Errorf("%w: message of more than %d bytes (Limits.MaxMessage)", ErrLimit, s.max)
	}
	return c, nil
}

// varint reads a variable-length integer (RFC 9000 §16) of any of its four
// lengths. It returns io.EOF if the source ended before it, and
// io.ErrUnexpectedEOF if the source ended inside it.
func (s *src) varint() (uint64, error) {
	c, err := s.readByte()
	if err != nil {
		return 0, err
	}
	n := 1 << (c >> 6)
	v := uint64(c & 0x3f)
	for i := 1; i < n; i++ {
		if c, err = s.readByte(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// atEOF reports whether the source has ended, reading nothing otherwise.
func (s *src) atEOF() (bool, error) {
	if _, err := s.r.ReadByte(); err != nil {
		if err == io.EOF {
			return true, nil
		}
		return false, err
	}
	return false, s.r.UnreadByte()
}

// need checks that l more bytes can follow: against the known size and
// against max.
func (s *src) need(l uint64, what string) error {
	if s.size >= 0 && l > uint64(s.size-s.n) {
		return fmt.Errorf("%w: %s of %d bytes, but only %d bytes follow", ErrMalformed, what, l, s.size-s.n)
	}
	if l > uint64(s.max-s.n) {
		return fmt.Errorf("%w: %s of %d bytes makes a message of more than %d bytes (Limits.MaxMessage)", ErrLimit, what, l, s.max)
	}
	return nil
}

// padding reads the source to its end and checks that all of it is zero
// bytes (RFC 9292 §3.8).
func (s *src) padding() error {
	var buf [512]byte
	for {
		n, err := s.r.Read(buf[:])
		for i, c := range buf[:n] {
			if c != 0 {
				s.n += int64(i)
				return fmt.Errorf("%w: byte 0x%02x at offset %d after the trailer section; only zero padding may follow a message", ErrMalformed, c, s.n)
			}
		}
		if s.n += int64(n); s.n > s.max {
			return fmt.Errorf("%w: message with padding of more than %d bytes (Limits.MaxMessage)", ErrLimit, s.max)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// eofIsMalformed turns an end of input into an ErrMalformed error, inside
// what (if given).
func eofIsMalformed(err error, what ...string) error {
	if (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && !errors.Is(err, ErrMalformed) {
		err = fmt.Errorf("%w: the message ends early (%v)", ErrMalformed, err)
	}
	if len(what) > 0 {
		return fmt.Errorf("%s: %w", what[0], err)
	}
	return err
}
