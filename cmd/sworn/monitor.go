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

	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/monitor"
)

func newMonitorCmd() *cobra.Command {
	var logURL, policyPath, state string
	var interval time.Duration
	var once bool
	cmd := &cobra.Command{
		Use:   "monitor --log URL --policy FILE [--state DIR]",
		Short: "Tail a release log: check consistency, print each release, revocation and key release",
		Long: `monitor follows the log at URL, verifying each checkpoint with the policy's
log: section, checking it is consistent with the last one seen, and printing
every new entry. It exits 1 at the first inconsistency (a split view, an entry
that does not match the tree, a bad checkpoint signature). Each key release
is checked as sworn kbs audit does — its node's release is in the log, not
revoked, may serve the model, and the node's launch measurement is one the
policy allows — and printed as an ALERT line when it is not; with --once
the exit status is then 1.`,
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
			// Each key release is checked as sworn kbs audit does: its
			// node's release, revocations, and the policy's measurements.
			alerts := 0
			a := kbs.NewAuditorFrom(pol, m.Next())
			m.Records = func(i uint64, r *tlog.Record) {
				for _, f := range a.Add(i, r) {
					fmt.Fprintf(cmd.OutOrStdout(), "ALERT %s\n", f)
					alerts++
				}
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
					if alerts > 0 {
						return &exitError{code: exitNotVerified, err: fmt.Errorf("monitor: %d key releases are not allowed", alerts)}
					}
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
