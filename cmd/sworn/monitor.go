package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/monitor"
)

func newMonitorCmd() *cobra.Command {
	var logURL, policyPath, state string
	var interval time.Duration
	var once bool
	cmd := &cobra.Command{
		Use:   "monitor --log URL --policy FILE [--state DIR]",
		Short: "Tail a release log: check consistency, print each release and revocation",
		Long: `monitor follows the log at URL, verifying each checkpoint with the policy's
log: section, checking it is consistent with the last one seen, and printing
every new entry. It exits 1 at the first inconsistency (a split view, an entry
that does not match the tree, a bad checkpoint signature).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logURL == "" || policyPath == "" {
				return usageErr("monitor: --log and --policy are required")
			}
			pol, err := loadPolicy(policyPath)
			if err != nil {
				return err
			}
			v, err := tlog.NewVerifier(pol.Log)
			if err != nil {
				return usageErr("monitor: policy %s: %v", policyPath, err)
			}
			if state == "" {
				dir, err := os.UserCacheDir()
				if err != nil {
					return usageErr("monitor: give --state DIR")
				}
				state = dir + "/sworn/monitor"
			}
			m, err := monitor.New(logURL, v, state, cmd.OutOrStdout(), nil)
			if err != nil {
				return usageErr("monitor: %v", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for {
				err := m.Poll(ctx)
				if errors.Is(err, monitor.ErrInconsistent) {
					return &exitError{code: exitNotVerified, err: fmt.Errorf("monitor: %v", err)}
				}
				if err != nil {
					if once {
						return failErr("monitor: %v", err)
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "sworn: monitor: %v (retrying)\n", err)
				}
				if once {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().StringVar(&logURL, "log", "", "log `URL`")
	cmd.Flags().StringVar(&policyPath, "policy", "", "policy `FILE` with a log: section")
	cmd.Flags().StringVar(&state, "state", "", "state `DIR` (last checkpoint, next entry)")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "poll interval (a `DURATION` such as 30s)")
	cmd.Flags().BoolVar(&once, "once", false, "poll once and exit")
	return cmd
}
