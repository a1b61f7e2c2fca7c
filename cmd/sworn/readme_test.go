package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the fenced sh block that follows the marker
// "<!-- readme-test: NAME" in the repository's README.md.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	marker := "<!-- readme-test: " + name
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README.md has no %q marker", marker)
	}
	s = s[i:]
	open := strings.Index(s, "\n```sh\n")
	if open < 0 {
		t.Fatalf("no ```sh block after %q", marker)
	}
	s = s[open+len("\n```sh\n"):]
	end := strings.Index(s, "\n```")
	if end < 0 {
		t.Fatalf("the sh block after %q is not closed", marker)
	}
	return s[:end+1]
}

// freeAddrs returns n distinct loopback addresses whose ports were free
// just now: all are held open until all are chosen.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// runReadmeBlock runs a README block with bash in a fresh directory, the
// freshly built sworn first on PATH, and returns its exit code and output.
// With strict, bash stops at the first failing command (bash -e). The
// block's background servers are killed when it ends, in any case.
func runReadmeBlock(t *testing.T, script string, strict bool) (int, string) {
	t.Helper()
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-c", script}
	if strict {
		args = append([]string{"-e"}, args...)
	}
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output goes to a file, not a pipe: a server left running in the
	// background must not keep Wait waiting for the pipe to close.
	logFile, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err = cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	out, _ := os.ReadFile(logFile.Name())
	// The servers' own logs, if the block keeps them in files.
	logs, _ := filepath.Glob(filepath.Join(cmd.Dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		out = append(out, fmt.Sprintf("\n--- %s:\n%s", filepath.Base(l), b)...)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the README block ran out of time:\n%s", out)
	}
	return code, string(out)
}

// TestReadmeTryIt runs the README's first simulated example as it stands:
// explain affirms under the simulated policy, and the production policy
// refuses the simulated node with exit 1.
func TestReadmeTryIt(t *testing.T) {
	script := readmeBlock(t, "try-it")
	code, out := runReadmeBlock(t, script, false)
	if code != exitNotVerified || !strings.Contains(out, "Verdict: AFFIRMING") || !strings.Contains(out, "1. Hardware roots of trust") ||
		!strings.Contains(out, "a simulated root is not trusted") {
		t.Fatalf("the README's try-it example: exit %d, want 1 from its last line, after an affirming explain\n%s", code, out)
	}
}

// TestReadmeReleaseLog runs the README's release-log example as it stands,
// from an empty directory with the freshly built sworn on PATH: keys, a
// witness and a log in the background, publish, sim boot with the proof,
// the policy, and verify bundle, which must affirm; bash -e stops at any
// failing command. Only the two loopback ports are swapped for free ones,
// so that parallel test runs do not collide.
func TestReadmeReleaseLog(t *testing.T) {
	script := readmeBlock(t, "release-log")
	for _, want := range []string{"sworn verify bundle", " &\n", "sworn release publish", "sworn policy init", "--release"} {
		if !strings.Contains(script, want) {
			t.Fatalf("the README's release-log block lacks %q:\n%s", want, script)
		}
	}
	addrs := freeAddrs(t, 2)
	script = strings.NewReplacer("127.0.0.1:8080", addrs[0], "127.0.0.1:8081", addrs[1]).Replace(script)
	code, out := runReadmeBlock(t, script, true)
	if code != 0 || !strings.Contains(out, "Verdict: AFFIRMING") || !strings.Contains(out, "[release.witnesses]") {
		t.Fatalf("the README's release-log example: exit %d\n%s", code, out)
	}
}
