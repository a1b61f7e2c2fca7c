package node_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/node"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/seal/volume"
	"github.com/sworn-dev/sworn/up"
)

// TestOpenVolume: a node of sworn up, whose release lists a model volume
// by its dm-verity root hash, obtains the volume's key from the broker and
// maps it (where the kernel has the device mapper); a volume the released
// key does not open, and a model the node does not serve, are refused
// before anything is mapped.
func TestOpenVolume(t *testing.T) {
	for _, tool := range []string{"cryptsetup", "veritysetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: cryptsetup-bin; .ci/run installs it)", tool)
		}
	}
	ctx := t.Context()
	dir := t.TempDir()
	mk := func(name string, key []byte) (volume.Image, [32]byte) {
		img := volume.Image{Data: filepath.Join(dir, name+".img"), Hash: filepath.Join(dir, name+".verity")}
		if err := os.WriteFile(img.Data, make([]byte, 20<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := volume.Format(ctx, img.Data, key); err != nil {
			t.Fatal(err)
		}
		root, err := volume.Seal(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		return img, root
	}
	key := make([]byte, 32)
	rand.Read(key)
	img, root := mk("model", key)
	s, err := up.Start(ctx, up.Config{Dir: filepath.Join(dir, "up"), Nodes: 1, GPUs: 1, Listen: "127.0.0.1:0",
		Model: &up.Model{Name: "volume-model", Digest: root, Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pol, err := policy.Load(s.Policy)
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := url.Parse("http://127.0.0.1:1")
	n, err := node.New(node.Config{Platform: &node.SimPlatform{Seed: 21, GPUs: 1}, Policy: pol, Release: s.Release, Engine: eng,
		Models: map[string]string{"volume-model": "sha256:" + hex.EncodeToString(root[:])}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Rotate(ctx); err != nil {
		t.Fatal(err)
	}

	other, _ := mk("other", make([]byte, 32))
	if _, err := n.OpenVolume(ctx, s.KBSURL, "volume-model", other); err == nil || !strings.Contains(err.Error(), "the key does not open it") {
		t.Fatalf("a volume the released key does not open: %v", err)
	}
	if _, err := n.OpenVolume(ctx, s.KBSURL, "another-model", img); err == nil || !strings.Contains(err.Error(), "serves no model") {
		t.Fatalf("a model the node does not serve: %v", err)
	}
	p, err := n.OpenVolume(ctx, s.KBSURL, "volume-model", img)
	if errors.Is(err, volume.ErrNoDeviceMapper) {
		t.Skipf("the released key opens the volume; mapping it needs the device mapper: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer n.CloseVolume(ctx, "volume-model")
	if p != "/dev/mapper/"+node.VolumeName("volume-model") {
		t.Fatalf("mapped at %s", p)
	}
}
