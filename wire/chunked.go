package wire

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Chunk bounds. Receivers must accept 16384-byte chunks
// (draft-ietf-ohai-chunked-ohttp-08 §3); sworn writes at most MaxChunk
// bytes of plaintext per chunk and reads sealed chunks of at most
// MaxChunk plus the AEAD tag.
const (
	MaxChunk = 16384
	tagSize  = 16
)

var finalAAD = []byte("final")

// ErrTruncated: a chunked message ended before its final chunk. The
// message must then be discarded, never taken as a shorter one.
var ErrTruncated = errors.New("the chunked message ended before its final chunk: truncated")

// chunkWriter seals chunks: varint(len) ‖ sealed for non-final chunks,
// varint(0) ‖ sealed(aad="final") for the last.
type chunkWriter struct {
	w      io.Writer
	seal   func(dst, aad, p []byte) ([]byte, error) // appends the sealed p to dst
	prefix []byte                                   // written before the first chunk
	closed bool
	buf    []byte
}

// Write seals p as one chunk (or several of at most MaxChunk bytes) and
// writes it at once, so that each token reaches the peer as it comes. An
// empty p writes nothing: an empty non-final chunk is not allowed.
func (c *chunkWriter) Write(p []byte) (int, error) {
	if c.closed {
		return 0, errors.New("write after the final chunk")
	}
	n := 0
	for len(p) > 0 {
		m := min(len(p), MaxChunk)
		if err := c.emit(p[:m], false); err != nil {
			return n, err
		}
		n += m
		p = p[m:]
	}
	return n, nil
}

func (c *chunkWriter) emit(p []byte, final bool) error {
	var aad []byte
	if final {
		aad = finalAAD
	}
	c.buf = append(c.buf[:0], c.prefix...)
	c.prefix = nil
	if final {
		c.buf = appendVarint(c.buf, 0)
	} else {
		c.buf = appendVarint(c.buf, uint64(len(p)+tagSize))
	}
	start := len(c.buf)
	var err error
	if c.buf, err = c.seal(c.buf, aad, p); err != nil {
		return err
	}
	if len(c.buf)-start != len(p)+tagSize {
		return errors.New("the AEAD's tag is not 16 bytes")
	}
	_, err = c.w.Write(c.buf)
	if f, ok := c.w.(interface{ Flush() error }); ok && err == nil {
		err = f.Flush()
	} else if f, ok := c.w.(interface{ Flush() }); ok && err == nil {
		f.Flush()
	}
	return err
}

// Close writes the final chunk, which carries final (possibly empty).
func (c *chunkWriter) close(final []byte) error {
	if c.closed {
		return nil
	}
	c.closed = true
	return c.emit(final, true)
}

// Close writes an empty final chunk.
func (c *chunkWriter) Close() error { return c.close(nil) }

// chunkReader opens chunks and returns their plaintext in order; it
// returns io.EOF only after the final chunk opened.
type chunkReader struct {
	r     *bufio.Reader
	open  func(dst, aad, ct []byte) ([]byte, error) // appends the opened ct to dst
	ct    []byte                                    // the chunk being read, reused
	pt    []byte
	done  bool
	err   error
	start func() error // reads what precedes the first chunk
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.pt) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.done {
			return 0, io.EOF
		}
		c.err = c.next()
	}
	n := copy(p, c.pt)
	c.pt = c.pt[n:]
	return n, nil
}

func (c *chunkReader) next() error {
	if c.start != nil {
		if err := c.start(); err != nil {
			return err
		}
		c.start = nil
	}
	n, err := readVarint(c.r)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return ErrTruncated
	case err != nil:
		return err
	}
	var ct []byte
	final := n == 0
	if final {
		// The final chunk runs to the end of the content.
		ct, err = io.ReadAll(io.LimitReader(c.r, MaxChunk+tagSize+1))
		if err != nil {
			return err
		}
		if len(ct) > MaxChunk+tagSize {
			return fmt.Errorf("%w: final chunk larger than %d bytes", ErrMalformed, MaxChunk+tagSize)
		}
	} else {
		if n > MaxChunk+tagSize {
			return fmt.Errorf("%w: chunk of %d bytes exceeds %d", ErrMalformed, n, MaxChunk+tagSize)
		}
		c.ct = slices.Grow(c.ct[:0], int(n))[:n]
		ct = c.ct
		if _, err := io.ReadFull(c.r, ct); err != nil {
			return ErrTruncated
		}
	}
	var aad []byte
	if final {
		aad = finalAAD
	}
	pt, err := c.open(ct[:0], aad, ct) // in place: Read returns pt before the next chunk is read
	if err != nil {
		return fmt.Errorf("chunk: %w", ErrDecrypt)
	}
	if !final && len(pt) == 0 {
		return fmt.Errorf("%w: an empty non-final chunk", ErrMalformed)
	}
	c.pt, c.done = pt, final
	return nil
}

// sequenceAEAD seals or opens response chunks: nonce = base XOR counter.
type sequenceAEAD struct {
	aead    cipher.AEAD
	base    []byte
	counter uint64
	nonce   []byte
}

func (s *sequenceAEAD) next() []byte {
	s.nonce = append(s.nonce[:0], s.base...)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], s.counter)
	for i := range c {
		s.nonce[len(s.nonce)-8+i] ^= c[i]
	}
	s.counter++
	return s.nonce
}

func (s *sequenceAEAD) seal(dst, aad, p []byte) ([]byte, error) {
	return s.aead.Seal(dst, s.next(), p, aad), nil
}

func (s *sequenceAEAD) open(dst, aad, ct []byte) ([]byte, error) {
	return s.aead.Open(dst, s.next(), ct, aad)
}

// appending adapts an HPKE context's Seal or Open, which return a new
// slice, to the chunk writer's and reader's appending form.
func appending(f func(aad, p []byte) ([]byte, error)) func(dst, aad, p []byte) ([]byte, error) {
	return func(dst, aad, p []byte) ([]byte, error) {
		out, err := f(aad, p)
		return append(dst, out...), err
	}
}

// ChunkedRequestWriter writes a message/ohttp-chunked-req body: Write
// seals and sends chunks; Close sends the final chunk.
type ChunkedRequestWriter struct {
	chunkWriter
	enc, secret []byte
	si          suiteInfo
}

// NewChunkedRequestWriter starts a chunked request to a key configuration
// with the given suite, writing to w. The header is written with the first
// chunk.
func NewChunkedRequestWriter(c KeyConfig, s Suite, w io.Writer) (*ChunkedRequestWriter, error) {
	hdr, enc, sender, si, err := setupSender(c, s, labelChunkedRequest)
	if err != nil {
		return nil, err
	}
	secret, err := sender.Export(labelChunkedResponse, si.secretN)
	if err != nil {
		return nil, err
	}
	return &ChunkedRequestWriter{
		chunkWriter: chunkWriter{w: w, seal: appending(sender.Seal), prefix: append(hdr, enc...)},
		enc:         enc, secret: secret, si: si,
	}, nil
}

// CloseWith sends final as the content of the final chunk.
func (w *ChunkedRequestWriter) CloseWith(final []byte) error { return w.close(final) }

// OpenResponse returns a reader of the chunked response's plaintext; it
// fails with ErrTruncated if the response ends before its final chunk.
func (w *ChunkedRequestWriter) OpenResponse(r io.Reader) io.Reader {
	return openChunkedResponse(w.si, w.secret, w.enc, r)
}

func openChunkedResponse(si suiteInfo, secret, enc []byte, r io.Reader) io.Reader {
	cr := &chunkReader{r: bufio.NewReader(r)}
	cr.start = func() error {
		nonce := make([]byte, si.secretN)
		if _, err := io.ReadFull(cr.r, nonce); err != nil {
			return ErrTruncated
		}
		aead, base, err := responseAEAD(si, secret, enc, nonce)
		if err != nil {
			return err
		}
		cr.open = (&sequenceAEAD{aead: aead, base: base}).open
		return nil
	}
	return cr
}

// ChunkedRequestReader reads a message/ohttp-chunked-req body on the
// gateway; Read returns io.EOF only after the final chunk opened.
type ChunkedRequestReader struct {
	chunkReader
	// Header is the request's header: which key and suite it used.
	Header Header
	// Key is the key that decrypts the request.
	Key    *PrivateKey
	enc    []byte
	secret []byte
	si     suiteInfo
}

// OpenChunkedRequest reads the header of a chunked request from r and sets
// up its decryption with one of keys.
func OpenChunkedRequest(keys []*PrivateKey, r io.Reader) (*ChunkedRequestReader, error) {
	br := bufio.NewReader(r)
	hdr, err := br.Peek(headerSize)
	if err != nil {
		return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
	}
	_, encSize, err := ParseHeader(hdr)
	if err != nil {
		return nil, err
	}
	head := make([]byte, headerSize+encSize)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, fmt.Errorf("%w: truncated encapsulated key", ErrMalformed)
	}
	g, recipient, _, err := setupRecipient(keys, head, labelChunkedRequest, labelChunkedResponse)
	if err != nil {
		return nil, err
	}
	return &ChunkedRequestReader{
		chunkReader: chunkReader{r: br, open: appending(recipient.Open)},
		Header:      g.Header, Key: g.Key, enc: g.enc, secret: g.secret, si: g.si,
	}, nil
}

// Enc returns the request's encapsulated key (replay filters key on it).
func (r *ChunkedRequestReader) Enc() []byte { return bytes.Clone(r.enc) }

// ChunkedResponseWriter writes a message/ohttp-chunked-res body: each
// Write is sealed and sent as a chunk at once; Close sends the final chunk.
// A response that is cut off is detected by the client.
type ChunkedResponseWriter struct{ chunkWriter }

// NewResponseWriter starts the chunked response to the request, writing
// to w. The response nonce is written with the first chunk.
func (r *ChunkedRequestReader) NewResponseWriter(w io.Writer) (*ChunkedResponseWriter, error) {
	nonce := make([]byte, r.si.secretN)
	rand.Read(nonce)
	return r.newResponseWriter(w, nonce)
}

func (r *ChunkedRequestReader) newResponseWriter(w io.Writer, nonce []byte) (*ChunkedResponseWriter, error) {
	return newChunkedResponseWriter(r.si, r.secret, r.enc, nonce, w)
}

func newChunkedResponseWriter(si suiteInfo, secret, enc, nonce []byte, w io.Writer) (*ChunkedResponseWriter, error) {
	aead, base, err := responseAEAD(si, secret, enc, nonce)
	if err != nil {
		return nil, err
	}
	s := &sequenceAEAD{aead: aead, base: base}
	return &ChunkedResponseWriter{chunkWriter{w: w, seal: s.seal, prefix: bytes.Clone(nonce)}}, nil
}

// CloseWith sends final as the content of the final chunk.
func (w *ChunkedResponseWriter) CloseWith(final []byte) error { return w.close(final) }
