package main

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/atomicfile"
	"github.com/sworn-dev/sworn/policy"
)

// maxInputSize bounds every file a command reads.
const maxInputSize = attest.MaxBundleSize

// readInput reads a named input file, bounded; what names the input in errors.
func readInput(what, path string) ([]byte, error) {
	if path == "" {
		return nil, usageErr("%s: no file given", what)
	}
	data, err := policy.ReadFileLimited(path, maxInputSize)
	if err != nil {
		return nil, usageErr("%s: %v", what, err)
	}
	if len(data) == 0 {
		return nil, usageErr("%s %s: file is empty", what, path)
	}
	return data, nil
}

// parseAt parses --at; empty means now.
func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErr("--at %q is not an RFC 3339 time (e.g. 2026-11-27T00:00:00Z)", s)
	}
	return t.UTC(), nil
}

// parseHex parses a hex flag value.
func parseHex(flag, s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
	if err != nil {
		return nil, usageErr("%s is not valid hex: %v", flag, err)
	}
	return b, nil
}

// loadPolicy loads --policy; empty returns nil.
func loadPolicy(path string) (*policy.Policy, error) {
	if path == "" {
		return nil, nil
	}
	p, err := policy.Load(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return p, nil
}

// verifyFlags are the flags every verify command shares.
type verifyFlags struct {
	policy string
	at     string
	json   bool
}

func (f *verifyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.policy, "policy", "", "policy `FILE` (YAML)")
	cmd.Flags().StringVar(&f.at, "at", "", "appraise at this `RFC3339` time instead of now")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the result as JSON on stdout")
}

// load parses --at and reads --policy (nil when not given).
func (f *verifyFlags) load() (time.Time, *policy.Policy, error) {
	at, err := parseAt(f.at)
	if err != nil {
		return time.Time{}, nil, err
	}
	p, err := loadPolicy(f.policy)
	return at, p, err
}

// report prints a result (JSON or text) and turns its verdict into the exit status.
func report(w io.Writer, r *attest.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else if err := r.WriteText(w); err != nil {
		return err
	}
	if r.Verdict != attest.Affirming {
		return errNotVerified
	}
	return nil
}

// writeFileAtomic writes data to path through a fresh temporary file that
// is synced and renamed, so a crash never leaves a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Write(path, data, perm)
}
