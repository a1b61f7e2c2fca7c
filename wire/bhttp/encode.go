package bhttp

import (
	"fmt"
	"io"
)

// Encode returns the request in its Framing. Field names are lower-cased;
// every section is written (no truncation, RFC 9292 §3.8) and nothing is
// padded: to pad, append zero bytes. Indeterminate-length content is one
// chunk. It refuses a request that a decoder would find invalid.
func (r *Request) Encode() ([]byte, error) {
	n := 32 + len(r.Method) + len(r.Scheme) + len(r.Authority) + len(r.Path) + len(r.Content) + sectionSize(r.Header) + sectionSize(r.Trailer)
	b, err := r.appendHead(make([]byte, 0, n))
	if err != nil {
		return nil, err
	}
	return appendRest(b, r.Framing, r.Content, r.Trailer)
}

// Encode returns the response in its Framing, like [Request.Encode].
func (r *Response) Encode() ([]byte, error) {
	n := 32 + len(r.Content) + sectionSize(r.Header) + sectionSize(r.Trailer)
	for _, ir := range r.Informational {
		n += 16 + sectionSize(ir.Header)
	}
	b, err := r.appendHead(make([]byte, 0, n))
	if err != nil {
		return nil, err
	}
	return appendRest(b, r.Framing, r.Content, r.Trailer)
}

// appendHead appends the framing indicator, control data and header
// section of r.
func (r *Request) appendHead(b []byte) ([]byte, error) {
	if err := validRequestControl(r.Method, r.Scheme, r.Authority, r.Path); err != nil {
		return nil, fmt.Errorf("bhttp: encode request: %w", err)
	}
	if err := checkFraming(r.Framing); err != nil {
		return nil, fmt.Errorf("bhttp: encode request: %w", err)
	}
	b = append(b, r.Framing.indicator(false))
	for _, s := range [...]string{r.Method, r.Scheme, r.Authority, r.Path} {
		b = appendBytes(b, s)
	}
	b, err := appendSection(b, r.Framing, r.Header)
	if err != nil {
		return nil, fmt.Errorf("bhttp: encode request: header section: %w", err)
	}
	return b, nil
}

// appendHead appends the framing indicator, informational responses,
// final status and header section of r.
func (r *Response) appendHead(b []byte) ([]byte, error) {
	if err := checkFraming(r.Framing); err != nil {
		return nil, fmt.Errorf("bhttp: encode response: %w", err)
	}
	b = append(b, r.Framing.indicator(true))
	for i, ir := range r.Informational {
		if ir.Status < 100 || ir.Status > 199 {
			return nil, fmt.Errorf("bhttp: encode response: %w: informational response %d has status %d, want 100 to 199", ErrMalformed, i+1, ir.Status)
		}
		var err error
		b = appendVarint(b, uint64(ir.Status))
		if b, err = appendSection(b, r.Framing, ir.Header); err != nil {
			return nil, fmt.Errorf("bhttp: encode response: informational response %d: %w", i+1, err)
		}
	}
	if r.Status < 200 || r.Status > 599 {
		return nil, fmt.Errorf("bhttp: encode response: %w: final status %d, want 200 to 599", ErrMalformed, r.Status)
	}
	b = appendVarint(b, uint64(r.Status))
	b, err := appendSection(b, r.Framing, r.Header)
	if err != nil {
		return nil, fmt.Errorf("bhttp: encode response: header section: %w", err)
	}
	return b, nil
}

func checkFraming(f Framing) error {
	if f != KnownLength && f != IndeterminateLength {
		return fmt.Errorf("%w: unknown framing %d", ErrMalformed, uint8(f))
	}
	return nil
}

// appendRest appends content and trailer section in framing f.
func appendRest(b []byte, f Framing, content []byte, trailer Fields) ([]byte, error) {
	if f == KnownLength {
		b = appendVarint(b, uint64(len(content)))
		b = append(b, content...)
	} else {
		b = appendChunk(b, content)
		b = append(b, 0)
	}
	b, err := appendSection(b, f, trailer)
	if err != nil {
		return nil, fmt.Errorf("bhttp: encode: trailer section: %w", err)
	}
	return b, nil
}

// appendChunk appends p as one indeterminate-length content chunk; an
// empty p appends nothing, as a zero length would end the content.
func appendChunk(b, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	return append(appendVarint(b, uint64(len(p))), p...)
}

// appendSection appends field section fs in framing f, names lower-cased.
func appendSection(b []byte, f Framing, fs Fields) ([]byte, error) {
	if err := fs.Validate(); err != nil {
		return nil, err
	}
	if f == KnownLength {
		b = appendVarint(b, uint64(sectionSize(fs)))
	}
	for _, fl := range fs {
		b = appendBytes(b, lower(fl.Name))
		b = appendBytes(b, fl.Value)
	}
	if f == IndeterminateLength {
		b = append(b, 0)
	}
	return b, nil
}

// sectionSize is the number of bytes of the field lines of fs.
func sectionSize(fs Fields) int {
	n := 0
	for _, fl := range fs {
		n += varintLen(uint64(len(fl.Name))) + len(fl.Name) + varintLen(uint64(len(fl.Value))) + len(fl.Value)
	}
	return n
}

// validRequestControl checks request control data (RFC 9292 §3.4): the
// method is a token; scheme, authority and path hold only visible ASCII
// (stricter than RFC 9292, so that a request cannot be split when it is
// replayed over HTTP/1.1).
func validRequestControl(method, scheme, authority, path string) error {
	if !isToken(method) {
		return fmt.Errorf("%w: method %q is not a token", ErrMalformed, clip(method))
	}
	for _, p := range [...]struct{ name, v string }{{"scheme", scheme}, {"authority", authority}, {"path", path}} {
		for i := 0; i < len(p.v); i++ {
			if c := p.v[i]; c <= ' ' || c >= 0x7f {
				return fmt.Errorf("%w: %s %q has byte 0x%02x at %d; want visible ASCII", ErrMalformed, p.name, clip(p.v), c, i)
			}
		}
	}
	return nil
}

// StreamWriter writes one indeterminate-length message as it is produced:
// the head when it is made, then each Write as its own content chunk, then
// the trailer section on Finish. Each call makes exactly one Write on the
// underlying writer, so a chunked OHTTP layer beneath can seal one chunk per
// call. It is not safe for concurrent use.
type StreamWriter struct {
	w          io.Writer
	lim        Limits
	n, content int64
	buf        []byte
	done       bool
	err        error
}

// NewRequestWriter writes the head (framing indicator 2, control data and
// header section) of req to w and returns the writer for its content.
// req.Framing is ignored; req.Content and req.Trailer must be empty (write
// them with Write and Finish).
func NewRequestWriter(w io.Writer, req *Request, opts *Options) (*StreamWriter, error) {
	if len(req.Content) > 0 || len(req.Trailer) > 0 {
		return nil, fmt.Errorf("bhttp: stream request: Content and Trailer must be empty; write them with Write and Finish")
	}
	h := *req
	h.Framing = IndeterminateLength
	b, err := h.appendHead(nil)
	if err != nil {
		return nil, err
	}
	return newStreamWriter(w, b, opts)
}

// NewResponseWriter writes the head (framing indicator 3, informational
// responses, status and header section) of resp to w and returns the
// writer for its content. resp.Framing is ignored; resp.Content and
// resp.Trailer must be empty (write them with Write and Finish).
func NewResponseWriter(w io.Writer, resp *Response, opts *Options) (*StreamWriter, error) {
	if len(resp.Content) > 0 || len(resp.Trailer) > 0 {
		return nil, fmt.Errorf("bhttp: stream response: Content and Trailer must be empty; write them with Write and Finish")
	}
	h := *resp
	h.Framing = IndeterminateLength
	b, err := h.appendHead(nil)
	if err != nil {
		return nil, err
	}
	return newStreamWriter(w, b, opts)
}

func newStreamWriter(w io.Writer, head []byte, opts *Options) (*StreamWriter, error) {
	s := &StreamWriter{w: w, lim: opts.limits()}
	if err := s.emit(head); err != nil {
		return nil, err
	}
	return s, nil
}

// emit writes b to the underlying writer as one call, counting it against
// MaxMessage.
func (s *StreamWriter) emit(b []byte) error {
	if s.n+int64(len(b)) > s.lim.MaxMessage {
		return fmt.Errorf("bhttp: stream: %w: message would exceed %d bytes (Limits.MaxMessage)", ErrLimit, s.lim.MaxMessage)
	}
	n, err := s.w.Write(b)
	s.n += int64(n)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = fmt.Errorf("bhttp: stream: %w", err)
		return s.err
	}
	return nil
}

// Write writes p as one content chunk. An empty p writes nothing. After an
// error every later call fails.
func (s *StreamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.done {
		return 0, fmt.Errorf("bhttp: stream: Write after Finish")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if s.content+int64(len(p)) > s.lim.MaxContent {
		return 0, fmt.Errorf("bhttp: stream: %w: content would exceed %d bytes (Limits.MaxContent)", ErrLimit, s.lim.MaxContent)
	}
	s.buf = appendChunk(s.buf[:0], p)
	if err := s.emit(s.buf); err != nil {
		return 0, err
	}
	s.content += int64(len(p))
	return len(p), nil
}

// Finish ends the content and writes trailer as the trailer section. The
// message is then complete; later calls fail.
func (s *StreamWriter) Finish(trailer Fields) error {
	if s.err != nil {
		return s.err
	}
	if s.done {
		return fmt.Errorf("bhttp: stream: Finish called twice")
	}
	if len(trailer) > s.lim.MaxFields {
		return fmt.Errorf("bhttp: stream: %w: %d trailer fields, over %d (Limits.MaxFields)", ErrLimit, len(trailer), s.lim.MaxFields)
	}
	b, err := appendSection(append(s.buf[:0], 0), IndeterminateLength, trailer)
	if err != nil {
		return fmt.Errorf("bhttp: stream: trailer section: %w", err)
	}
	if len(b)-2 > s.lim.MaxFieldSection {
		return fmt.Errorf("bhttp: stream: %w: trailer section of %d bytes, over %d (Limits.MaxFieldSection)", ErrLimit, len(b)-2, s.lim.MaxFieldSection)
	}
	if err := s.emit(b); err != nil {
		return err
	}
	s.done = true
	return nil
}

// Close finishes the message with no trailer fields, if Finish was not
// called; it does not close the underlying writer.
func (s *StreamWriter) Close() error {
	if s.done && s.err == nil {
		return nil
	}
	return s.Finish(nil)
}
