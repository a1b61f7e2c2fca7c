package seal

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseHeader(f *testing.F) {
	h := Header{}
	f.Add(h.Marshal())
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{HeaderSize}, HeaderSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Marshal(), b) {
			t.Fatalf("header %x re-encodes to %x", b, h.Marshal())
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "vectors.json")); err == nil {
		var v sealVectors
		if json.Unmarshal(b, &v) == nil {
			f.Add([]byte(v.Model.Manifest))
		}
	}
	f.Add([]byte(`{"construction":"AES256_GCM_HKDF_1MB","files":[{"path":"a","sealed_sha256":"` + hex64 + `","sealed_size":56,"sha256":"` + hex64 + `","size":0}],"format":"sworn-sealed-model/v1","key_check":"` + hex64 + `","model_id":"00000000000000000000000000000000","name":"m","segment_size":1048576}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted manifest does not re-encode to itself: %v", err)
		}
		for _, e := range m.Files {
			if CheckPath(e.Path) != nil || e.SealedSize != SealedSize(e.Size) {
				t.Fatalf("accepted a bad entry %+v", e)
			}
		}
	})
}

// FuzzReader opens arbitrary bytes as a sealed stream: it must fail
// cleanly, never panic.
func FuzzReader(f *testing.F) {
	key := fixed("fuzz key", KeySize)
	var buf bytes.Buffer
	w, _ := newWriter(&buf, key, nil, bytes.NewReader(make([]byte, 64)))
	w.Write([]byte("hello, sealed world"))
	w.Close()
	f.Add(buf.Bytes(), int64(0))
	f.Add([]byte{}, int64(5))
	f.Fuzz(func(t *testing.T, b []byte, off int64) {
		r, err := NewReader(bytes.NewReader(b), int64(len(b)), key, nil)
		if err != nil {
			return
		}
		p := make([]byte, 64)
		r.ReadAt(p, off)
		r.ReadSegment(off)
	})
}

const hex64 = "0000000000000000000000000000000000000000000000000000000000000000"
