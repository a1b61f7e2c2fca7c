package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/witness"
)

func newWitnessCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "witness", Short: "Run a C2SP tlog-witness"}
	var dir, listen, key, marker string
	var logKeys []string
	var resetState bool
	serve := &cobra.Command{
		Use:   "serve --dir DIR --listen ADDR --key FILE --log-key VKEY... [--marker FILE] [--reset-state]",
		Short: "Serve tlog-witness add-checkpoint: check consistency, cosign, remember durably",
		Long: `Serve tlog-witness add-checkpoint: check each checkpoint's log signature and
its consistency with the last one cosigned, remember it durably, then cosign.

Before each cosignature of a larger tree the witness also records the size in
its cosign marker (--marker, by default beside the key file: KEY without
.key, plus .cosigned). It refuses to start when its state is missing or
older than the marker: a witness restarted from lost or restored state could
cosign a fork. --reset-state starts anyway, from the state as it is, and
rewrites the marker; use it only when the key has cosigned nothing beyond
that state (see docs/tlog.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || listen == "" || key == "" || len(logKeys) == 0 {
				return usageErr("witness serve: --dir, --listen, --key and --log-key are required")
			}
			signer, err := tlog.NewCosigner(key)
			if err != nil {
				return usageErr("witness serve: --key: %v", err)
			}
			var logs []note.Verifier
			for _, lk := range logKeys {
				s, err := readVerifierArg("--log-key", lk)
				if err != nil {
					return err
				}
				v, err := tlog.ParseVerifier(s)
				if err != nil {
					return usageErr("witness serve: --log-key: %v", err)
				}
				logs = append(logs, v)
			}
			// Listen before the state directory is touched: a start that
			// fails leaves nothing behind.
			ln, err := listenTCP("witness serve", listen)
			if err != nil {
				return err
			}
			defer ln.Close()
			if marker == "" {
				marker = strings.TrimSuffix(key, ".key") + ".cosigned"
			}
			w, err := witness.New(witness.Config{Dir: dir, Signer: signer, Logs: logs, Marker: marker, ResetState: resetState,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))})
			if err != nil {
				return failErr("witness serve: %v", err)
			}
			defer w.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveHTTP(ctx, cmd, ln, w.Handler(), "witness "+signer.Name(), func(context.Context) error { return nil })
		},
	}
	serve.Flags().StringVar(&dir, "dir", "", "state `DIR`")
	serve.Flags().StringVar(&listen, "listen", "", "listen `ADDR`")
	serve.Flags().StringVar(&key, "key", "", "witness secret key `FILE` (sworn keygen --kind witness)")
	serve.Flags().StringArrayVar(&logKeys, "log-key", nil, "verifier key of a log to witness (`VKEY` or a .pub file); repeatable")
	serve.Flags().StringVar(&marker, "marker", "", "cosign marker `FILE`, kept apart from --dir (default: beside --key, .cosigned)")
	serve.Flags().BoolVar(&resetState, "reset-state", false, "start even though the state is missing or rolled back (DANGEROUS: see docs/tlog.md)")
	cmd.AddCommand(serve)
	return cmd
}
