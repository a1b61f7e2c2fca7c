package kbs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/internal/pgtest"
	"github.com/sworn-dev/sworn/kbs"
)

// stores opens each kind of store, empty: SQLite, and PostgreSQL when one
// is reachable.
func stores(t *testing.T) map[string]string {
	return map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "kbs.db"),
		"postgres": "postgres",
	}
}

func openStore(t *testing.T, kind, dsn string) *kbs.SQLStore {
	t.Helper()
	if kind == "postgres" {
		dsn = pgtest.DSN(t)
	}
	s, err := kbs.OpenStore(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// TestStore runs the store's contract on SQLite and PostgreSQL: models
// registered once, releases idempotent by log index, and a key-encryption
// key rotation that is all or nothing.
func TestStore(t *testing.T) {
	for kind, dsn := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			s := openStore(t, kind, dsn)
			ctx := t.Context()
			old := randomKey()
			var digests [][32]byte
			for i := range 3 {
				var d [32]byte
				rand.Read(d[:])
				digests = append(digests, d)
				if err := registerWith(ctx, s, old, d, fmt.Sprintf("m%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.PutModel(ctx, kbs.Model{Digest: digests[0], Name: "again", Wrapped: []byte("x"), Created: time.Now()}); !errors.Is(err, kbs.ErrExists) {
				t.Fatalf("a second registration: %v", err)
			}
			for range 2 {
				if err := s.AddRelease(ctx, kbs.Release{LogIndex: 7, Model: digests[1], Bundle: digests[2], NodeKey: []byte{1, 2}, At: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			if rs, err := s.Releases(ctx); err != nil || len(rs) != 1 || rs[0].LogIndex != 7 || rs[0].Model != digests[1] || !bytes.Equal(rs[0].NodeKey, []byte{1, 2}) {
				t.Fatalf("releases: %+v %v", rs, err)
			}

			// Rotation under a wrong old key changes nothing.
			nk := randomKey()
			before, _ := s.Models(ctx)
			if _, err := kbs.RotateKEK(ctx, s, randomKey(), nk); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("rotation with a wrong old key: %v", err)
			}
			after, _ := s.Models(ctx)
			for i := range before {
				if !bytes.Equal(before[i].Wrapped, after[i].Wrapped) {
					t.Fatal("a failed rotation changed a wrapped key")
				}
			}
			if _, err := kbs.RotateKEK(ctx, s, old, old); err == nil {
				t.Fatal("a rotation to the same key")
			}
			n, err := kbs.RotateKEK(ctx, s, old, nk)
			if err != nil || n != 3 {
				t.Fatalf("rotation: %d %v", n, err)
			}
			// The keys open under the new KEK only, and are the same keys.
			if _, err := kbs.RotateKEK(ctx, s, old, randomKey()); err == nil {
				t.Fatal("the old KEK still opens the keys after the rotation")
			}
			if _, err := kbs.RotateKEK(ctx, s, nk, old); err != nil {
				t.Fatalf("rotating back: %v", err)
			}
		})
	}
}

// registerWith stores a random model key wrapped under kek, as a broker
// under kek registers it.
func registerWith(ctx context.Context, s kbs.Store, kek []byte, d [32]byte, name string) error {
	return s.PutModel(ctx, kbs.Model{Digest: d, Name: name, Wrapped: kbs.WrapKey(kek, d, randomKey()), Created: time.Now()})
}

// TestPostgresRestart: the store's PostgreSQL restarts under it; the next
// requests after it is back succeed without reopening the store, and
// nothing registered before is lost.
func TestPostgresRestart(t *testing.T) {
	srv := pgtest.Start(t)
	s, err := kbs.OpenStore(t.Context(), srv.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kek := randomKey()
	var d1, d2 [32]byte
	rand.Read(d1[:])
	rand.Read(d2[:])
	if err := registerWith(t.Context(), s, kek, d1, "before"); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	// The first use after a restart may find a dead pooled connection;
	// database/sql retries on a fresh one.
	var last error
	for range 5 {
		if last = registerWith(t.Context(), s, kek, d2, "after"); last == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("the store did not recover from the restart: %v", last)
	}
	for _, d := range [][32]byte{d1, d2} {
		if _, err := s.Model(t.Context(), d); err != nil {
			t.Fatalf("model %x after the restart: %v", d[:4], err)
		}
	}
}
