package main

import (
	"context"
	"errors"
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

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestReadmeReleaseLog runs the README's release-log example as it stands,
// from an empty directory with the freshly built sworn on PATH: keys, a
// witness and a log in the background, publish, sim boot with the proof,
// the policy, and verify bundle, which must affirm. Only the two loopback
// ports are swapped for free ones, so that parallel test runs do not
// collide. Its background servers are killed at the end in any case.
func TestReadmeReleaseLog(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	bin := binary(t)
	script := readmeBlock(t, "release-log")
	for _, want := range []string{"sworn verify bundle", " &\n", "sworn release publish", "sworn policy init", "--release"} {
		if !strings.Contains(script, want) {
			t.Fatalf("the README's release-log block lacks %q:\n%s", want, script)
		}
	}
	script = strings.NewReplacer("127.0.0.1:8080", freeAddr(t), "127.0.0.1:8081", freeAddr(t)).Replace(script)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
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
	// Whatever happens, no server outlives the test.
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err = cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	outBytes, _ := os.ReadFile(logFile.Name())
	out := string(outBytes)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(out, "Verdict: AFFIRMING") || !strings.Contains(out, "[release.witnesses]") {
		t.Fatalf("the README's release-log example: exit %d (timeout: %v)\n%s", code, ctx.Err(), out)
	}
}
