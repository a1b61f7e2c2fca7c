package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/seal"
)

func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Seal a model's weights, and inspect or verify a sealed model (docs/seal.md)"}

	var out, name, keyPath, keyOut, kbsURL, tokenFile string
	sealCmd := &cobra.Command{
		Use:   "seal DIR --out SEALED_DIR --name NAME (--key-out FILE | --key FILE | --kbs URL --admin-token FILE)",
		Short: "Seal every file of a model directory under a data key and print the model digest",
		Long: `seal encrypts every regular file under DIR (weights, tokenizer, config) with
the sealed-weights format into the new directory SEALED_DIR and prints the
model digest (sha256:HEX), the name release records, policies and the key
broker use. The data key is 32 random bytes, or --key FILE to reuse one;
--key-out FILE saves a new key (mode 0600); --kbs registers it with a key
broker, as sworn kbs register does. The key is never written into
SEALED_DIR.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || name == "" {
				return usageErr("model seal: --out and --name are required")
			}
			if (kbsURL == "") != (tokenFile == "") {
				return usageErr("model seal: --kbs and --admin-token go together")
			}
			if keyPath != "" && keyOut != "" {
				return usageErr("model seal: give --key (an existing key) or --key-out (save a new one), not both")
			}
			if keyPath == "" && keyOut == "" && kbsURL == "" {
				return usageErr("model seal: the new data key would be lost; give --key-out FILE to save it, --kbs URL --admin-token FILE to register it, or --key FILE to use an existing one")
			}
			if kbsURL != "" {
				if _, err := readInput("--admin-token", tokenFile); err != nil {
					return err
				}
			}
			if keyOut != "" {
				if _, err := os.Lstat(keyOut); err == nil {
					return usageErr("--key-out %s already exists; choose a new file (a key is never overwritten)", keyOut)
				}
			}
			if st, err := os.Stat(args[0]); err != nil || !st.IsDir() {
				return usageErr("model seal: %s is not a readable directory; give the model's directory", args[0])
			}
			if _, err := os.Lstat(out); err == nil {
				return usageErr("--out %s already exists; seal into a new directory", out)
			}
			var key []byte
			if keyPath != "" {
				k, err := readModelKey(keyPath)
				if err != nil {
					return err
				}
				key = k
			} else {
				key = make([]byte, seal.KeySize)
				rand.Read(key)
			}
			defer clear(key)
			m, err := seal.Dir(args[0], out, key, name)
			if err != nil {
				return usageErr("model seal: %v", err)
			}
			d, _ := m.Digest()
			digest := seal.FormatDigest(d)
			if keyOut != "" {
				if err := createExclusive(keyOut, string(key), 0o600); err != nil {
					os.RemoveAll(out)
					return failErr("model seal: %v; the sealed model was removed (its key could not be saved)", err)
				}
			}
			if kbsURL != "" {
				if err := registerModelKey(kbsURL, tokenFile, name, digest, key); err != nil {
					if keyPath == "" && keyOut == "" {
						os.RemoveAll(out)
						return failErr("%v; the sealed model was removed (its key is lost); seal again, with --key-out to keep the key", err)
					}
					return failErr("%v; the model is sealed at %s (%s): register its key later with sworn kbs register", err, out, digest)
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "sealed %d files (%d bytes) of %s into %s\n", len(m.Files), m.TotalSize(), name, out)
			if kbsURL != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "registered its key with %s\n", kbsURL)
			}
			fmt.Fprintln(cmd.OutOrStdout(), digest)
			return nil
		},
	}
	f := sealCmd.Flags()
	f.StringVar(&out, "out", "", "the new `SEALED_DIR` (must not exist)")
	f.StringVar(&name, "name", "", "the model's `NAME`")
	f.StringVar(&keyPath, "key", "", "an existing data key `FILE` (32 bytes) instead of a new one")
	f.StringVar(&keyOut, "key-out", "", "save the new data key to `FILE` (mode 0600; must not exist)")
	f.StringVar(&kbsURL, "kbs", "", "register the key with the key broker at `URL`")
	f.StringVar(&tokenFile, "admin-token", "", "the broker's admin token `FILE`")

	inspect := &cobra.Command{
		Use:   "inspect SEALED_DIR",
		Short: "Print a sealed model's manifest and model digest as JSON (nothing is verified)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, _, err := seal.ReadManifest(args[0])
			if err != nil {
				return usageErr("model inspect %s: %v", args[0], err)
			}
			d, _ := m.Digest()
			return printJSON(cmd.OutOrStdout(), struct {
				Digest   string         `json:"model_digest"`
				Manifest *seal.Manifest `json:"manifest"`
			}{seal.FormatDigest(d), m})
		},
	}

	var model string
	verify := &cobra.Command{
		Use:   "verify SEALED_DIR --key FILE --model sha256:HEX",
		Short: "Check a sealed model against its key and model digest, reading every file (exit 0 verified, 1 not)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" || model == "" {
				return usageErr("model verify: --key and --model are required")
			}
			want, err := kbs.ParseDigest(model)
			if err != nil {
				return usageErr("--model: %v", err)
			}
			key, err := readModelKey(keyPath)
			if err != nil {
				return err
			}
			defer clear(key)
			if _, err := os.Stat(filepath.Join(args[0], seal.ManifestFile)); errors.Is(err, fs.ErrNotExist) {
				return usageErr("model verify: %s is not a sealed model (no %s); give the directory sworn model seal --out wrote", args[0], seal.ManifestFile)
			}
			m, err := seal.Open(args[0], key, want)
			if err == nil {
				err = m.Verify()
				m.Close()
			}
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "not verified: %s: %v\n", args[0], err)
				return errNotVerified
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verified: %s is %s; %d files, every segment and digest checked\n", args[0], model, len(m.Manifest.Files))
			return nil
		},
	}
	verify.Flags().StringVar(&keyPath, "key", "", "the model's data key `FILE` (32 bytes)")
	verify.Flags().StringVar(&model, "model", "", "the expected model digest, `sha256:HEX`")
	cmd.AddCommand(sealCmd, inspect, verify, newVolumeCmd())
	return cmd
}
