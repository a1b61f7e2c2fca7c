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

func BenchmarkBareAESGCM(b *testing.B) {
	key := make([]byte, 32)
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	buf := make([]byte, SegmentSize)
	nonce := make([]byte, 12)
	b.SetBytes(benchSize)
	for b.Loop() {
		for range benchSize / plainSize {
			g.Seal(buf[:0], nonce, buf[:plainSize], nil)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	key := make([]byte, KeySize)
	src := make([]byte, SegmentSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		w, _ := NewWriter(discard{}, key, nil)
		for n := 0; n < benchSize; n += len(src) {
			w.Write(src)
		}
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

func BenchmarkOpen(b *testing.B) {
	key := make([]byte, KeySize)
	var ct sink
	w, _ := NewWriter(&ct, key, nil)
	w.Write(make([]byte, benchSize))
	w.Close()
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
	key := make([]byte, KeySize)
	var ct sink
	w, _ := NewWriter(&ct, key, nil)
	w.Write(make([]byte, benchSize))
	w.Close()
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

func BenchmarkBareAESGCMOpen(b *testing.B) {
	key := make([]byte, 32)
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	ct := g.Seal(nil, nonce, make([]byte, plainSize), nil)
	buf := make([]byte, SegmentSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		for range benchSize / plainSize {
			copy(buf, ct)
			if _, err := g.Open(buf[:0], nonce, buf[:len(ct)], nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}
