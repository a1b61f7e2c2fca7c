// Command sworn verifies confidential AI inference end to end: CPU TEE,
// measured boot, GPUs and releases, from raw evidence, offline.
//
// Exit codes of every command: 0 verified (affirming) or done, 1 not
// verified (warning or contraindicated), 2 bad usage or unreadable input.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK          = 0
	exitNotVerified = 1
	exitUsage       = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "sworn: %v\n", ee.err)
		}
		return ee.code
	}
	// cobra's own errors: unknown command or flag, wrong argument count.
	fmt.Fprintf(stderr, "sworn: %v\n", err)
	return exitUsage
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sworn",
		Short: "Confidential AI inference that its users can check",
		Long: `sworn verifies the whole chain behind a confidential inference node — CPU TEE,
measured boot, GPUs, node software and model — from raw evidence, offline,
and says plainly what it verified and what it still assumes.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify evidence offline (exit 0 affirming, 1 not verified, 2 bad input)",
	}
	verify.AddCommand(verifySNPCmd(), verifyBundleCmd(), verifyReceiptCmd(), newVerifyTPMCmd(), newVerifyGPUCmd(), newVerifyReleaseCmd())
	root.AddCommand(verify, explainCmd(), inspectCmd(), policyCmd(), simCmd(), newMeasureCmd(), newGPUCmd(),
		newKeygenCmd(), newLogCmd(), newWitnessCmd(), newReleaseCmd(), newMonitorCmd(), newNodeCmd(), newProxyCmd(), newAskCmd(), newReceiptsCmd())
	return root
}

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr is a bad-usage or unreadable-input error: exit code 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// failErr is an operation that failed on valid input — a log that is
// down or refuses an append, a server that cannot start, a file that
// cannot be written: exit code 1, not the usage code 2.
func failErr(format string, args ...any) error {
	return &exitError{code: exitNotVerified, err: fmt.Errorf(format, args...)}
}

// errNotVerified ends a verification command whose result was printed and
// is not affirming: exit code 1, no further message.
var errNotVerified = &exitError{code: exitNotVerified}
