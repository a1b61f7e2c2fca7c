package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/sworn-dev/sworn/seal/volume"
)

// OpenVolume obtains the key of the node's model name (Config.Models
// names its digest: the volume's dm-verity root hash) from the key broker
// at kbsURL and maps the volume img read-only: dm-verity under that root,
// so every block the engine reads is the released one, then dm-crypt
// under the key. It returns the mapped device, which the engine mounts
// read-only; CloseVolume unmaps it. A key that does not open the volume,
// or a hash tree of another root, fails before anything is mapped.
func (n *Node) OpenVolume(ctx context.Context, kbsURL, name string, img volume.Image) (string, error) {
	ds, ok := n.cfg.Models[name]
	if !ok {
		return "", fmt.Errorf("volume %s: the node serves no model %q (give its digest, the volume's root hash, with --model)", img.Data, name)
	}
	h, ok := strings.CutPrefix(ds, "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != 32 {
		return "", fmt.Errorf("model %s: digest %q is not sha256:<64 hex digits>", name, ds)
	}
	root := [32]byte(b)
	key, err := n.FetchModelKey(ctx, kbsURL, root)
	if err != nil {
		return "", fmt.Errorf("model %s: %v", name, err)
	}
	defer clear(key)
	if err := volume.CheckKey(ctx, img.Data, key); err != nil {
		return "", err
	}
	return volume.Open(ctx, img, VolumeName(name), root, key)
}

// CloseVolume unmaps the volume OpenVolume mapped for model name.
func (n *Node) CloseVolume(ctx context.Context, name string) error {
	return volume.Close(ctx, VolumeName(name))
}

// VolumeName is the device-mapper name of model name's volume.
func VolumeName(model string) string {
	out := []byte("sworn-")
	for _, c := range []byte(model) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			out = append(out, c)
		default:
			out = append(out, '_')
		}
	}
	return string(out[:min(len(out), 64)])
}
