package main

import (
	"crypto/rand"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/seal"
	"github.com/sworn-dev/sworn/seal/volume"
)

// newVolumeCmd is sworn model volume: model volumes, a LUKS2 image under a
// dm-verity hash tree (docs/seal.md).
func newVolumeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Make and check model volumes: a LUKS2 image under dm-verity, for large models (docs/seal.md)"}

	var keyPath, keyOut string
	format := &cobra.Command{
		Use:   "format IMAGE (--key-out FILE | --key FILE)",
		Short: "Make IMAGE (a file or block device) a LUKS2 volume under a 32-byte model key",
		Long: `format makes IMAGE a LUKS2 volume whose one keyslot takes the model key:
a new random key saved to --key-out, or --key FILE. Then, on a machine with
the device mapper, open it (cryptsetup open --key-file KEY IMAGE NAME), make
a file system on /dev/mapper/NAME, copy the model's files in, close it, and
run sworn model volume seal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (keyPath == "") == (keyOut == "") {
				return usageErr("model volume format: give --key-out FILE (a new key) or --key FILE (an existing one)")
			}
			var key []byte
			if keyPath != "" {
				k, err := readModelKey(keyPath)
				if err != nil {
					return err
				}
				key = k
			} else {
				if _, err := os.Lstat(keyOut); err == nil {
					return usageErr("--key-out %s already exists; choose a new file (a key is never overwritten)", keyOut)
				}
				key = make([]byte, seal.KeySize)
				rand.Read(key)
			}
			defer clear(key)
			if err := volume.Format(cmd.Context(), args[0], key); err != nil {
				return failErr("model volume format: %v", err)
			}
			if keyOut != "" {
				if err := createExclusive(keyOut, string(key), 0o600); err != nil {
					return failErr("model volume format: %v; %s is formatted under a key that is now lost: format it again", err, args[0])
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "formatted %s as LUKS2; fill it, then: sworn model volume seal %s --hash FILE\n", args[0], args[0])
			return nil
		},
	}
	format.Flags().StringVar(&keyPath, "key", "", "an existing model key `FILE` (32 bytes)")
	format.Flags().StringVar(&keyOut, "key-out", "", "save a new model key to `FILE` (mode 0600; must not exist)")

	var hash, name, kbsURL, tokenFile string
	sealCmd := &cobra.Command{
		Use:   "seal IMAGE --hash FILE [--kbs URL --admin-token FILE --key FILE --name NAME]",
		Short: "Write the volume's dm-verity hash tree and print its root hash: the model digest",
		Long: `seal writes the dm-verity hash tree (SHA-256, 4 KiB blocks) of the whole
volume IMAGE, LUKS2 header included, to --hash FILE and prints the model
digest, sha256:ROOT — what release records, policies and the key broker name.
Seal the volume once its content is final. With --kbs it registers --key
with the broker under that digest.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hash == "" {
				return usageErr("model volume seal: --hash FILE is required")
			}
			if kbsURL != "" && (tokenFile == "" || keyPath == "") {
				return usageErr("model volume seal: --kbs needs --admin-token FILE and --key FILE")
			}
			root, err := volume.Seal(cmd.Context(), volume.Image{Data: args[0], Hash: hash})
			if err != nil {
				return failErr("model volume seal: %v", err)
			}
			digest := kbs.FormatDigest(root)
			if kbsURL != "" {
				key, err := readModelKey(keyPath)
				if err != nil {
					return err
				}
				defer clear(key)
				if err := volume.CheckKey(cmd.Context(), args[0], key); err != nil {
					return failErr("model volume seal: %v", err)
				}
				if err := registerModelKey(kbsURL, tokenFile, name, digest, key); err != nil {
					return failErr("%v; the volume is sealed (%s): register its key later with sworn kbs register", err, digest)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "registered its key with %s\n", kbsURL)
			}
			fmt.Fprintln(cmd.OutOrStdout(), digest)
			return nil
		},
	}
	f := sealCmd.Flags()
	f.StringVar(&hash, "hash", "", "the hash tree `FILE` (or block device) to write")
	f.StringVar(&kbsURL, "kbs", "", "register the key with the key broker at `URL`")
	f.StringVar(&tokenFile, "admin-token", "", "the broker's admin token `FILE`")
	f.StringVar(&keyPath, "key", "", "the volume's model key `FILE` (with --kbs)")
	f.StringVar(&name, "name", "", "the model's `NAME` (with --kbs)")

	var model string
	verify := &cobra.Command{
		Use:   "verify IMAGE --hash FILE --model sha256:ROOT [--key FILE]",
		Short: "Check every block of a volume against its model digest, and that a key opens it (exit 0 verified, 1 not)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hash == "" || model == "" {
				return usageErr("model volume verify: --hash and --model are required")
			}
			root, err := kbs.ParseDigest(model)
			if err != nil {
				return usageErr("--model: %v", err)
			}
			img := volume.Image{Data: args[0], Hash: hash}
			err = volume.Verify(cmd.Context(), img, root)
			if err == nil && keyPath != "" {
				key, kerr := readModelKey(keyPath)
				if kerr != nil {
					return kerr
				}
				defer clear(key)
				err = volume.CheckKey(cmd.Context(), args[0], key)
			}
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "not verified: %v\n", err)
				return errNotVerified
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verified: %s is %s, every block checked\n", args[0], model)
			return nil
		},
	}
	verify.Flags().StringVar(&hash, "hash", "", "the volume's hash tree `FILE`")
	verify.Flags().StringVar(&model, "model", "", "the model digest, `sha256:ROOT`")
	verify.Flags().StringVar(&keyPath, "key", "", "also check that the key in `FILE` opens the volume")
	cmd.AddCommand(format, sealCmd, verify)
	return cmd
}

// readModelKey reads a 32-byte model key from path.
func readModelKey(path string) ([]byte, error) {
	k, err := readInput("--key", path)
	if err != nil {
		return nil, err
	}
	if len(k) != seal.KeySize {
		return nil, usageErr("--key %s is %d bytes; a model key is %d random bytes (head -c 32 /dev/urandom > model.key)", path, len(k), seal.KeySize)
	}
	return k, nil
}
