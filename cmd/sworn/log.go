package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/transparency-dev/tessera"

	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/server"

	mysqldriver "github.com/go-sql-driver/mysql"
)

func newLogCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "log", Short: "Run the release transparency log"}
	var dir, listen, key, publishers, witnessPolicy, storage, mysqlDSN string
	var cpInterval, batchAge time.Duration
	serve := &cobra.Command{
		Use:   "serve --dir DIR --listen ADDR --key FILE [--publishers FILE] [--witness-policy FILE] [--storage posix|mysql]",
		Short: "Serve a Tessera release log: tlog-tiles reads and authenticated appends",
		Long: `Serve a Tessera release log: the C2SP tlog-tiles read API and authenticated
appends that answer with a tlog-proof once a (witnessed) checkpoint covers them.

Storage is Tessera's POSIX driver in --dir by default. --storage mysql uses
Tessera's MySQL driver instead: the DSN comes from --mysql-dsn or, to keep the
password out of the process list, from $SWORN_LOG_MYSQL_DSN; the database must
hold Tessera's schema (see docs/tlog.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" || key == "" {
				return usageErr("log serve: --listen and --key are required")
			}
			var db *sql.DB
			switch storage {
			case "posix":
				if dir == "" {
					return usageErr("log serve: --dir is required with --storage posix")
				}
			case "mysql":
				if mysqlDSN == "" {
					mysqlDSN = os.Getenv("SWORN_LOG_MYSQL_DSN")
				}
				if mysqlDSN == "" {
					return usageErr("log serve: --storage mysql needs --mysql-dsn or $SWORN_LOG_MYSQL_DSN")
				}
				var err error
				if db, err = openMySQL(mysqlDSN); err != nil {
					return usageErr("log serve: %v", err)
				}
				defer db.Close()
			default:
				return usageErr("log serve: --storage %q is unknown; use posix or mysql", storage)
			}
			signer, err := tlog.NewSigner(key, tlog.KindLog)
			if err != nil {
				return usageErr("log serve: --key: %v", err)
			}
			cfg := server.Config{Dir: dir, DB: db, Signer: signer, CheckpointInterval: cpInterval, BatchMaxAge: batchAge,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))}
			if publishers != "" {
				data, err := policy.ReadFileLimited(publishers, 1<<20)
				if err != nil {
					return usageErr("log serve: --publishers: %v", err)
				}
				if cfg.Publishers, err = tlog.ParseVerifierList(data); err != nil {
					return usageErr("log serve: --publishers %s: %v", publishers, err)
				}
			}
			if witnessPolicy != "" {
				data, err := policy.ReadFileLimited(witnessPolicy, 1<<20)
				if err != nil {
					return usageErr("log serve: --witness-policy: %v", err)
				}
				if err := tlog.CheckWitnessPolicyKeys(data); err != nil {
					return usageErr("log serve: --witness-policy %s: %v", witnessPolicy, err)
				}
				g, err := tessera.NewWitnessGroupFromPolicy(data)
				if err != nil {
					return usageErr("log serve: --witness-policy %s: %v", witnessPolicy, err)
				}
				cfg.Witnesses = &g
			}
			// Listen before the log directory is touched: a start that
			// fails leaves nothing behind.
			ln, err := listenTCP("log serve", listen)
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := server.New(ctx, cfg)
			if err != nil {
				return failErr("log serve: %v", err)
			}
			return serveHTTP(ctx, cmd, ln, s.Handler(), fmt.Sprintf("log %s", s.Origin()), func(c context.Context) error { return s.Close(c) })
		},
	}
	serve.Flags().StringVar(&dir, "dir", "", "storage `DIR` (Tessera POSIX layout)")
	serve.Flags().StringVar(&listen, "listen", "", "listen `ADDR` (host:port; port 0 picks one)")
	serve.Flags().StringVar(&key, "key", "", "checkpoint signing key `FILE` (sworn keygen --kind log)")
	serve.Flags().StringVar(&publishers, "publishers", "", "`FILE` of publisher verifier keys allowed to append, one per line (none: read-only)")
	serve.Flags().StringVar(&witnessPolicy, "witness-policy", "", "witness policy `FILE` (Sigsum/tlog-policy format: witness, group, quorum)")
	serve.Flags().StringVar(&storage, "storage", "posix", "storage driver: `posix` (--dir) or mysql (--mysql-dsn)")
	serve.Flags().StringVar(&mysqlDSN, "mysql-dsn", "", "MySQL `DSN` for --storage mysql (user:pass@tcp(host:3306)/db; default $SWORN_LOG_MYSQL_DSN)")
	serve.Flags().DurationVar(&cpInterval, "checkpoint-interval", 0, "how often to sign a checkpoint, a `DURATION` (default 100ms; at least 1s with MySQL)")
	serve.Flags().DurationVar(&batchAge, "batch-age", 50*time.Millisecond, "longest wait for a sequencing batch (a `DURATION`)")
	cmd.AddCommand(serve)
	return cmd
}

// listenTCP listens on a --listen address.
func listenTCP(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usageErr("%s: --listen %s: %v (nothing was written)", what, addr, err)
	}
	return ln, nil
}

// serveHTTP prints the bound address of ln on stderr, serves h until ctx
// is done, then shuts down the server and calls closeFn.
func serveHTTP(ctx context.Context, cmd *cobra.Command, ln net.Listener, h http.Handler, what string, closeFn func(context.Context) error) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	fmt.Fprintf(cmd.ErrOrStderr(), "sworn: %s listening on http://%s\n", what, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		closeFn(context.Background())
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := closeFn(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// readVerifierArg reads a verifier key given as a file or literally.
func readVerifierArg(flag, s string) (string, error) {
	if tlog.IsVerifierKey(s) {
		return s, nil
	}
	k, err := tlog.ReadKeyFile(s)
	if err != nil {
		return "", usageErr("%s: %v", flag, err)
	}
	return k, nil
}

// openMySQL opens a MySQL database for the log. The DSN is never printed:
// it may hold a password.
func openMySQL(dsn string) (*sql.DB, error) {
	cfg, err := mysqldriver.ParseDSN(dsn)
	if err != nil {
		return nil, errors.New("the MySQL DSN does not parse (want user:password@tcp(host:port)/database)")
	}
	cfg.ParseTime = true
	return sql.Open("mysql", cfg.FormatDSN())
}
