// Package pgtest gives tests a fresh schema on a real PostgreSQL.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
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
