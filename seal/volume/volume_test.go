package volume

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func tools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"cryptsetup", "veritysetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: cryptsetup-bin; .ci/run installs it)", tool)
		}
	}
}

// image formats a LUKS2 image under key and seals it.
func image(t *testing.T, key []byte) (Image, [32]byte) {
	t.Helper()
	dir := t.TempDir()
	img := Image{Data: filepath.Join(dir, "model.img"), Hash: filepath.Join(dir, "model.verity")}
	if err := os.WriteFile(img.Data, make([]byte, 20<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Format(t.Context(), img.Data, key); err != nil {
		t.Fatal(err)
	}
	root, err := Seal(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	return img, root
}

func key32() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// TestVolume: the root hash pins the whole image, header and ciphertext;
// only the key it was formatted with opens it; a flipped byte anywhere,
// another root or another key is refused, each with its reason.
func TestVolume(t *testing.T) {
	tools(t)
	ctx := t.Context()
	key := key32()
	img, root := image(t, key)
	if err := Verify(ctx, img, root); err != nil {
		t.Fatal(err)
	}
	if err := CheckKey(ctx, img.Data, key); err != nil {
		t.Fatal(err)
	}
	if err := CheckKey(ctx, img.Data, key32()); err == nil || !strings.Contains(err.Error(), "the key does not open it") {
		t.Fatalf("another key: %v", err)
	}
	other := root
	other[0] ^= 1
	if err := Verify(ctx, img, other); err == nil || !strings.Contains(err.Error(), "it is not the volume of model") {
		t.Fatalf("another root: %v", err)
	}
	for _, off := range []int64{100, 8 << 20, 20<<20 - 1} { // the LUKS2 header, a keyslot, the ciphertext
		f, err := os.OpenFile(img.Data, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		f.ReadAt(b, off)
		f.WriteAt([]byte{b[0] ^ 0x01}, off)
		f.Close()
		if err := Verify(ctx, img, root); err == nil {
			t.Fatalf("a flipped byte at %d verified", off)
		}
		f, _ = os.OpenFile(img.Data, os.O_RDWR, 0)
		f.WriteAt(b, off)
		f.Close()
	}
	if err := Verify(ctx, img, root); err != nil {
		t.Fatalf("restored: %v", err)
	}
	if err := Format(ctx, img.Data, []byte("short")); err == nil {
		t.Fatal("a short key formatted a volume")
	}
}

// TestOpen maps the volume where the kernel's device mapper is available
// (as root), reads it back, and unmaps it; elsewhere it skips, saying so.
func TestOpen(t *testing.T) {
	tools(t)
	key := key32()
	img, root := image(t, key)
	if _, err := Open(t.Context(), img, "bad/name", root, key); err == nil {
		t.Fatal("a name with a slash")
	}
	p, err := Open(t.Context(), img, "sworn-volume-test", root, key)
	if errors.Is(err, ErrNoDeviceMapper) {
		t.Skipf("dm-verity and dm-crypt cannot be mapped here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer Close(t.Context(), "sworn-volume-test")
	data, err := os.ReadFile(p)
	if err != nil || len(data) < 1<<20 { // the payload after the 16 MiB LUKS2 header
		t.Fatalf("reading %s: %d bytes, %v", p, len(data), err)
	}
	if _, err := Open(t.Context(), img, "sworn-volume-test2", root, key32()); err == nil {
		t.Fatal("another key mapped the volume")
	}
}
