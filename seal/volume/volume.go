// Package volume opens a model volume: a LUKS2 (dm-crypt) image whose key
// the key broker releases, under a dm-verity hash tree whose root hash is
// the model digest a release record names.
//
// The hash tree covers the whole LUKS2 image, header and ciphertext, so
// the root hash pins exactly what the node reads, and the key, bound to
// that digest by the broker, opens it. A model of hundreds of gigabytes
// is then read at the speed of the disk, decrypted and checked block by
// block by the kernel as the engine reads it, instead of being unsealed
// into memory first (docs/seal.md says when to use which).
//
// The work is done by cryptsetup and veritysetup (Debian: cryptsetup-bin);
// the key goes to them on standard input, never in an argument or a file.
// Format, Seal, Verify and CheckKey run in user space; Open and Close need
// the kernel's device mapper (dm-crypt and dm-verity) and root.
package volume

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// ErrNoDeviceMapper is returned by Open where the kernel has no device
// mapper (no dm_mod, or not root).
var ErrNoDeviceMapper = errors.New("the kernel's device mapper is not available (dm_mod, dm_crypt and dm_verity, as root)")

// Image is a model volume: the LUKS2 image and its dm-verity hash tree,
// each a file or a block device.
type Image struct {
	Data string
	Hash string
}

// maxOutput bounds what a tool may print.
const maxOutput = 64 << 10

// run runs a cryptsetup tool with stdin, returning its standard output.
func run(ctx context.Context, stdin []byte, tool string, args ...string) (string, error) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return "", fmt.Errorf("%s is not installed (Debian: apt-get install cryptsetup-bin)", tool)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{&out}, &limited{&errb}
	err = cmd.Run()
	msg := strings.TrimSpace(errb.String())
	if strings.Contains(msg, "device-mapper") || strings.Contains(msg, "dm_mod") {
		return "", fmt.Errorf("%w: %s", ErrNoDeviceMapper, msg)
	}
	if err != nil {
		if msg == "" {
			msg = err.Error()
		}
		return "", errors.New(msg)
	}
	return out.String(), nil
}

// limited keeps at most maxOutput bytes.
type limited struct{ b *bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if room := maxOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Format makes img.Data a LUKS2 image whose only keyslot takes key (a
// random 32-byte model key). The key has full entropy, so the keyslot's
// key derivation is PBKDF2 with few iterations: a memory-hard KDF would
// only slow every node's start. Put the model's files into it (open it,
// make a file system, copy, close) before Seal.
func Format(ctx context.Context, data string, key []byte) error {
	if len(key) != 32 {
		return fmt.Errorf("volume %s: a model key is 32 bytes, not %d", data, len(key))
	}
	_, err := run(ctx, key, "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--key-file", "-",
		"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--cipher", "aes-xts-plain64", "--key-size", "512", data)
	if err != nil {
		return fmt.Errorf("volume %s: formatting: %v", data, err)
	}
	return nil
}

var rootRE = regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]{64})\s*$`)

// Seal writes img.Hash, the dm-verity hash tree (SHA-256, 4 KiB blocks)
// of img.Data, and returns its root hash: the model digest. Seal the
// image once its content is final; any later change to it fails Verify.
func Seal(ctx context.Context, img Image) ([32]byte, error) {
	out, err := run(ctx, nil, "veritysetup", "format", "--hash", "sha256", img.Data, img.Hash)
	if err != nil {
		return [32]byte{}, fmt.Errorf("volume %s: hash tree: %v", img.Data, err)
	}
	m := rootRE.FindStringSubmatch(out)
	if m == nil {
		return [32]byte{}, fmt.Errorf("volume %s: veritysetup printed no root hash", img.Data)
	}
	b, _ := hex.DecodeString(m[1])
	return [32]byte(b), nil
}

// Verify checks every block of img.Data against its hash tree and root,
// the model digest the node's release names.
func Verify(ctx context.Context, img Image, root [32]byte) error {
	if _, err := run(ctx, nil, "veritysetup", "verify", img.Data, img.Hash, hex.EncodeToString(root[:])); err != nil {
		return fmt.Errorf("volume %s: it is not the volume of model sha256:%x (its blocks or hash tree %s do not give that root hash): %v", img.Data, root[:8], img.Hash, err)
	}
	return nil
}

// CheckKey reports whether key opens a keyslot of the LUKS2 image data.
func CheckKey(ctx context.Context, data string, key []byte) error {
	if _, err := run(ctx, key, "cryptsetup", "open", "--test-passphrase", "--type", "luks2", "--key-file", "-", data); err != nil {
		return fmt.Errorf("volume %s: the key does not open it: the broker released another model's key, or the image is another one: %v", data, err)
	}
	return nil
}

// Open maps img read-only as /dev/mapper/NAME: dm-verity over the image
// under root (every block checked as it is read), then dm-crypt under key
// over the verified device. It returns the mapped device, for a read-only
// mount the engine reads from.
func Open(ctx context.Context, img Image, name string, root [32]byte, key []byte) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("volume name %q: use letters, digits, '-' and '_'", name)
	}
	verity := name + "-verity"
	if _, err := run(ctx, nil, "veritysetup", "open", img.Data, verity, img.Hash, hex.EncodeToString(root[:])); err != nil {
		return "", fmt.Errorf("volume %s: dm-verity: %w", img.Data, err)
	}
	if _, err := run(ctx, key, "cryptsetup", "open", "--type", "luks2", "--readonly", "--key-file", "-", "/dev/mapper/"+verity, name); err != nil {
		run(context.WithoutCancel(ctx), nil, "veritysetup", "close", verity)
		return "", fmt.Errorf("volume %s: dm-crypt: %w", img.Data, err)
	}
	return "/dev/mapper/" + name, nil
}

// Close unmaps a volume Open mapped.
func Close(ctx context.Context, name string) error {
	_, err := run(ctx, nil, "cryptsetup", "close", name)
	if _, verr := run(ctx, nil, "veritysetup", "close", name+"-verity"); err == nil {
		err = verr
	}
	return err
}

func validName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
