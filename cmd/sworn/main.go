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
	"strings"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/internal/safetext"
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
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(helpCmd())
	guardGroups(root)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	// Messages may quote what was typed or read: Clean keeps control bytes
	// off the terminal, hideInternals keeps decoder internals out.
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "sworn: %s\n", safetext.Clean(hideInternals(ee.err.Error())))
		}
		return ee.code
	}
	// cobra's own errors: unknown flag, wrong argument count. They name
	// neither the command nor what it takes, so add both.
	where := ""
	if cmd.HasParent() {
		where = strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + ": "
	}
	fmt.Fprintf(stderr, "sworn: %s%s\nusage: %s\n", where, safetext.Clean(err.Error()), cmd.UseLine())
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
	verify.AddCommand(verifySNPCmd(), verifyTDXCmd(), verifyBundleCmd(), verifyReceiptCmd(), newVerifyTPMCmd(), newVerifyGPUCmd(), newVerifyReleaseCmd())
	root.AddCommand(verify, explainCmd(), inspectCmd(), policyCmd(), simCmd(), newMeasureCmd(), newGPUCmd(), newTDXCmd(),
		newKeygenCmd(), newLogCmd(), newWitnessCmd(), newReleaseCmd(), newMonitorCmd(), newNodeCmd(), newRelayCmd(), newProxyCmd(), newAskCmd(), newReceiptsCmd(), newUpCmd(), newKBSCmd(), newModelCmd())
	return root
}

// guardGroups makes every command group (a command with subcommands and no
// action of its own), the root included, refuse what it does not know: an
// unknown subcommand, or none at all, is a usage error (exit 2) that names
// the closest subcommands. Cobra alone prints the group's help and exits 0.
func guardGroups(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			return usageErr("%s needs a subcommand: %s (see %s --help)", cmd.CommandPath(), strings.Join(subcommandNames(cmd), ", "), cmd.CommandPath())
		}
	}
	for _, s := range c.Commands() {
		guardGroups(s)
	}
}

// unknownCommand is the usage error for a subcommand that group does not have.
func unknownCommand(group *cobra.Command, name string) error {
	hint := "its subcommands are " + strings.Join(subcommandNames(group), ", ")
	if group.SuggestionsMinimumDistance <= 0 {
		group.SuggestionsMinimumDistance = 2
	}
	if sug := group.SuggestionsFor(name); len(sug) > 0 {
		hint = "did you mean " + strings.Join(sug, " or ") + "?"
	}
	return usageErr("unknown command %s for %q; %s", safetext.Quote([]byte(name)), group.CommandPath(), hint)
}

// subcommandNames lists a group's visible subcommands.
func subcommandNames(group *cobra.Command) []string {
	var names []string
	for _, s := range group.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return names
}

// helpCmd replaces cobra's help command, which answers an unknown topic
// with exit 0.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || cmd == nil {
				cmd, rest = c.Root(), args
			}
			if len(rest) > 0 && cmd.HasSubCommands() {
				return unknownCommand(cmd, rest[0])
			}
			return cmd.Help()
		},
	}
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
