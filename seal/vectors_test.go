package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "regenerate seal/testdata/vectors.json")

// sealVectors are the seal package's test vectors (seal/testdata/
// vectors.json, described in docs/seal.md). Sealing draws randomness, so
// a vector fixes it: the model id, and each file's salt and nonce prefix.
// An implementation given the key, those and the files must produce the
// manifest, the model digest and the sealed files exactly. Regenerate with:
//
//	go test ./seal -run TestSealVectors -update
type sealVectors struct {
	Note   string       `json:"note"`
	Model  modelVector  `json:"model"`
	Stream streamVector `json:"stream"`
}

type modelVector struct {
	Key         string       `json:"key"`
	Name        string       `json:"name"`
	ModelID     string       `json:"model_id"`
	Files       []fileVector `json:"files"`
	Manifest    string       `json:"manifest"`
	ModelDigest string       `json:"model_digest"`
}

type fileVector struct {
	Path        string `json:"path"`
	Salt        string `json:"salt"`
	NoncePrefix string `json:"nonce_prefix"`
	Plaintext   string `json:"plaintext"`
	Sealed      string `json:"sealed"`
}

// streamVector is one three-segment stream, too large to list: its
// plaintext is byte i = i mod 251, and the vector gives its SHA-256 and
// the sealed stream's.
type streamVector struct {
	Key            string `json:"key"`
	AssociatedData string `json:"associated_data"`
	Salt           string `json:"salt"`
	NoncePrefix    string `json:"nonce_prefix"`
	Size           int64  `json:"plaintext_size"`
	PlainSHA256    string `json:"plaintext_sha256"`
	SealedSize     int64  `json:"sealed_size"`
	SealedSHA256   string `json:"sealed_sha256"`
}

func fixed(label string, n int) []byte {
	b := bytes.Repeat([]byte(label), n/len(label)+1)
	return b[:n]
}

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func makeVectors(t *testing.T) sealVectors {
	key := fixed("sworn seal test vector key ", KeySize)
	files := []struct{ path, content string }{
		{"config.json", `{"architectures":["Echo"],"vocab_size":8}`},
		{"empty", ""},
		{"weights/model.safetensors", "\x08\x00\x00\x00\x00\x00\x00\x00{}      sworn"},
	}
	src := t.TempDir()
	mv := modelVector{Key: hex.EncodeToString(key), Name: "vector-model"}
	id := fixed("model id", idSize)
	mv.ModelID = hex.EncodeToString(id)
	random := bytes.NewBuffer(bytes.Clone(id))
	for i, f := range files {
		full := filepath.Join(src, filepath.FromSlash(f.path))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
		salt, prefix := fixed(string(rune('a'+i))+" salt ", saltSize), fixed(string(rune('a'+i))+"nonce", noncePrefixSize)
		random.Write(salt)
		random.Write(prefix)
		mv.Files = append(mv.Files, fileVector{Path: f.path, Salt: hex.EncodeToString(salt), NoncePrefix: hex.EncodeToString(prefix), Plaintext: hex.EncodeToString([]byte(f.content))})
	}
	dst := filepath.Join(t.TempDir(), "sealed")
	m, err := sealDir(src, dst, key, mv.Name, random)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := m.Marshal()
	mv.Manifest = string(raw)
	d, _ := m.Digest()
	mv.ModelDigest = FormatDigest(d)
	for i := range mv.Files {
		b, err := os.ReadFile(sealedPath(dst, mv.Files[i].Path))
		if err != nil {
			t.Fatal(err)
		}
		mv.Files[i].Sealed = hex.EncodeToString(b)
	}

	sv := streamVector{Key: hex.EncodeToString(fixed("stream key", KeySize)), AssociatedData: hex.EncodeToString([]byte("sworn seal v1\x00stream vector")),
		Salt: hex.EncodeToString(fixed("stream salt", saltSize)), NoncePrefix: hex.EncodeToString(fixed("prefix", noncePrefixSize)), Size: firstPlain + plainSize + 1000}
	pt := make([]byte, sv.Size)
	for i := range pt {
		pt[i] = byte(i % 251)
	}
	var ct bytes.Buffer
	w, err := newWriter(&ct, unhexT(t, sv.Key), unhexT(t, sv.AssociatedData), bytes.NewReader(append(unhexT(t, sv.Salt), unhexT(t, sv.NoncePrefix)...)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pt)
	w.Close()
	ph, ch := sha256.Sum256(pt), sha256.Sum256(ct.Bytes())
	sv.PlainSHA256, sv.SealedSize, sv.SealedSHA256 = hex.EncodeToString(ph[:]), int64(ct.Len()), hex.EncodeToString(ch[:])
	return sealVectors{Note: "sworn sealed-weights vectors; see docs/seal.md. Regenerate: go test ./seal -run TestSealVectors -update", Model: mv, Stream: sv}
}

func TestSealVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	got := makeVectors(t)
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want sealVectors
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("sealing with the vectors' inputs no longer gives %s (run with -update only if the format changed on purpose)", path)
	}
	// The stored sealed files open, through the public API, to the stored
	// plaintexts under the stored digest.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(want.Model.Manifest), 0o644)
	for _, f := range want.Model.Files {
		p := sealedPath(dir, f.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, unhexT(t, f.Sealed), 0o644)
	}
	d := sha256.Sum256([]byte(want.Model.Manifest))
	if FormatDigest(d) != want.Model.ModelDigest {
		t.Fatal("model_digest is not the SHA-256 of manifest")
	}
	m, err := Open(dir, unhexT(t, want.Model.Key), d)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, f := range want.Model.Files {
		pt, err := m.ReadFile(f.Path)
		if err != nil || hex.EncodeToString(pt) != f.Plaintext {
			t.Fatalf("%s: %v", f.Path, err)
		}
	}
}
