package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagPlaceholders: help shows what a flag takes (--nonce HEX, --out
// FILE), never its Go type (--nonce string): every flag's usage names its
// placeholder in backquotes.
func TestFlagPlaceholders(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Value.Type() == "bool" || f.Name == "help" {
				return
			}
			n++
			name, _ := pflag.UnquoteUsage(f)
			if name == "" || name == f.Value.Type() || strings.ToLower(name) == name && !strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s shows %q: name its placeholder in backquotes in the usage (%q)", c.CommandPath(), f.Name, name, f.Usage)
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())
	if n < 40 {
		t.Fatalf("only %d flags checked", n)
	}
}
