package interop

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tink-crypto/tink-go/v2/streamingaead/subtle"

	"github.com/sworn-dev/sworn/seal"
)

// sizes cover the segment boundaries of a 1 MiB ciphertext segment with a
// 40-byte header: the first segment holds 1048520 plaintext bytes, the
// others 1048560.
var sizes = []int{0, 1, 1048519, 1048520, 1048521, 1 << 20, 1<<20 + 1, 1048520 + 1048560, 3*1048560 + 12345}

func tink(t *testing.T, key []byte) *subtle.AESGCMHKDF {
	a, err := subtle.NewAESGCMHKDF(key, "SHA256", 32, seal.SegmentSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSealToTink(t *testing.T) {
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	ad := []byte("sworn seal v1\x00 associated data")
	for _, n := range sizes {
		pt := make([]byte, n)
		rand.Read(pt)
		var ct bytes.Buffer
		w, err := seal.NewWriter(&ct, key, ad)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(pt)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if int64(ct.Len()) != seal.SealedSize(int64(n)) {
			t.Fatalf("%d bytes: sealed %d, SealedSize says %d", n, ct.Len(), seal.SealedSize(int64(n)))
		}
		r, err := tink(t, key).NewDecryptingReader(bytes.NewReader(ct.Bytes()), ad)
		if err != nil {
			t.Fatalf("%d bytes: tink: %v", n, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: tink opened %d bytes, %v", n, len(got), err)
		}
	}
}

func TestTinkToSeal(t *testing.T) {
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	ad := []byte("sworn seal v1\x00 associated data")
	for _, n := range sizes {
		pt := make([]byte, n)
		rand.Read(pt)
		var ct bytes.Buffer
		w, err := tink(t, key).NewEncryptingWriter(&ct, ad)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(pt)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if int64(ct.Len()) != seal.SealedSize(int64(n)) {
			t.Fatalf("%d bytes: tink sealed %d, SealedSize says %d", n, ct.Len(), seal.SealedSize(int64(n)))
		}
		r, err := seal.NewReader(bytes.NewReader(ct.Bytes()), int64(ct.Len()), key, ad)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: seal opened %d bytes, %v", n, len(got), err)
		}
		// Random access into Tink's stream: the last 100 bytes alone.
		if n > 100 {
			tail := make([]byte, 100)
			if _, err := r.ReadAt(tail, int64(n-100)); err != nil || !bytes.Equal(tail, pt[n-100:]) {
				t.Fatalf("%d bytes: ReadAt the tail: %v", n, err)
			}
		}
	}
}

// TestVectorsOpenWithTink: every sealed file of seal/testdata/vectors.json
// opens with Tink under the file's associated data as docs/seal.md
// defines it: "sworn seal v1" 0x00 ‖ model id (16 bytes) ‖ path.
func TestVectorsOpenWithTink(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Model struct {
			Key     string `json:"key"`
			ModelID string `json:"model_id"`
			Files   []struct {
				Path, Plaintext, Sealed string
			} `json:"files"`
		} `json:"model"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	key, _ := hex.DecodeString(v.Model.Key)
	id, _ := hex.DecodeString(v.Model.ModelID)
	for _, f := range v.Model.Files {
		ad := append(append([]byte("sworn seal v1\x00"), id...), f.Path...)
		ct, _ := hex.DecodeString(f.Sealed)
		r, err := tink(t, key).NewDecryptingReader(bytes.NewReader(ct), ad)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := io.ReadAll(r)
		if err != nil || hex.EncodeToString(pt) != f.Plaintext {
			t.Fatalf("%s: Tink: %v", f.Path, err)
		}
	}
}
