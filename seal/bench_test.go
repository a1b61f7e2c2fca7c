package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"io"
	"testing"
)

// The benchmarks compare sealing and opening one 64 MiB stream with a bare
// AES-256-GCM loop over the same 1 MiB segments, in the same run:
//
//	go test ./seal -run '^$' -bench . -benchtime 20x
const benchSize = 64 << 20

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// benchSrc is the plaintext every sealing benchmark reads: 64 MiB.
var benchSrc = make([]byte, benchSize)

// BenchmarkBareAESGCM seals benchSrc in 1 MiB segments into one 1 MiB
// buffer, out of place, as a stream sealer must (it cannot seal the
// caller's buffer in place).
func BenchmarkBareAESGCM(b *testing.B) {
	key := make([]byte, 32)
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	dst := make([]byte, SegmentSize)
	nonce := make([]byte, 12)
	b.SetBytes(benchSize)
	for b.Loop() {
		for p := benchSrc; len(p) > 0; {
			n := min(len(p), plainSize)
			g.Seal(dst[:0], nonce, p[:n], nil)
			p = p[n:]
		}
	}
}

// BenchmarkSeal seals benchSrc with one Write, to a discarding writer.
func BenchmarkSeal(b *testing.B) {
	key := make([]byte, KeySize)
	b.SetBytes(benchSize)
	for b.Loop() {
		w, _ := NewWriter(discard{}, key, nil)
		w.Write(benchSrc)
		w.Close()
	}
}

// BenchmarkSealReadFrom seals benchSrc through io.Copy from a reader, as
// seal.Dir does from a file: each segment is read into the segment
// buffer and sealed in place.
func BenchmarkSealReadFrom(b *testing.B) {
	key := make([]byte, KeySize)
	b.SetBytes(benchSize)
	for b.Loop() {
		w, _ := NewWriter(discard{}, key, nil)
		io.Copy(w, &chunkReader{benchSrc, 1 << 20})
		w.Close()
	}
}

// memFile is a sealed stream in memory.
type memFile []byte

func (m memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type sink []byte

func (s *sink) Write(p []byte) (int, error) { *s = append(*s, p...); return len(p), nil }

// sealedBench returns a key and benchSize zero bytes sealed under it.
func sealedBench() ([]byte, sink) {
	key := make([]byte, KeySize)
	var ct sink
	w, _ := NewWriter(&ct, key, nil)
	w.Write(make([]byte, benchSize))
	w.Close()
	return key, ct
}

func BenchmarkOpen(b *testing.B) {
	key, ct := sealedBench()
	b.SetBytes(benchSize)
	buf := make([]byte, SegmentSize)
	for b.Loop() {
		r, err := NewReader(memFile(ct), int64(len(ct)), key, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range r.NumSegments() {
			if _, err := r.openSegment(i, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkOpenReadAt streams through ReadAt with 1 MiB reads, as
// io.Copy from File.Stream does with a large buffer.
func BenchmarkOpenReadAt(b *testing.B) {
	key, ct := sealedBench()
	b.SetBytes(benchSize)
	buf := make([]byte, SegmentSize)
	for b.Loop() {
		r, _ := NewReader(memFile(ct), int64(len(ct)), key, nil)
		for off := int64(0); off < r.Size(); off += int64(len(buf)) {
			if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBareAESGCMOpen opens 64 MiB of 1 MiB AES-256-GCM segments
// held in memory, copying each into a buffer first, as BenchmarkOpen
// reads each segment from its io.ReaderAt.
func BenchmarkBareAESGCMOpen(b *testing.B) {
	key := make([]byte, 32)
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	pt := make([]byte, plainSize)
	var cts []byte
	for range benchSize / plainSize {
		cts = g.Seal(cts, nonce, pt, nil)
	}
	buf := make([]byte, SegmentSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		for ct := cts; len(ct) > 0; ct = ct[SegmentSize:] {
			copy(buf, ct[:SegmentSize])
			if _, err := g.Open(buf[:0], nonce, buf, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}
