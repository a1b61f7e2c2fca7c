package seal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Identifiers and bounds of the manifest.
const (
	// Format names the sealed-model format in its manifest.
	Format = "sworn-sealed-model/v1"
	// Construction names the per-file streaming AEAD.
	Construction = "AES256_GCM_HKDF_1MB"
	// ManifestFile is the manifest's name in a sealed directory; the
	// sealed files lie under FilesDir.
	ManifestFile = "manifest.json"
	// FilesDir is the folder of a sealed directory that holds the sealed
	// files, at their paths in the manifest.
	FilesDir = "files"

	// MaxFiles bounds the files of one model.
	MaxFiles = 10000
	// MaxFileSize bounds one file's plaintext: 1 TiB.
	MaxFileSize = 1 << 40
	// MaxManifestSize bounds the encoded manifest.
	MaxManifestSize = 8 << 20
	// MaxPathLen bounds a file's path in bytes.
	MaxPathLen = 512
	// MaxPathDepth bounds the number of components of a file's path.
	MaxPathDepth = 32
	// MaxNameLen bounds the model's name in bytes.
	MaxNameLen = 128

	idSize = 16
)

// Manifest lists a sealed model's files. Its canonical encoding (Marshal)
// is what the model digest hashes. The JSON keys are in sorted order.
type Manifest struct {
	// Construction is the per-file AEAD: Construction.
	Construction string `json:"construction"`
	// Files are the model's files, sorted by path.
	Files []Entry `json:"files"`
	// Format is Format.
	Format string `json:"format"`
	// KeyCheck is HMAC-SHA256(data key, "sworn seal key check v1" 0x00
	// model id), hex: it tells a wrong key from altered files and commits
	// the manifest to one key.
	KeyCheck string `json:"key_check"`
	// ModelID is 16 random bytes, hex, chosen when the model was sealed;
	// every file's associated data holds it.
	ModelID string `json:"model_id"`
	// Name is the model's name, for people; it is not bound into files.
	Name string `json:"name"`
	// SegmentSize is the ciphertext segment size: SegmentSize.
	SegmentSize int64 `json:"segment_size"`
}

// Entry is one file of a sealed model.
type Entry struct {
	// Path is the file's relative path, '/'-separated.
	Path string `json:"path"`
	// SealedSHA256 is the hex SHA-256 of the sealed file.
	SealedSHA256 string `json:"sealed_sha256"`
	// SealedSize is the sealed file's size: SealedSize(Size).
	SealedSize int64 `json:"sealed_size"`
	// SHA256 is the hex SHA-256 of the plaintext.
	SHA256 string `json:"sha256"`
	// Size is the plaintext size.
	Size int64 `json:"size"`
}

// Marshal returns the manifest's canonical encoding: JSON with sorted
// keys, no insignificant white space, files sorted by path.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// Digest is the model digest: the SHA-256 of the canonical manifest.
func (m *Manifest) Digest() ([32]byte, error) {
	b, err := m.Marshal()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// FormatDigest writes a model digest as "sha256:<64 hex digits>".
func FormatDigest(d [32]byte) string { return "sha256:" + hex.EncodeToString(d[:]) }

// ParseManifest decodes a manifest, which must be valid and in canonical
// encoding: anything else (unknown or repeated keys, another order,
// white space) is refused, so that one model has one digest.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("manifest is %d bytes, over the %d-byte bound", len(b), MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest is not valid: %v", err)
	}
	if dec.More() {
		return nil, errors.New("manifest has data after its JSON object")
	}
	canon, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, errors.New("manifest is not in canonical encoding (sorted keys, no white space, as seal writes it)")
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if m.Format != Format {
		return fmt.Errorf("manifest format %q, want %q", clip(m.Format), Format)
	}
	if m.Construction != Construction {
		return fmt.Errorf("manifest construction %q is not supported (want %q)", clip(m.Construction), Construction)
	}
	if m.SegmentSize != SegmentSize {
		return fmt.Errorf("manifest segment size %d, want %d", m.SegmentSize, SegmentSize)
	}
	if _, err := m.id(); err != nil {
		return err
	}
	if k, err := hex.DecodeString(m.KeyCheck); err != nil || len(k) != sha256.Size || m.KeyCheck != strings.ToLower(m.KeyCheck) {
		return errors.New("manifest key_check is not 64 lower-case hex digits")
	}
	if err := checkName(m.Name); err != nil {
		return err
	}
	if len(m.Files) == 0 {
		return errors.New("manifest lists no files")
	}
	if len(m.Files) > MaxFiles {
		return fmt.Errorf("manifest lists %d files, over the bound of %d", len(m.Files), MaxFiles)
	}
	dirs := map[string]bool{}
	files := map[string]bool{}
	for i, f := range m.Files {
		if err := CheckPath(f.Path); err != nil {
			return fmt.Errorf("manifest file %d: %v", i, err)
		}
		if i > 0 && m.Files[i-1].Path >= f.Path {
			return fmt.Errorf("manifest files are not sorted by path, or repeat one, at %q", f.Path)
		}
		if f.Size < 0 || f.Size > MaxFileSize {
			return fmt.Errorf("manifest file %q: size %d out of range (0 to %d)", f.Path, f.Size, int64(MaxFileSize))
		}
		if f.SealedSize != SealedSize(f.Size) {
			return fmt.Errorf("manifest file %q: sealed size %d does not match plaintext size %d (want %d)", f.Path, f.SealedSize, f.Size, SealedSize(f.Size))
		}
		if !isHexDigest(f.SHA256) || !isHexDigest(f.SealedSHA256) {
			return fmt.Errorf("manifest file %q: sha256 and sealed_sha256 must be 64 lower-case hex digits", f.Path)
		}
		files[f.Path] = true
		for d := f.Path; ; {
			j := strings.LastIndexByte(d, '/')
			if j < 0 {
				break
			}
			d = d[:j]
			dirs[d] = true
		}
	}
	for d := range dirs {
		if files[d] {
			return fmt.Errorf("manifest lists %q both as a file and as a folder", d)
		}
	}
	return nil
}

func (m *Manifest) id() ([idSize]byte, error) {
	b, err := hex.DecodeString(m.ModelID)
	if err != nil || len(b) != idSize || m.ModelID != strings.ToLower(m.ModelID) {
		return [idSize]byte{}, errors.New("manifest model_id is not 32 lower-case hex digits")
	}
	return [idSize]byte(b), nil
}

// Entry returns the manifest's entry for path.
func (m *Manifest) Entry(path string) (*Entry, bool) {
	for i := range m.Files {
		if m.Files[i].Path == path {
			return &m.Files[i], true
		}
	}
	return nil, false
}

// TotalSize is the plaintext size of all files.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

func isHexDigest(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && s == strings.ToLower(s)
}

// keyCheck is the manifest's key_check for key and model id.
func keyCheck(key []byte, id [idSize]byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("sworn seal key check v1\x00"))
	h.Write(id[:])
	return h.Sum(nil)
}

// fileAD is a file's associated data: the label, the model id and the
// file's path. It binds every segment to one file of one model.
func fileAD(id [idSize]byte, path string) []byte {
	ad := make([]byte, 0, 15+idSize+len(path))
	ad = append(ad, "sworn seal v1\x00"...)
	ad = append(ad, id[:]...)
	return append(ad, path...)
}

// CheckPath reports whether p is an acceptable file path in a sealed
// model: relative, '/'-separated, no "." or ".." or empty components,
// each component of letters, digits and "._-+=@,~", bounded in length and
// depth.
func CheckPath(p string) error {
	if p == "" || len(p) > MaxPathLen {
		return fmt.Errorf("path %q: empty or over %d bytes", clip(p), MaxPathLen)
	}
	parts := strings.Split(p, "/")
	if len(parts) > MaxPathDepth {
		return fmt.Errorf("path %q: deeper than %d", clip(p), MaxPathDepth)
	}
	for _, c := range parts {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("path %q: empty, \".\" or \"..\" component (paths are relative and clean)", clip(p))
		}
		for _, r := range c {
			if !(r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+=@,~", r))) {
				return fmt.Errorf("path %q: character %q is not allowed (letters, digits and ._-+=@,~ only)", clip(p), r)
			}
		}
	}
	return nil
}

func checkName(n string) error {
	if n == "" || len(n) > MaxNameLen || !utf8.ValidString(n) {
		return fmt.Errorf("model name %q: want 1 to %d bytes of UTF-8", clip(n), MaxNameLen)
	}
	for _, r := range n {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("model name %q: character %q is not printable", clip(n), r)
		}
	}
	return nil
}

// clip bounds a string quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
