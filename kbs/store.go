package kbs

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL
	_ "modernc.org/sqlite"             // SQLite, without cgo
)

// Model is a registered model: its digest, name and data key, wrapped
// under the broker's key-encryption key.
type Model struct {
	Digest  [32]byte
	Name    string
	Wrapped []byte
	Created time.Time
}

// Release is one key release, as the broker recorded it after the log did.
type Release struct {
	LogIndex uint64
	Model    [32]byte
	Bundle   [32]byte
	NodeKey  []byte
	At       time.Time
}

// ErrNotFound: no such model.
var ErrNotFound = errors.New("no such model")

// Store keeps models and releases. SQLStore is the implementation, on
// SQLite or PostgreSQL.
type Store interface {
	PutModel(ctx context.Context, m Model) error
	Model(ctx context.Context, digest [32]byte) (*Model, error)
	Models(ctx context.Context) ([]Model, error)
	AddRelease(ctx context.Context, r Release) error
	Releases(ctx context.Context) ([]Release, error)
	// Rewrap replaces every model's wrapped key with f's, in one
	// transaction: an error from f changes nothing.
	Rewrap(ctx context.Context, f func(Model) ([]byte, error)) (int, error)
	Close() error
}

// SQLStore is a Store on database/sql.
type SQLStore struct {
	db *sql.DB
}

// OpenStore opens "sqlite:FILE" (embedded, the default) or a
// "postgres://…" URL, and creates the tables.
func OpenStore(ctx context.Context, dsn string) (*SQLStore, error) {
	var driver, source, blob string
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		driver, source, blob = "sqlite", strings.TrimPrefix(dsn, "sqlite:")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)", "BLOB"
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		driver, source, blob = "pgx", dsn, "BYTEA"
	default:
		return nil, fmt.Errorf("--db %q: use sqlite:FILE or postgres://…", dsn)
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return nil, err
	}
	if driver == "sqlite" {
		db.SetMaxOpenConns(1)
	}
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS kbs_models (digest TEXT PRIMARY KEY, name TEXT NOT NULL, wrapped ` + blob + ` NOT NULL, created BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS kbs_releases (log_index BIGINT PRIMARY KEY, model TEXT NOT NULL, bundle TEXT NOT NULL, node_key ` + blob + ` NOT NULL, at BIGINT NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: %v", err)
		}
	}
	return &SQLStore{db: db}, nil
}

func hexOf(d [32]byte) string { return hex.EncodeToString(d[:]) }

func unhex(s string) ([32]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return [32]byte{}, fmt.Errorf("store: %q is not a 32-byte hex digest", s)
	}
	return [32]byte(b), nil
}

// ErrExists: a model with that digest is registered already (its key
// never changes).
var ErrExists = errors.New("the model is already registered")

// PutModel registers a model.
func (s *SQLStore) PutModel(ctx context.Context, m Model) error {
	if _, err := s.Model(ctx, m.Digest); err == nil {
		return ErrExists
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO kbs_models (digest, name, wrapped, created) VALUES ($1, $2, $3, $4)`, hexOf(m.Digest), m.Name, m.Wrapped, m.Created.Unix())
	return err
}

// Model returns a registered model.
func (s *SQLStore) Model(ctx context.Context, digest [32]byte) (*Model, error) {
	m := &Model{Digest: digest}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT name, wrapped, created FROM kbs_models WHERE digest = $1`, hexOf(digest)).Scan(&m.Name, &m.Wrapped, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	m.Created = time.Unix(created, 0).UTC()
	return m, nil
}

// Models lists the registered models.
func (s *SQLStore) Models(ctx context.Context) ([]Model, error) { return models(ctx, s.db) }

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func models(ctx context.Context, q querier) ([]Model, error) {
	rows, err := q.QueryContext(ctx, `SELECT digest, name, wrapped, created FROM kbs_models ORDER BY digest`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Model
	for rows.Next() {
		var m Model
		var d string
		var created int64
		if err := rows.Scan(&d, &m.Name, &m.Wrapped, &created); err != nil {
			return nil, err
		}
		if m.Digest, err = unhex(d); err != nil {
			return nil, err
		}
		m.Created = time.Unix(created, 0).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// AddRelease records a release (idempotent on the log index).
func (s *SQLStore) AddRelease(ctx context.Context, r Release) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO kbs_releases (log_index, model, bundle, node_key, at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (log_index) DO NOTHING`,
		int64(r.LogIndex), hexOf(r.Model), hexOf(r.Bundle), r.NodeKey, r.At.Unix())
	return err
}

// Releases lists the recorded releases by log index.
func (s *SQLStore) Releases(ctx context.Context) ([]Release, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT log_index, model, bundle, node_key, at FROM kbs_releases ORDER BY log_index`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		var idx, at int64
		var m, b string
		if err := rows.Scan(&idx, &m, &b, &r.NodeKey, &at); err != nil {
			return nil, err
		}
		if r.Model, err = unhex(m); err != nil {
			return nil, err
		}
		if r.Bundle, err = unhex(b); err != nil {
			return nil, err
		}
		r.LogIndex, r.At = uint64(idx), time.Unix(at, 0).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// Rewrap implements Store.
func (s *SQLStore) Rewrap(ctx context.Context, f func(Model) ([]byte, error)) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	ms, err := models(ctx, tx)
	if err != nil {
		return 0, err
	}
	for _, m := range ms {
		w, err := f(m)
		if err != nil {
			return 0, err
		}
		res, err := tx.ExecContext(ctx, `UPDATE kbs_models SET wrapped = $1 WHERE digest = $2 AND wrapped = $3`, w, hexOf(m.Digest), m.Wrapped)
		if err != nil {
			return 0, err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return 0, fmt.Errorf("model %x changed during the rotation: nothing was changed; run it again", m.Digest[:8])
		}
	}
	return len(ms), tx.Commit()
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }
