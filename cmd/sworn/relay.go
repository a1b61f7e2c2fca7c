package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/relay"
)

func newRelayCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "relay", Short: "Run a sworn relay: a directory of node bundles and a forwarder of ciphertext"}
	var nodes []string
	var listen, logLevel string
	var refresh, idle, header time.Duration
	var maxRequest int64
	var maxForwards int
	serve := &cobra.Command{
		Use:   "serve --node URL... --listen ADDR [--refresh DURATION]",
		Short: "Serve the nodes' directory and forward encrypted requests to them",
		Long: `serve fetches each node's passport bundle and key configurations (GET
/sworn/v1/bundle and /.well-known/ohttp-keys), serves them as one directory
(GET /sworn/v1/directory), and forwards encrypted requests (POST
/sworn/v1/ohttp, or /sworn/v1/nodes/ID/sworn/v1/ohttp for one node) to the
node that holds their key, streaming the answer back. It never decrypts or
appraises (clients do); it passes no header that identifies the client, and
logs no body and no client address. See docs/protocol.md, "The relay".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(nodes) == 0 || listen == "" {
				return usageErr("relay serve: --node (at least one) and --listen are required")
			}
			level := slog.LevelInfo
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErr("--log-level %q: use debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			r, err := relay.New(relay.Config{Nodes: nodes, Refresh: refresh, MaxRequest: maxRequest, MaxForwards: maxForwards,
				IdleTimeout: idle, HeaderTimeout: header, Logger: log})
			if err != nil {
				return usageErr("relay serve: --node: %v", err)
			}
			defer r.Close()
			ln, err := listenTCP("relay serve", listen)
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := r.Refresh(ctx); err != nil {
				log.Warn("relay starts with no node serving; it keeps trying", "err", err)
			}
			go r.Run(ctx)
			// No ReadTimeout or WriteTimeout: they would cut streams. The
			// relay bounds each forward with its idle timeout instead.
			srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
				MaxHeaderBytes: 16 << 10, ErrorLog: relay.ServerErrorLog(log)}
			fmt.Fprintf(cmd.ErrOrStderr(), "sworn: relay listening on http://%s\n", ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return failErr("relay serve: %v", err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			log.Info("relay stopped")
			return nil
		},
	}
	f := serve.Flags()
	f.StringArrayVar(&nodes, "node", nil, "a node's base `URL` (http://host:port); repeatable, up to 64")
	f.StringVar(&listen, "listen", "", "listen `ADDR` (host:port; port 0 picks one)")
	f.DurationVar(&refresh, "refresh", relay.DefaultRefresh, "refetch each node's bundle at least this often (`DURATION`); also when its max-age runs out")
	f.Int64Var(&maxRequest, "max-request", relay.DefaultMaxRequest, "largest request body forwarded, in `BYTES`")
	f.IntVar(&maxForwards, "max-forwards", relay.DefaultMaxForwards, "requests forwarded at once, `N`; more are answered 503")
	f.DurationVar(&idle, "idle-timeout", relay.DefaultIdleTimeout, "cut a forward when no byte moved for this long (`DURATION`); streams have no total limit")
	f.DurationVar(&header, "header-timeout", relay.DefaultHeaderTimeout, "wait at most this long for a node's response header (`DURATION`)")
	f.StringVar(&logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error (logs never hold bodies or client addresses)")
	cmd.AddCommand(serve)
	return cmd
}
