// Package seal is sworn's sealed-weights format: every file of a model
// directory encrypted with a streaming AEAD in fixed 1 MiB segments, and a
// manifest whose SHA-256 is the model digest that release records,
// policies, node claims and receipts name.
//
// The per-file construction is Tink's AES256_GCM_HKDF_1MB streaming AEAD,
// byte for byte, on the standard library: a 40-byte header (its length,
// a random 32-byte salt, a random 7-byte nonce prefix), a per-file
// AES-256-GCM key derived with HKDF-SHA256 from the data key, the salt and
// the file's associated data, and 1 MiB ciphertext segments whose nonce is
// the prefix, the segment's number and a last-segment flag. Each segment
// authenticates alone, so a sealed file can be read at any offset
// (Reader is an io.ReaderAt) as well as streamed; truncation, reordering
// and segments moved between files or models fail to open.
//
// A model directory is sealed with Dir and opened with Open, which checks
// the manifest against the expected model digest and the key before any
// weights are read. docs/seal.md describes the format.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Sizes of the construction (Tink's AES256_GCM_HKDF_1MB).
const (
	// KeySize is the size of a data key: 32 random bytes.
	KeySize = 32
	// SegmentSize is the size of every ciphertext segment but the last,
	// the header included in the first.
	SegmentSize = 1 << 20
	// HeaderSize is the size of a sealed file's header: one length byte,
	// the salt and the nonce prefix.
	HeaderSize = 1 + saltSize + noncePrefixSize
	// TagSize is the AES-GCM tag that ends every segment.
	TagSize = 16

	saltSize        = 32
	noncePrefixSize = 7
	firstPlain      = SegmentSize - HeaderSize - TagSize // plaintext in segment 0
	plainSize       = SegmentSize - TagSize              // plaintext in every other segment
	maxSegments     = 1 << 32                            // the 4-byte segment counter
)

// ErrAuth is returned (wrapped, with the file and segment) when a segment
// does not authenticate: the data key or the associated data is not the
// one it was sealed with, or the ciphertext was altered, truncated,
// reordered or moved from another file or model.
var ErrAuth = errors.New("segment does not authenticate")

// Header is the start of a sealed file.
type Header struct {
	Salt        [saltSize]byte
	NoncePrefix [noncePrefixSize]byte
}

// ParseHeader decodes a sealed file's header, the first HeaderSize bytes.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) != HeaderSize {
		return nil, fmt.Errorf("seal header is %d bytes, want %d", len(b), HeaderSize)
	}
	if b[0] != HeaderSize {
		return nil, fmt.Errorf("seal header length byte is %d, want %d (not an AES256_GCM_HKDF_1MB stream)", b[0], HeaderSize)
	}
	var h Header
	copy(h.Salt[:], b[1:1+saltSize])
	copy(h.NoncePrefix[:], b[1+saltSize:])
	return &h, nil
}

// Marshal encodes the header.
func (h *Header) Marshal() []byte {
	b := make([]byte, 0, HeaderSize)
	b = append(b, HeaderSize)
	b = append(b, h.Salt[:]...)
	return append(b, h.NoncePrefix[:]...)
}

// segmentAEAD is a file's derived AES-256-GCM and its nonce prefix.
type segmentAEAD struct {
	aead   cipher.AEAD
	prefix [noncePrefixSize]byte
}

func newSegmentAEAD(key, ad []byte, h *Header) (*segmentAEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("a data key is %d bytes, not %d", KeySize, len(key))
	}
	k, err := hkdf.Key(sha256.New, key, h.Salt[:], string(ad), KeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	clear(k)
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &segmentAEAD{aead: g, prefix: h.NoncePrefix}, nil
}

func (s *segmentAEAD) nonce(i uint32, last bool) []byte {
	var n [12]byte
	copy(n[:], s.prefix[:])
	binary.BigEndian.PutUint32(n[noncePrefixSize:], i)
	if last {
		n[11] = 1
	}
	return n[:]
}

// SealedSize is the size of a sealed file of n plaintext bytes (n ≥ 0).
func SealedSize(n int64) int64 {
	return HeaderSize + n + TagSize*numSegments(n)
}

// numSegments is how many segments n plaintext bytes take: at least one.
func numSegments(n int64) int64 {
	if n <= firstPlain {
		return 1
	}
	return 1 + (n-firstPlain+plainSize-1)/plainSize
}

// Writer seals a stream. Close writes the last segment; a stream not
// closed is truncated and will not open.
type Writer struct {
	w      io.Writer
	s      *segmentAEAD
	buf    []byte // plaintext of the segment being filled, with room for its tag
	n      int
	seg    uint32
	err    error
	closed bool
}

// NewWriter starts a sealed stream on w under key (KeySize bytes) with
// associated data ad, which the reader must present again. It writes the
// header at once.
func NewWriter(w io.Writer, key, ad []byte) (*Writer, error) {
	return newWriter(w, key, ad, rand.Reader)
}

func newWriter(w io.Writer, key, ad []byte, random io.Reader) (*Writer, error) {
	var h Header
	if _, err := io.ReadFull(random, h.Salt[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(random, h.NoncePrefix[:]); err != nil {
		return nil, err
	}
	s, err := newSegmentAEAD(key, ad, &h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(h.Marshal()); err != nil {
		return nil, err
	}
	return &Writer{w: w, s: s, buf: make([]byte, SegmentSize)}, nil
}

func (w *Writer) limit() int {
	if w.seg == 0 {
		return firstPlain
	}
	return plainSize
}

// Write seals p. A full segment is sealed only once more data follows, so
// that the last segment is always the one Close seals.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("seal: write after Close")
	}
	total := 0
	for len(p) > 0 {
		if w.n == w.limit() {
			if err := w.flush(false); err != nil {
				return total, err
			}
		}
		// A whole segment in p with more after it: seal it from p
		// directly, without copying it into the buffer first.
		if lim := w.limit(); w.n == 0 && len(p) > lim {
			if w.seg == maxSegments-1 {
				w.err = errors.New("seal: stream exceeds 2^32 segments")
				return total, w.err
			}
			ct := w.s.aead.Seal(w.buf[:0], w.s.nonce(w.seg, false), p[:lim], nil)
			if _, err := w.w.Write(ct); err != nil {
				w.err = err
				return total, err
			}
			w.seg++
			p = p[lim:]
			total += lim
			continue
		}
		c := copy(w.buf[w.n:w.limit()], p)
		w.n += c
		p = p[c:]
		total += c
	}
	return total, nil
}

// ReadFrom seals everything r yields until EOF, reading straight into the
// segment buffer (io.Copy uses it), so a file is sealed without copying
// its bytes twice. It does not close the stream.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("seal: write after Close")
	}
	var total int64
	for {
		lim := w.limit()
		n, err := io.ReadFull(r, w.buf[w.n:lim])
		w.n += n
		total += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		// The segment is full: seal it only if more data follows.
		var one [1]byte
		m, err := io.ReadFull(r, one[:])
		if m == 0 {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
		if err := w.flush(false); err != nil {
			return total, err
		}
		w.buf[0] = one[0]
		w.n = 1
		total++
	}
}

func (w *Writer) flush(last bool) error {
	if !last && w.seg == maxSegments-1 {
		w.err = errors.New("seal: stream exceeds 2^32 segments")
		return w.err
	}
	ct := w.s.aead.Seal(w.buf[:0], w.s.nonce(w.seg, last), w.buf[:w.n], nil)
	if _, err := w.w.Write(ct); err != nil {
		w.err = err
		return err
	}
	w.seg++
	w.n = 0
	return nil
}

// Close seals the last segment. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.flush(true)
	clear(w.buf)
	return err
}

// Reader opens a sealed stream of known size at any offset: every read
// authenticates the segments it touches. It is safe for concurrent use.
type Reader struct {
	r      io.ReaderAt
	size   int64 // sealed size
	plain  int64 // plaintext size
	nseg   int64
	s      *segmentAEAD
	mu     sync.Mutex
	cached int64 // segment held in cache, or -1
	cache  []byte
}

// NewReader opens the sealed stream of size bytes in r under key with
// associated data ad. It reads and checks the header only; each segment
// is authenticated when it is read.
func NewReader(r io.ReaderAt, size int64, key, ad []byte) (*Reader, error) {
	if size < HeaderSize+TagSize {
		return nil, fmt.Errorf("sealed stream of %d bytes is shorter than a header and one tag (%d): truncated", size, HeaderSize+TagSize)
	}
	hb := make([]byte, HeaderSize)
	if _, err := r.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("reading the seal header: %w", err)
	}
	h, err := ParseHeader(hb)
	if err != nil {
		return nil, err
	}
	nseg := size / SegmentSize
	if size%SegmentSize != 0 {
		nseg++
	}
	if nseg > maxSegments {
		return nil, fmt.Errorf("sealed stream of %d bytes has more than 2^32 segments", size)
	}
	lastCT := size - (nseg-1)*SegmentSize
	if nseg == 1 {
		lastCT -= HeaderSize
	}
	if lastCT < TagSize {
		return nil, fmt.Errorf("sealed stream of %d bytes ends in a segment of %d bytes, shorter than a tag: truncated", size, lastCT)
	}
	s, err := newSegmentAEAD(key, ad, h)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, size: size, plain: size - HeaderSize - TagSize*nseg, nseg: nseg, s: s, cached: -1}, nil
}

// Size is the plaintext size.
func (r *Reader) Size() int64 { return r.plain }

// NumSegments is the number of segments, at least one.
func (r *Reader) NumSegments() int64 { return r.nseg }

// segmentRange returns segment i's ciphertext offset and length and its
// plaintext offset.
func (r *Reader) segmentRange(i int64) (ctOff, ctLen, ptOff int64) {
	ctOff = i * SegmentSize
	end := min(ctOff+SegmentSize, r.size)
	if i == 0 {
		ctOff = HeaderSize
	} else {
		ptOff = firstPlain + (i-1)*plainSize
	}
	return ctOff, end - ctOff, ptOff
}

// openSegment reads and authenticates segment i into buf (at least
// SegmentSize bytes) and returns its plaintext, which aliases buf.
func (r *Reader) openSegment(i int64, buf []byte) ([]byte, error) {
	ctOff, ctLen, _ := r.segmentRange(i)
	ct := buf[:ctLen]
	if _, err := r.r.ReadAt(ct, ctOff); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("segment %d: %w (the sealed stream is shorter than %d bytes: truncated)", i, ErrAuth, r.size)
		}
		return nil, fmt.Errorf("segment %d: %w", i, err)
	}
	pt, err := r.s.aead.Open(ct[:0], r.s.nonce(uint32(i), i == r.nseg-1), ct, nil)
	if err != nil {
		return nil, fmt.Errorf("segment %d of %d: %w", i, r.nseg, ErrAuth)
	}
	return pt, nil
}

// ReadSegment returns the plaintext of segment i alone, authenticated.
func (r *Reader) ReadSegment(i int64) ([]byte, error) {
	if i < 0 || i >= r.nseg {
		return nil, fmt.Errorf("segment %d: the stream has %d", i, r.nseg)
	}
	return r.openSegment(i, make([]byte, SegmentSize))
}

// segmentOf is the segment that holds plaintext offset off.
func segmentOf(off int64) int64 {
	if off < firstPlain {
		return 0
	}
	return 1 + (off-firstPlain)/plainSize
}

// ReadAt reads plaintext at off, authenticating every segment it touches.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("seal: negative offset")
	}
	if off >= r.plain {
		if len(p) == 0 && off == r.plain {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < r.plain {
		i := segmentOf(off)
		_, _, ptOff := r.segmentRange(i)
		c, err := r.readFromSegment(i, p[n:], off-ptOff)
		if err != nil {
			return n, err
		}
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readFromSegment copies plaintext of segment i from within-segment
// offset rel into p. The last segment opened is cached, so that small
// sequential reads open each segment once.
func (r *Reader) readFromSegment(i int64, p []byte, rel int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cached != i {
		if r.cache == nil {
			r.cache = make([]byte, SegmentSize)
		}
		r.cached = -1
		pt, err := r.openSegment(i, r.cache)
		if err != nil {
			return 0, err
		}
		r.cache = r.cache[:len(pt)]
		r.cached = i
	}
	return copy(p, r.cache[rel:]), nil
}

// each reads the stream once, in order: it writes the header and every
// segment's ciphertext to sealed, then calls fn with the segment's
// plaintext, which is reused between calls.
func (r *Reader) each(sealed io.Writer, fn func(pt []byte) error) error {
	buf := make([]byte, SegmentSize)
	if _, err := r.r.ReadAt(buf[:HeaderSize], 0); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	sealed.Write(buf[:HeaderSize])
	for i := int64(0); i < r.nseg; i++ {
		ctOff, ctLen, _ := r.segmentRange(i)
		ct := buf[:ctLen]
		if _, err := r.r.ReadAt(ct, ctOff); err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		sealed.Write(ct)
		pt, err := r.s.aead.Open(ct[:0], r.s.nonce(uint32(i), i == r.nseg-1), ct, nil)
		if err != nil {
			return fmt.Errorf("segment %d of %d: %w", i, r.nseg, ErrAuth)
		}
		if err := fn(pt); err != nil {
			return err
		}
	}
	return nil
}
