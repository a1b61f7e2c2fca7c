package server_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/tlog/server"
)

// startMariaDB starts a throwaway MariaDB server on a unix socket in a
// temporary directory, creates a database holding Tessera's MySQL schema
// and returns a handle on it. The test skips when MariaDB is not installed
// (CI installs the mariadb-server package).
func startMariaDB(t *testing.T) *sql.DB {
	t.Helper()
	server, err := exec.LookPath("mariadbd")
	if err != nil {
		if server, err = exec.LookPath("/usr/sbin/mariadbd"); err != nil {
			t.Skip("MariaDB is not installed (Debian: apt-get install mariadb-server); the MySQL driver test skips")
		}
	}
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		t.Skip("mariadb-install-db is not installed; the MySQL driver test skips")
	}
	schema := tesseraSchema(t)
	dir, err := os.MkdirTemp("", "sworn-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	user := "root" // mariadbd refuses to run as root unless told to
	if os.Geteuid() != 0 {
		user = os.Getenv("USER")
	}
	if out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--user="+user,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	srv := exec.Command(server, "--no-defaults", "--datadir="+data, "--socket="+sock, "--skip-networking",
		"--user="+user, "--pid-file="+filepath.Join(dir, "pid"), "--log-error="+filepath.Join(dir, "err.log"))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
	})
	root, err := sql.Open("mysql", "root@unix("+sock+")/?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	deadline := time.Now().Add(60 * time.Second)
	for root.Ping() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			t.Fatalf("MariaDB did not start:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := root.Exec("CREATE DATABASE sworn_log; USE sworn_log; " + schema); err != nil {
		t.Fatalf("applying Tessera's schema: %v", err)
	}
	db, err := sql.Open("mysql", "root@unix("+sock+")/sworn_log?parseTime=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// tesseraSchema reads storage/mysql/schema.sql from the tessera module the
// build uses.
func tesseraSchema(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/transparency-dev/tessera").Output()
	if err != nil {
		t.Skipf("cannot locate the tessera module for its MySQL schema: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "storage", "mysql", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMySQLStorage runs the log on Tessera's MySQL driver against a real
// MariaDB: appends get valid proofs, and after a restart every entry is
// there and duplicates are still refused.
func TestMySQLStorage(t *testing.T) {
	db := startMariaDB(t)
	k := newKeys(t, 0)
	open := func() *server.Server {
		s, err := server.New(context.Background(), server.Config{DB: db, Signer: k.logS, Publishers: []note.Verifier{k.pubVer}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	var leaves [][]byte
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
		leaf := record(t, k, v)
		p, err := s.Append(context.Background(), leaf)
		if err != nil {
			t.Fatalf("append %s: %v", v, err)
		}
		if err := checkProof(k, s, leaf, p); err != nil {
			t.Fatalf("proof of %s: %v", v, err)
		}
		leaves = append(leaves, leaf)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close(context.Background())
	if _, err := s.Append(context.Background(), leaves[1]); !errors.Is(err, server.ErrDuplicate) {
		t.Fatalf("duplicate after restart: %v", err)
	}
	leaf := record(t, k, "1.0.3")
	p, err := s.Append(context.Background(), leaf)
	if err != nil {
		t.Fatal(err)
	}
	if p.Index != 3 {
		t.Fatalf("index %d after restart, want 3", p.Index)
	}
	if err := checkProof(k, s, leaf, p); err != nil {
		t.Fatal(err)
	}
}
