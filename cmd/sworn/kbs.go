package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/tlog"
)

func newKBSCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "kbs", Short: "Run the key broker: model keys released only to attested nodes, every release logged"}
	var db, logURL, key, policyPath, kekPath, listen, tokenFile, id string
	serve := &cobra.Command{
		Use:   "serve --db sqlite:FILE|postgres://… --log URL --key FILE --policy FILE --kek FILE --listen ADDR [--admin-token FILE]",
		Short: "Serve challenges and key releases (docs/kbs.md)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" || logURL == "" || key == "" || policyPath == "" || kekPath == "" || listen == "" {
				return usageErr("kbs serve: --db, --log, --key, --policy, --kek and --listen are required")
			}
			p, err := loadPolicy(policyPath)
			if err != nil {
				return err
			}
			kek, err := readKEK("--kek", kekPath)
			if err != nil {
				return err
			}
			pub, err := tlog.NewSigner(key, tlog.KindPublisher)
			if err != nil {
				return usageErr("--key: %v", err)
			}
			var token string
			if tokenFile != "" {
				b, err := readInput("--admin-token", tokenFile)
				if err != nil {
					return err
				}
				if token = strings.TrimSpace(string(b)); len(token) < 16 {
					return usageErr("--admin-token %s: the token must be at least 16 characters", tokenFile)
				}
			}
			ln, err := listenTCP("kbs serve", listen)
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			store, err := kbs.OpenStore(ctx, db)
			if err != nil {
				return usageErr("--db: %v", err)
			}
			defer store.Close()
			b, err := kbs.New(ctx, kbs.Config{Store: store, KEK: kek, Policy: p, LogURL: logURL, Publisher: pub, ID: id, AdminToken: token,
				Logger: slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))})
			if err != nil {
				return failErr("kbs serve: %v", err)
			}
			return serveStreams(ctx, cmd, ln, b.Handler(), "kbs", 10*time.Second)
		},
	}
	f := serve.Flags()
	f.StringVar(&db, "db", "", "the store: `sqlite:FILE` or a postgres:// URL")
	f.StringVar(&logURL, "log", "", "the release log's `URL`, which every key release is appended to")
	f.StringVar(&key, "key", "", "the broker's publisher key `FILE` (sworn keygen --kind publisher; the log must accept it)")
	f.StringVar(&policyPath, "policy", "", "policy `FILE` a node must pass, with a log: section")
	f.StringVar(&kekPath, "kek", "", "the key-encryption key `FILE` (32 bytes) of the model keys at rest")
	f.StringVar(&listen, "listen", "", "listen `ADDR`")
	f.StringVar(&tokenFile, "admin-token", "", "`FILE` with the token that registers models (none: registration off)")
	f.StringVar(&id, "id", "sworn-kbs", "the broker's `NAME` in its key-release records")

	var kbsURL, name, model, keyPath string
	register := &cobra.Command{
		Use:   "register --kbs URL --admin-token FILE --name NAME --model sha256:HEX --key FILE",
		Short: "Register a model's data key with a broker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kbsURL == "" || tokenFile == "" || model == "" || keyPath == "" {
				return usageErr("kbs register: --kbs, --admin-token, --model and --key are required")
			}
			if _, err := kbs.ParseDigest(model); err != nil {
				return usageErr("--model: %v", err)
			}
			k, err := readInput("--key", keyPath)
			if err != nil {
				return err
			}
			if err := registerModelKey(kbsURL, tokenFile, name, model, k); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "registered %s\n", model)
			return nil
		},
	}
	register.Flags().StringVar(&kbsURL, "kbs", "", "the broker's `URL`")
	register.Flags().StringVar(&tokenFile, "admin-token", "", "the admin token `FILE`")
	register.Flags().StringVar(&name, "name", "", "the model's `NAME`")
	register.Flags().StringVar(&model, "model", "", "the model digest, `sha256:HEX`")
	register.Flags().StringVar(&keyPath, "key", "", "the model's data key `FILE` (32 bytes)")
	cmd.AddCommand(serve, register, newKBSAuditCmd(), newKBSRotateCmd())
	return cmd
}

// readKEK reads a 32-byte key-encryption key named by flag.
func readKEK(flag, path string) ([]byte, error) {
	kek, err := readInput(flag, path)
	if err != nil {
		return nil, err
	}
	if len(kek) != 32 {
		return nil, usageErr("%s %s is %d bytes; a key-encryption key is 32 random bytes (head -c 32 /dev/urandom > kek)", flag, path, len(kek))
	}
	return kek, nil
}

func newKBSAuditCmd() *cobra.Command {
	var db, logURL, policyPath, id string
	cmd := &cobra.Command{
		Use:   "audit --db sqlite:FILE|postgres://… --log URL --policy FILE [--id NAME]",
		Short: "Check every key release: the broker's database against the log, and each logged release against a policy",
		Long: `audit reads the whole release log, verified as sworn monitor does (every
checkpoint with the policy's log: section, every entry proven in its tree),
and checks each key_release record: the node's release is in the log, was
not revoked before the key went out, may serve the model, and the node's
launch measurement is one the policy allows. It then holds the key releases
of broker --id against the broker's database: one the log lacks is a key
given out unlogged. Exit 0: all agree; 1: findings, each printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" || logURL == "" || policyPath == "" {
				return usageErr("kbs audit: --db, --log and --policy are required")
			}
			pol, err := loadPolicy(policyPath)
			if err != nil {
				return err
			}
			if pol.Log == nil {
				return usageErr("kbs audit: policy %s has no log: section", policyPath)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			store, err := kbs.OpenStore(ctx, db)
			if err != nil {
				return usageErr("--db: %v", err)
			}
			defer store.Close()
			a, size, err := kbs.ReadLog(ctx, logURL, pol, nil)
			if err != nil {
				return failErr("kbs audit: %v", err)
			}
			rels, err := store.Releases(ctx)
			if err != nil {
				return failErr("kbs audit: the database: %v", err)
			}
			fs := a.Compare(id, rels)
			for _, f := range fs {
				fmt.Fprintf(cmd.OutOrStdout(), "ALERT %s\n", f)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d log entries; %d key releases by %s in the log, %d in the database; %d findings\n",
				size, a.KeyReleases(id), id, len(rels), len(fs))
			if len(fs) > 0 {
				return &exitError{code: exitNotVerified, err: fmt.Errorf("kbs audit: %d findings", len(fs))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "the broker's store: `sqlite:FILE` or a postgres:// URL")
	cmd.Flags().StringVar(&logURL, "log", "", "the release log's `URL`")
	cmd.Flags().StringVar(&policyPath, "policy", "", "policy `FILE` with the log: section, and the measurements a node may have")
	cmd.Flags().StringVar(&id, "id", "sworn-kbs", "the broker's `NAME` in its key-release records")
	return cmd
}

func newKBSRotateCmd() *cobra.Command {
	var db, oldPath, newPath string
	cmd := &cobra.Command{
		Use:   "rotate-kek --db sqlite:FILE|postgres://… --kek OLD_FILE --new-kek NEW_FILE",
		Short: "Re-wrap every stored model key under a new key-encryption key, in one transaction",
		Long: `rotate-kek re-wraps each model key in the store from the key-encryption key
--kek to --new-kek in one transaction: if any key does not open under the
old key, nothing changes. Stop the broker first; start it with --kek
NEW_FILE afterwards (it refuses to start with a key that does not open every
stored key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" || oldPath == "" || newPath == "" {
				return usageErr("kbs rotate-kek: --db, --kek and --new-kek are required")
			}
			old, err := readKEK("--kek", oldPath)
			if err != nil {
				return err
			}
			nk, err := readKEK("--new-kek", newPath)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			store, err := kbs.OpenStore(ctx, db)
			if err != nil {
				return usageErr("--db: %v", err)
			}
			defer store.Close()
			n, err := kbs.RotateKEK(ctx, store, old, nk)
			if err != nil {
				return failErr("kbs rotate-kek: %v", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "re-wrapped %d model keys; start the broker with --kek %s\n", n, newPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "the broker's store: `sqlite:FILE` or a postgres:// URL")
	cmd.Flags().StringVar(&oldPath, "kek", "", "the current key-encryption key `FILE`")
	cmd.Flags().StringVar(&newPath, "new-kek", "", "the new key-encryption key `FILE` (32 random bytes)")
	return cmd
}

// registerModelKey registers a model's data key with the broker at
// kbsURL (POST /kbs/v1/models), with the admin token in tokenFile. It is
// the one code path of sworn kbs register and sworn model seal --kbs.
func registerModelKey(kbsURL, tokenFile, name, model string, key []byte) error {
	tok, err := readInput("--admin-token", tokenFile)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(kbs.RegisterRequest{Name: name, Model: model, Key: key})
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(kbsURL, "/")+"/kbs/v1/models", bytes.NewReader(body))
	if err != nil {
		return usageErr("--kbs %q: %v", kbsURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return failErr("kbs register: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		return failErr("kbs register: %s: %s", resp.Status, e.Error.Message)
	}
	return nil
}
