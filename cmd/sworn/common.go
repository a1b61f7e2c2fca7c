package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/atomicfile"
	"github.com/sworn-dev/sworn/internal/safetext"
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
	data, err := policy.ReadFileLimited(path, policy.MaxSize)
	if err != nil {
		return nil, usageErr("policy %s: %v", path, err)
	}
	if !safetext.IsText(data) {
		return nil, inputErr("policy", path, data, "a YAML text file (write one with: sworn policy init)", errors.New("the file is binary, not text"))
	}
	p, err := policy.Parse(path, data)
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
	var err error
	if asJSON {
		err = printJSON(w, r)
	} else {
		err = r.WriteText(w)
	}
	if err != nil {
		return err
	}
	return verdictExit(r)
}

// reportCPU appraises the evidence of one CPU TEE, body, with v and
// prints the result.
func reportCPU(w io.Writer, v attest.Verifier, kind string, body []byte, at time.Time, p *policy.Policy, binding *attest.Binding, asJSON bool) error {
	r := attest.VerifyEntry(context.Background(), v, attest.Entry{Kind: kind, Device: "cpu0", Body: body}, at, p, binding)
	return report(w, r, asJSON)
}

// verdictExit turns a printed result's verdict into the exit status: nil
// (0) when affirming, errNotVerified (1) otherwise.
func verdictExit(r *attest.Result) error {
	if r.Verdict != attest.Affirming {
		return errNotVerified
	}
	return nil
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFileAtomic writes data to path through a fresh temporary file that
// is synced and renamed, so a crash never leaves a half-written file. Its
// error names path, never the temporary file.
// writeOutput writes data to standard output, or when out is set to the
// file out, which must not exist unless force.
func writeOutput(w io.Writer, out string, data []byte, force bool) error {
	if out == "" {
		_, err := w.Write(data)
		return err
	}
	if _, err := os.Stat(out); err == nil && !force {
		return usageErr("%s exists; pass --force to overwrite it", out)
	}
	if err := writeFileAtomic(out, data, 0o644); err != nil {
		return usageErr("--out: %v", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	err := atomicfile.Write(path, data, perm)
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot write %s: its directory %s does not exist", path, filepath.Dir(path))
	}
	return fmt.Errorf("cannot write %s: %v", path, err)
}

// inputErr is the usage error for an input file that is not what the flag
// takes: it names the flag and the file, says what was expected, and quotes
// the start of the file safely.
func inputErr(flag, path string, data []byte, expected string, err error) error {
	return usageErr("%s %s: %v; expected %s (the file starts with %s)", flag, path, err, expected, safetext.Quote(data))
}

// internalRE finds where an error starts to speak of a decoder's internals
// (CBOR and go-tpm field paths, Go type names) rather than of the input.
var internalRE = regexp.MustCompile(`cbor: |asn1: |unmarshalling field |Go struct field |Go value of type |struct of type |reflect\.`)

// hideInternals replaces the part of a message where a decoder's internals
// begin (from its ": " up to the next "; ", or the end) with "malformed
// encoding"; what stays says which input is wrong and how.
func hideInternals(msg string) string {
	loc := internalRE.FindStringIndex(msg)
	if loc == nil {
		return msg
	}
	start := strings.LastIndex(msg[:loc[0]], ": ")
	if start < 0 {
		return msg
	}
	rest := ""
	if end := strings.Index(msg[loc[0]:], "; "); end >= 0 {
		rest = hideInternals(msg[loc[0]+end:])
	}
	return msg[:start] + ": malformed encoding" + rest
}

// serveStreams serves h on ln until ctx is done (SIGINT/SIGTERM), then
// shuts down, waiting up to grace for requests in flight. It prints the
// "listening on" line tests and scripts wait for. Unlike serveHTTP it sets
// no write timeout: answers stream for as long as they take, each write
// bounded by the handler itself.
func serveStreams(ctx context.Context, cmd *cobra.Command, ln net.Listener, h http.Handler, what string, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	fmt.Fprintf(cmd.ErrOrStderr(), "sworn: %s listening on http://%s\n", what, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return failErr("%s: %v", what, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return srv.Shutdown(sctx)
}
