package seal

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testFiles is a model directory covering the segment boundaries: empty,
// one byte, exactly one first segment, one more, exactly 1 MiB, 1 MiB+1,
// and several segments.
var testFiles = map[string]int{
	"config.json":                 100,
	"empty":                       0,
	"one":                         1,
	"seg0-exact":                  firstPlain,
	"seg0-plus1":                  firstPlain + 1,
	"mib":                         1 << 20,
	"mib-plus1":                   1<<20 + 1,
	"two-exact":                   firstPlain + plainSize,
	"weights/model.safetensors":   3*plainSize + 12345,
	"weights/sub/tokenizer.model": 4096,
}

func writeTestDir(t testing.TB, files map[string]int) string {
	t.Helper()
	dir := t.TempDir()
	for p, n := range files {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + len(p))
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newKey(t testing.TB) []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// sealed seals a fresh test directory and returns the sealed dir, key,
// manifest and digest.
func sealed(t testing.TB, files map[string]int) (string, []byte, *Manifest, [32]byte) {
	t.Helper()
	src := writeTestDir(t, files)
	dst := filepath.Join(t.TempDir(), "sealed")
	key := newKey(t)
	m, err := Dir(src, dst, key, "test-model")
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dst, key, m, d
}

func TestSealRoundTrip(t *testing.T) {
	src := writeTestDir(t, testFiles)
	dst := filepath.Join(t.TempDir(), "sealed")
	key := newKey(t)
	m, err := Dir(src, dst, key, "test-model")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != len(testFiles) {
		t.Fatalf("%d files sealed, want %d", len(m.Files), len(testFiles))
	}
	raw, err := os.ReadFile(filepath.Join(dst, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := m.Digest()
	if d != sha256.Sum256(raw) {
		t.Fatal("the model digest is not the SHA-256 of manifest.json")
	}
	mod, err := Open(dst, key, d)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	if err := mod.Verify(); err != nil {
		t.Fatal(err)
	}
	for p := range testFiles {
		want, _ := os.ReadFile(filepath.Join(src, filepath.FromSlash(p)))
		got, err := mod.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: ReadFile %d bytes, %v; want %d bytes", p, len(got), err, len(want))
		}
		e, _ := m.Entry(p)
		st, _ := os.Stat(filepath.Join(dst, FilesDir, filepath.FromSlash(p)))
		if st.Size() != e.SealedSize || e.Size != int64(len(want)) {
			t.Fatalf("%s: sealed %d bytes, manifest %+v", p, st.Size(), e)
		}
		f, err := mod.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		streamed, err := io.ReadAll(f.Stream())
		if err != nil || !bytes.Equal(streamed, want) {
			t.Fatalf("%s: stream %d bytes, %v", p, len(streamed), err)
		}
		// Random access at segment boundaries and at random offsets.
		offs := []int64{0, firstPlain - 1, firstPlain, firstPlain + plainSize - 1, firstPlain + plainSize, int64(len(want)) - 1}
		for range 20 {
			if len(want) > 0 {
				r, _ := rand.Int(rand.Reader, big.NewInt(int64(len(want))))
				offs = append(offs, r.Int64())
			}
		}
		for _, off := range offs {
			if off < 0 || off >= int64(len(want)) {
				continue
			}
			n := min(int64(len(want))-off, 3000)
			buf := make([]byte, n)
			if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, want[off:off+n]) {
				t.Fatalf("%s: ReadAt(%d, %d): %v", p, n, off, err)
			}
		}
		if _, err := f.ReadAt(make([]byte, 1), int64(len(want))); err != io.EOF {
			t.Fatalf("%s: ReadAt past the end: %v, want EOF", p, err)
		}
		for i := range f.NumSegments() {
			seg, err := f.ReadSegment(i)
			if err != nil {
				t.Fatal(err)
			}
			_, _, ptOff := f.segmentRange(i)
			if !bytes.Equal(seg, want[ptOff:ptOff+int64(len(seg))]) {
				t.Fatalf("%s: segment %d differs", p, i)
			}
		}
		f.Close()
	}
}

// sealedPath is the on-disk path of a sealed file.
func sealedPath(dir, p string) string { return filepath.Join(dir, FilesDir, filepath.FromSlash(p)) }

func mutate(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// openAll opens the model and reads every file, returning the first error.
func openAll(dir string, key []byte, d [32]byte) error {
	m, err := Open(dir, key, d)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Verify()
}

// segmentAuth opens one file and reads every segment alone, without the
// manifest's digests: the AEAD alone must catch the change.
func segmentAuth(dir string, key []byte, d [32]byte, p string) error {
	m, err := Open(dir, key, d)
	if err != nil {
		return err
	}
	defer m.Close()
	f, err := m.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := range f.NumSegments() {
		if _, err := f.ReadSegment(i); err != nil {
			return err
		}
	}
	return nil
}

func TestSealTampering(t *testing.T) {
	files := map[string]int{"a.bin": 3*plainSize + 10, "b.bin": 3*plainSize + 10, "c.json": 10}
	const big = "a.bin"
	swapSeg := func(b []byte, i, j int) []byte {
		si, sj := b[i*SegmentSize:(i+1)*SegmentSize], b[j*SegmentSize:(j+1)*SegmentSize]
		tmp := bytes.Clone(si)
		copy(si, sj)
		copy(sj, tmp)
		return b
	}
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, dir string, m *Manifest)
		want string // in the error, besides the sentinel
		is   error
	}{
		{"flipped byte in a segment", func(t *testing.T, dir string, _ *Manifest) {
			mutate(t, sealedPath(dir, big), func(b []byte) []byte { b[SegmentSize+100] ^= 1; return b })
		}, "segment 1 of 4", ErrAuth},
		{"flipped header byte", func(t *testing.T, dir string, _ *Manifest) {
			mutate(t, sealedPath(dir, big), func(b []byte) []byte { b[5] ^= 1; return b })
		}, "segment 0", ErrAuth},
		{"reordered segments", func(t *testing.T, dir string, _ *Manifest) {
			mutate(t, sealedPath(dir, big), func(b []byte) []byte { return swapSeg(b, 1, 2) })
		}, "segment 1 of 4", ErrAuth},
		{"segment swapped between files", func(t *testing.T, dir string, _ *Manifest) {
			other, _ := os.ReadFile(sealedPath(dir, "b.bin"))
			mutate(t, sealedPath(dir, big), func(b []byte) []byte {
				copy(b[SegmentSize:2*SegmentSize], other[SegmentSize:2*SegmentSize])
				return b
			})
		}, "segment 1 of 4", ErrAuth},
		{"file swapped within the model", func(t *testing.T, dir string, _ *Manifest) {
			other, _ := os.ReadFile(sealedPath(dir, "b.bin"))
			os.WriteFile(sealedPath(dir, big), other, 0o644)
		}, "segment 0 of 4", ErrAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, key, m, d := sealed(t, files)
			tc.edit(t, dir, m)
			err := segmentAuth(dir, key, d, big)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %v with %q", err, tc.is, tc.want)
			}
			if err := openAll(dir, key, d); !errors.Is(err, tc.is) {
				t.Fatalf("Verify: %v, want %v", err, tc.is)
			}
		})
	}
}

func TestSealTruncation(t *testing.T) {
	files := map[string]int{"a.bin": 3*plainSize + 10}
	for _, tc := range []struct {
		name string
		cut  func(n int) int
	}{
		{"last segment dropped", func(n int) int { return n - (n % SegmentSize) }},
		{"cut mid-segment", func(n int) int { return n - 5 }},
		{"cut to the header", func(int) int { return HeaderSize }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, key, _, d := sealed(t, files)
			mutate(t, sealedPath(dir, "a.bin"), func(b []byte) []byte { return b[:tc.cut(len(b))] })
			if err := openAll(dir, key, d); err == nil || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("Open: %v, want a truncation error", err)
			}
			// Without the manifest's size, the stream itself refuses: a
			// segment that was not last does not open as the last.
			b, _ := os.ReadFile(sealedPath(dir, "a.bin"))
			m, _, _ := ReadManifest(dir)
			id, _ := m.id()
			r, err := NewReader(bytes.NewReader(b), int64(len(b)), key, fileAD(id, "a.bin"))
			if err == nil {
				_, err = io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
			}
			if err == nil {
				t.Fatal("a truncated stream opened")
			}
		})
	}
}

func TestSealFileSwappedBetweenModels(t *testing.T) {
	files := map[string]int{"a.bin": 2000, "b.bin": 10}
	dir1, key, _, d1 := sealed(t, files)
	// A second model sealed under the same key: its id differs, so its
	// files do not open in the first.
	src := writeTestDir(t, files)
	dir2 := filepath.Join(t.TempDir(), "sealed2")
	if _, err := Dir(src, dir2, key, "other"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(sealedPath(dir2, "a.bin"))
	os.WriteFile(sealedPath(dir1, "a.bin"), b, 0o644)
	if err := segmentAuth(dir1, key, d1, "a.bin"); !errors.Is(err, ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
}

func TestSealManifestEdits(t *testing.T) {
	files := map[string]int{"a.bin": 2000, "b.bin": 10}
	for _, tc := range []struct {
		name string
		edit func(m *Manifest)
	}{
		{"size", func(m *Manifest) { m.Files[0].Size++; m.Files[0].SealedSize++ }},
		{"digest", func(m *Manifest) { m.Files[0].SHA256 = strings.Repeat("0", 64) }},
		{"path", func(m *Manifest) { m.Files[0].Path = "a.bim" }},
		{"name", func(m *Manifest) { m.Name = "renamed" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, key, m, d := sealed(t, files)
			tc.edit(m)
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644)
			// Against the original digest: refused as a digest mismatch.
			if _, err := Open(dir, key, d); !errors.Is(err, ErrDigest) {
				t.Fatalf("Open with the expected digest: %v, want ErrDigest", err)
			}
			// Even trusting the edited manifest's own digest, the files
			// do not match it.
			d2, _ := m.Digest()
			if tc.name == "name" {
				if err := openAll(dir, key, d2); err != nil {
					t.Fatalf("a renamed model under its own digest: %v", err)
				}
				return
			}
			if err := openAll(dir, key, d2); err == nil {
				t.Fatal("an edited manifest matched the files")
			}
		})
	}
	// Non-canonical encodings are refused.
	dir, _, _, _ := sealed(t, files)
	raw, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	var anyv map[string]any
	json.Unmarshal(raw, &anyv)
	indented, _ := json.MarshalIndent(anyv, "", " ")
	for name, b := range map[string][]byte{
		"indented":      indented,
		"trailing data": append(bytes.Clone(raw), ' '),
		"unknown key":   bytes.Replace(raw, []byte(`{"construction"`), []byte(`{"extra":1,"construction"`), 1),
		"repeated key":  bytes.Replace(raw, []byte(`"name":`), []byte(`"name":"x","name":`), 1),
	} {
		if _, err := ParseManifest(b); err == nil {
			t.Errorf("%s manifest parsed", name)
		}
	}
}

func TestSealWrongKeyAndDigest(t *testing.T) {
	dir, key, _, d := sealed(t, map[string]int{"a": 10})
	if _, err := Open(dir, newKey(t), d); !errors.Is(err, ErrKey) {
		t.Fatalf("wrong key: %v, want ErrKey", err)
	}
	other := d
	other[0] ^= 1
	if _, err := Open(dir, key, other); !errors.Is(err, ErrDigest) || !strings.Contains(err.Error(), FormatDigest(d)) {
		t.Fatalf("wrong digest: %v, want ErrDigest naming %s", err, FormatDigest(d))
	}
	if _, err := Open(dir, key[:16], d); err == nil {
		t.Fatal("a 16-byte key was taken")
	}
}

func TestSealRefusesBadInput(t *testing.T) {
	key := newKey(t)
	out := func() string { return filepath.Join(t.TempDir(), "out") }

	src := writeTestDir(t, map[string]int{"a": 1})
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	if _, err := Dir(src, out(), key, "m"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlink: %v", err)
	}
	src = writeTestDir(t, map[string]int{"a b": 1})
	if _, err := Dir(src, out(), key, "m"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("space in a name: %v", err)
	}
	src = writeTestDir(t, map[string]int{"a": 1})
	if _, err := Dir(src, filepath.Join(src, "out"), key, "m"); err == nil || !strings.Contains(err.Error(), "inside") {
		t.Fatalf("dst inside src: %v", err)
	}
	existing := t.TempDir()
	if _, err := Dir(src, existing, key, "m"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("existing dst: %v", err)
	}
	if _, err := Dir(t.TempDir(), out(), key, "m"); err == nil || !strings.Contains(err.Error(), "no files") {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := Dir(src, out(), key[:31], "m"); err == nil {
		t.Fatal("short key taken")
	}
	if _, err := Dir(src, out(), key, "bad\nname"); err == nil {
		t.Fatal("control character in a name taken")
	}
	for _, p := range []string{"../x", "/abs", "a//b", "a/./b", "a/../b", ".", "a\\b", strings.Repeat("a/", 40) + "x"} {
		if CheckPath(p) == nil {
			t.Errorf("CheckPath(%q) passed", p)
		}
	}
	// A manifest whose path climbs out is refused before any file opens.
	dir, key, m, _ := sealed(t, map[string]int{"a": 1})
	m.Files[0].Path = "../a"
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644)
	if _, err := Open(dir, key, sha256.Sum256(b)); err == nil {
		t.Fatal("a manifest path with .. was opened")
	}
	// A sealed file replaced by a symlink is refused.
	dir, key, _, d := sealed(t, map[string]int{"a": 1})
	os.Remove(sealedPath(dir, "a"))
	os.Symlink("/etc/passwd", sealedPath(dir, "a"))
	if _, err := Open(dir, key, d); err == nil {
		t.Fatal("a symlinked sealed file was opened")
	}
}

func TestSealStreamWriter(t *testing.T) {
	// Writes of every size produce the same stream as one write.
	key := newKey(t)
	data := make([]byte, 2*plainSize+77)
	rand.Read(data)
	var seq []byte
	for _, chunk := range []int{1, 4096, plainSize, len(data)} {
		var buf bytes.Buffer
		w, err := newWriter(&buf, key, []byte("ad"), bytes.NewReader(make([]byte, 64)))
		if err != nil {
			t.Fatal(err)
		}
		for p := data; len(p) > 0; {
			n := min(chunk, len(p))
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if seq == nil {
			seq = buf.Bytes()
		} else if !bytes.Equal(seq, buf.Bytes()) {
			t.Fatalf("chunk %d: different stream", chunk)
		}
	}
	// ReadFrom (io.Copy from a reader) gives the same stream too.
	for _, chunk := range []int{1, 1000, plainSize + 1, len(data)} {
		var buf bytes.Buffer
		w, _ := newWriter(&buf, key, []byte("ad"), bytes.NewReader(make([]byte, 64)))
		w.Write(data[:chunk%7])
		if _, err := io.Copy(w, &chunkReader{data[chunk%7:], chunk}); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if !bytes.Equal(seq, buf.Bytes()) {
			t.Fatalf("ReadFrom in %d-byte reads: different stream", chunk)
		}
	}
	r, err := NewReader(bytes.NewReader(seq), int64(len(seq)), key, []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := NewReader(bytes.NewReader(seq), int64(len(seq)), key, []byte("other")); err != nil {
		t.Fatal(err)
	} else if r2, _ := NewReader(bytes.NewReader(seq), int64(len(seq)), key, []byte("other")); func() error { _, err := r2.ReadSegment(0); return err }() == nil {
		t.Fatal("other associated data opened the stream")
	}
}

func TestSealConcurrentReadAt(t *testing.T) {
	dir, key, _, d := sealed(t, map[string]int{"w": 3*plainSize + 5})
	m, err := Open(dir, key, d)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want, err := m.ReadFile("w")
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Open("w")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			buf := make([]byte, 777)
			for i := range 50 {
				off := int64((g*50+i)*7919) % (int64(len(want)) - 777)
				if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, want[off:off+777]) {
					errs <- fmt.Errorf("ReadAt %d: %v", off, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// chunkReader yields at most n bytes a read, and is not an io.WriterTo.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}
