package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/up"
)

// upDir is the stack's directory: dir, or the user config dir's sworn/up.
func upDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", usageErr("no --dir and no user config directory: pass --dir DIR")
	}
	return filepath.Join(base, "sworn", "up"), nil
}

func newUpCmd() *cobra.Command {
	var dir, engine, listen, logLevel string
	var nodes, gpus int
	cmd := &cobra.Command{
		Use:   "up [--dir DIR] [--nodes 2] [--gpus 2] [--engine echo|URL] [--listen 127.0.0.1:8000]",
		Short: "The whole stack on simulated hardware: release log, witnesses, nodes, and an OpenAI-compatible proxy",
		Long: `up starts, on loopback, a release log with two witnesses (keys made into DIR
once, then reused), publishes the simulated node software's release and has
it cosigned, boots the simulated nodes with the proof stapled, verifies them
on this machine, and serves the OpenAI-compatible proxy. Point any OpenAI
SDK at the printed base URL: every answer comes from a node this machine
verified, with a receipt kept in DIR/receipts. Ctrl-C stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 16 {
				return usageErr("--nodes is %d; it must be 1 to 16", nodes)
			}
			if gpus < 0 || gpus > sim.MaxGPUs {
				return usageErr("--gpus is %d; it must be 0 to %d", gpus, sim.MaxGPUs)
			}
			dir, err := upDir(dir)
			if err != nil {
				return err
			}
			level := slog.LevelWarn
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErr("--log-level %q: use debug, info, warn or error", logLevel)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := up.Start(ctx, up.Config{Dir: dir, Nodes: nodes, GPUs: gpus, Engine: engine, Listen: listen,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))})
			if err != nil {
				return failErr("up: %v", err)
			}
			defer s.Close()
			s.Instructions(cmd.OutOrStdout())
			fmt.Fprintf(cmd.ErrOrStderr(), "sworn: up listening on %s\n", s.ProxyURL)
			<-ctx.Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "sworn: up stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the stack's `DIR`: keys, log, witnesses, policy, receipts (default: the user config dir's sworn/up)")
	cmd.Flags().IntVar(&nodes, "nodes", 2, "how many simulated nodes, `N`")
	cmd.Flags().IntVar(&gpus, "gpus", 2, "GPUs per simulated node, `N`")
	cmd.Flags().StringVar(&engine, "engine", "echo", "`echo` (the built-in engine) or an OpenAI-compatible URL on loopback")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8000", "the proxy's `ADDR` (loopback)")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log `LEVEL` of the components")
	return cmd
}
