package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// groups returns the command path of every command group (a command with
// subcommands), the root included, as run would build it.
func groups(t *testing.T) [][]string {
	t.Helper()
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.HasSubCommands() {
			out = append(out, path)
		}
		for _, s := range c.Commands() {
			walk(s, append(append([]string(nil), path...), s.Name()))
		}
	}
	walk(root, nil)
	if len(out) < 10 {
		t.Fatalf("only %d command groups found: %v", len(out), out)
	}
	return out
}

// TestUnknownSubcommandExitCode: in every command group, a mistyped or
// missing subcommand is a usage error (exit 2) that names what was typed,
// never help and exit 0.
func TestUnknownSubcommandExitCode(t *testing.T) {
	for _, g := range groups(t) {
		name := strings.Join(append([]string{"sworn"}, g...), " ")
		t.Run(name, func(t *testing.T) {
			code, out, stderr := sworn(t, append(append([]string(nil), g...), "bogus", "x")...)
			if code != exitUsage || !strings.Contains(stderr, `unknown command "bogus" for "`+name+`"`) {
				t.Errorf("%s bogus x: exit %d, want 2\nstdout %s\nstderr %s", name, code, out, stderr)
			}
			code, _, stderr = sworn(t, g...)
			if code != exitUsage || !strings.Contains(stderr, name+" needs a subcommand") {
				t.Errorf("%s alone: exit %d, want 2; stderr %s", name, code, stderr)
			}
			code, out, _ = sworn(t, append(append([]string(nil), g...), "--help")...)
			if code != exitOK || !strings.Contains(out, "Available Commands") {
				t.Errorf("%s --help: exit %d, want 0\n%s", name, code, out)
			}
		})
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "bundel", "x"}, `unknown command "bundel" for "sworn verify"; did you mean bundle?`},
		{[]string{"sim", "bot"}, "did you mean boot?"},
		{[]string{"log", "sevre"}, "did you mean serve?"},
		{[]string{"log", "foo"}, "its subcommands are serve"},
		{[]string{"verfy", "bundle"}, `for "sworn"; did you mean verify?`},
		{[]string{"gpu", "rims", "fech"}, "did you mean fetch?"},
		{[]string{"help", "verify", "bundel"}, "did you mean bundle?"},
		{[]string{"help", "bogus"}, `unknown command "bogus" for "sworn"`},
		{[]string{"sim", "\x1b[2Jbogus"}, `unknown command "\x1b[2Jbogus"`},
	} {
		code, _, stderr := sworn(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("sworn %q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if code, out, _ := sworn(t, "help", "verify", "bundle"); code != 0 || !strings.Contains(out, "Verify a node's evidence bundle") {
		t.Errorf("help verify bundle: exit %d\n%s", code, out)
	}
}
