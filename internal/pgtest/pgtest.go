// Package pgtest gives tests a fresh schema on a real PostgreSQL.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL
)

// DefaultDSN is the server .ci/run starts.
const DefaultDSN = "postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns the DSN of a new, empty schema on the PostgreSQL that
// SWORN_POSTGRES names (default DefaultDSN), dropped when the test ends; it
// skips the test, saying why, when no server answers.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("SWORN_POSTGRES")
	if base == "" {
		base = DefaultDSN
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Skipf("no PostgreSQL at %s (set SWORN_POSTGRES; .ci/run starts one): %v", base, err)
	}
	schema := fmt.Sprintf("sworn_test_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", base); err == nil {
			db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// Server is a PostgreSQL server of the test's own, in a temporary
// directory, that the test may stop and start.
type Server struct {
	// DSN reaches its database postgres.
	DSN  string
	dir  string
	bin  string
	port int
}

// Start initialises and starts a server of the test's own on a free
// loopback port, stopped when the test ends. It skips the test, saying
// why, without PostgreSQL's programs (Debian: postgresql) or, when run as
// root, without the postgres user to run them as.
func Start(t testing.TB) *Server {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server programs (Debian: postgresql; .ci/run installs it)")
	}
	s := &Server{bin: filepath.Dir(bins[len(bins)-1]), dir: t.TempDir()}
	if os.Getuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			t.Skip("running as root without a postgres user to run the server as")
		}
		if err := exec.Command("chown", "-R", "postgres", s.dir).Run(); err != nil {
			t.Skipf("cannot hand %s to the postgres user: %v", s.dir, err)
		}
		os.Chmod(filepath.Dir(s.dir), 0o755)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if out, err := s.run("initdb", "-D", filepath.Join(s.dir, "data"), "-U", "postgres", "--auth", "trust"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s.Restart(t)
	t.Cleanup(func() { s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "stop") })
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	return s
}

// Restart stops the server if it runs (immediately: connections are cut)
// and starts it again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	data := filepath.Join(s.dir, "data")
	s.run("pg_ctl", "-D", data, "-m", "immediate", "stop")
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", s.port, s.dir)
	if out, err := s.run("pg_ctl", "-D", data, "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

func (s *Server) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, tool)
	var cmd *exec.Cmd
	if os.Getuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	return cmd.CombinedOutput()
}
