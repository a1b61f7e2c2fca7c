package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/tlog"
)

func newKeygenCmd() *cobra.Command {
	var kind, name, out string
	cmd := &cobra.Command{
		Use:   "keygen --kind log|witness|publisher --name NAME --out PREFIX",
		Short: "Make a signing key: PREFIX.key (secret, mode 0600) and PREFIX.pub (verifier key)",
		Long: `keygen makes an Ed25519 key in signed-note format. For a log, NAME is the
log's origin (e.g. releases.example.com/log). PREFIX.pub is a signed-note
verifier key; for a witness it is a cosignature/v1 key. PREFIX.key starts
with a line naming the kind, and every command that loads a key refuses one
of the wrong kind. Existing files are never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kind == "" || name == "" || out == "" {
				return usageErr("keygen: --kind, --name and --out are required")
			}
			skey, vkey, err := tlog.GenerateKey(tlog.KeyKind(kind), name)
			if err != nil {
				return usageErr("keygen: %v", err)
			}
			for _, p := range []string{out + ".key", out + ".pub"} {
				if _, err := os.Lstat(p); err == nil {
					return usageErr("keygen: %s already exists; choose another --out or remove it", p)
				}
			}
			// Both files are created exclusively: an existing file (or a
			// link planted in its place) is never overwritten.
			if err := createExclusive(out+".key", tlog.KeyFile(tlog.KeyKind(kind), skey), 0o600); err != nil {
				return usageErr("keygen: %v", err)
			}
			if err := createExclusive(out+".pub", vkey+"\n", 0o644); err != nil {
				os.Remove(out + ".key")
				return usageErr("keygen: %v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "key `KIND`: log, witness or publisher")
	cmd.Flags().StringVar(&name, "name", "", "key `NAME` (for a log: its origin)")
	cmd.Flags().StringVar(&out, "out", "", "output `PREFIX`: writes PREFIX.key and PREFIX.pub")
	return cmd
}

// createExclusive creates path (which must not exist) with data, synced.
func createExclusive(path, data string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %v", path, err)
	}
	return nil
}
