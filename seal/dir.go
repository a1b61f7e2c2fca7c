package seal

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrDigest is returned (wrapped) when a sealed model's manifest does not
// have the expected model digest.
var ErrDigest = errors.New("model digest does not match")

// ErrKey is returned (wrapped) when the data key is not the one the
// model was sealed with.
var ErrKey = errors.New("not the model's data key")

// Dir seals every regular file under src into a new directory dst, which
// must not exist, under key (KeySize random bytes) and returns the
// manifest; its Digest is the model digest. Symbolic links, devices and
// paths outside the rules of CheckPath are refused. On error nothing is
// left at dst. The key is not written anywhere.
func Dir(src, dst string, key []byte, name string) (*Manifest, error) {
	return sealDir(src, dst, key, name, rand.Reader)
}

func sealDir(src, dst string, key []byte, name string, random io.Reader) (m *Manifest, err error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("a data key is %d bytes, not %d", KeySize, len(key))
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	paths, err := listFiles(src)
	if err != nil {
		return nil, err
	}
	if inside(src, dst) {
		return nil, fmt.Errorf("%s is inside the model directory %s; write the sealed model elsewhere", dst, src)
	}
	in, err := os.OpenRoot(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	if err := os.Mkdir(dst, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s already exists; seal into a new directory", dst)
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	out, err := os.OpenRoot(dst)
	if err != nil {
		return nil, err
	}
	defer out.Close()

	var id [idSize]byte
	if _, err := io.ReadFull(random, id[:]); err != nil {
		return nil, err
	}
	m = &Manifest{Construction: Construction, Format: Format, ModelID: hex.EncodeToString(id[:]), Name: name,
		SegmentSize: SegmentSize, KeyCheck: hex.EncodeToString(keyCheck(key, id))}
	for _, p := range paths {
		e, err := sealFile(in, out, p, key, fileAD(id, p), random)
		if err != nil {
			return nil, fmt.Errorf("sealing %s: %w", p, err)
		}
		m.Files = append(m.Files, *e)
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := writeSync(out, ManifestFile, b); err != nil {
		return nil, err
	}
	return m, nil
}

// listFiles walks src and returns its regular files' paths, sorted,
// refusing anything else.
func listFiles(src string) ([]string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", src)
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var paths []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if err := CheckPath(p); err != nil {
			return fmt.Errorf("%s: %v; rename it or remove it from the model directory", filepath.Join(src, p), err)
		}
		switch t := d.Type(); {
		case t.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link; seal only regular files (copy the target in place of the link)", filepath.Join(src, p))
		case !t.IsRegular():
			return fmt.Errorf("%s is not a regular file", filepath.Join(src, p))
		}
		if len(paths) == MaxFiles {
			return fmt.Errorf("%s has more than %d files", src, MaxFiles)
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s holds no files to seal", src)
	}
	sort.Strings(paths)
	return paths, nil
}

// inside reports whether dst is src or lies under it.
func inside(src, dst string) bool {
	a, err1 := filepath.Abs(src)
	b, err2 := filepath.Abs(dst)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(a, b)
	return err == nil && (rel == "." || !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != "..")
}

// sealFile seals in/p to out/files/p.
func sealFile(in, out *os.Root, p string, key, ad []byte, random io.Reader) (*Entry, error) {
	f, err := in.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	dst := path.Join(FilesDir, p)
	if err := out.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	w, err := out.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	sealedHash, plainHash := sha256.New(), sha256.New()
	sw, err := newWriter(io.MultiWriter(w, sealedHash), key, ad, random)
	if err != nil {
		return nil, err
	}
	n, err := io.CopyBuffer(sw, io.TeeReader(io.LimitReader(f, MaxFileSize+1), plainHash), make([]byte, SegmentSize))
	if err != nil {
		return nil, err
	}
	if n > MaxFileSize {
		return nil, fmt.Errorf("larger than %d bytes, the bound of one file", int64(MaxFileSize))
	}
	if err := sw.Close(); err != nil {
		return nil, err
	}
	if err := w.Sync(); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return &Entry{Path: p, Size: n, SealedSize: SealedSize(n),
		SHA256: hex.EncodeToString(plainHash.Sum(nil)), SealedSHA256: hex.EncodeToString(sealedHash.Sum(nil))}, nil
}

func writeSync(root *os.Root, name string, b []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadManifest reads and parses the manifest of the sealed directory dir
// and returns it with its raw bytes. It checks neither digest nor key.
func ReadManifest(dir string) (*Manifest, []byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	return readManifest(root)
}

func readManifest(root *os.Root) (*Manifest, []byte, error) {
	f, err := root.Open(ManifestFile)
	if err != nil {
		return nil, nil, fmt.Errorf("not a sealed model (no %s): %w", ManifestFile, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", ManifestFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, nil, err
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, nil, err
	}
	return m, b, nil
}

// Model is an opened sealed model: its manifest matched the expected
// digest and the key its key check. Its files are read with Open.
type Model struct {
	// Manifest is the verified manifest.
	Manifest *Manifest
	root     *os.Root
	key      []byte
	id       [idSize]byte
}

// Open opens the sealed model in dir under key, checking that its
// manifest has the model digest want, that key is the model's key, and
// that every sealed file is present with its sealed size. File contents
// are authenticated as they are read (Model.Open) or all at once
// (Model.Verify).
func Open(dir string, key []byte, want [32]byte) (_ *Model, err error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("a data key is %d bytes, not %d", KeySize, len(key))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			root.Close()
		}
	}()
	m, raw, err := readManifest(root)
	if err != nil {
		return nil, err
	}
	got := sha256.Sum256(raw)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return nil, fmt.Errorf("%w: the manifest's digest is %s, not the expected %s", ErrDigest, FormatDigest(got), FormatDigest(want))
	}
	id, _ := m.id()
	kc, _ := hex.DecodeString(m.KeyCheck)
	if !hmac.Equal(kc, keyCheck(key, id)) {
		return nil, fmt.Errorf("%w (its key check does not match)", ErrKey)
	}
	for _, e := range m.Files {
		st, err := root.Lstat(path.Join(FilesDir, e.Path))
		if err != nil {
			return nil, fmt.Errorf("sealed file %s: %w", e.Path, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("sealed file %s is not a regular file", e.Path)
		}
		if st.Size() != e.SealedSize {
			return nil, fmt.Errorf("sealed file %s is %d bytes, the manifest says %d: truncated or altered", e.Path, st.Size(), e.SealedSize)
		}
	}
	return &Model{Manifest: m, root: root, key: bytes.Clone(key), id: id}, nil
}

// Close releases the model and forgets its key.
func (m *Model) Close() error {
	clear(m.key)
	return m.root.Close()
}

// File is one opened file of a sealed model. It is an io.ReaderAt over
// the plaintext; each read authenticates the segments it touches.
type File struct {
	*Reader
	f     *os.File
	entry Entry
}

// Open opens the file at path (as in the manifest).
func (m *Model) Open(p string) (*File, error) {
	e, ok := m.Manifest.Entry(p)
	if !ok {
		return nil, fmt.Errorf("the sealed model has no file %q", clip(p))
	}
	f, err := m.root.Open(path.Join(FilesDir, e.Path))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() != e.SealedSize {
		f.Close()
		return nil, fmt.Errorf("sealed file %s is not the manifest's %d-byte regular file: truncated or altered", e.Path, e.SealedSize)
	}
	r, err := NewReader(f, e.SealedSize, m.key, fileAD(m.id, e.Path))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sealed file %s: %w", e.Path, err)
	}
	if r.Size() != e.Size {
		f.Close()
		return nil, fmt.Errorf("sealed file %s: plaintext size %d, the manifest says %d", e.Path, r.Size(), e.Size)
	}
	return &File{Reader: r, f: f, entry: *e}, nil
}

// Stream returns a reader of the whole plaintext, from the start.
func (f *File) Stream() io.Reader { return io.NewSectionReader(f.Reader, 0, f.Size()) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// ReadFile decrypts the file at path into memory (it allocates the
// file's size, as the verified manifest gives it) and checks its size and
// plaintext SHA-256 against the manifest.
func (m *Model) ReadFile(p string) ([]byte, error) {
	f, err := m.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]byte, 0, f.Size())
	if err := f.check(func(pt []byte) error { out = append(out, pt...); return nil }); err != nil {
		return nil, err
	}
	return out, nil
}

// check reads the file once, authenticating every segment and comparing
// the sealed and plaintext SHA-256 with the manifest; fn sees each
// segment's plaintext.
func (f *File) check(fn func(pt []byte) error) error {
	sealed, plain := sha256.New(), sha256.New()
	err := f.each(sealed, func(pt []byte) error {
		plain.Write(pt)
		return fn(pt)
	})
	if err != nil {
		return fmt.Errorf("sealed file %s: %w", f.entry.Path, err)
	}
	if hex.EncodeToString(sealed.Sum(nil)) != f.entry.SealedSHA256 {
		return fmt.Errorf("sealed file %s: %w (its SHA-256 is not the manifest's sealed_sha256)", f.entry.Path, ErrAuth)
	}
	if hex.EncodeToString(plain.Sum(nil)) != f.entry.SHA256 {
		return fmt.Errorf("sealed file %s: %w (its plaintext SHA-256 is not the manifest's sha256)", f.entry.Path, ErrAuth)
	}
	return nil
}

// Verify reads every file once, authenticating every segment and
// checking every digest in the manifest.
func (m *Model) Verify() error {
	for _, e := range m.Manifest.Files {
		f, err := m.Open(e.Path)
		if err != nil {
			return err
		}
		err = f.check(func([]byte) error { return nil })
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
