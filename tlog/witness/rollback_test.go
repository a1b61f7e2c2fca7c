package witness

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/tlog"
)

// rollbackFixture is a witness key and a log with trees of sizes 1 and 2.
type rollbackFixture struct {
	logS note.Signer
	logV note.Verifier
	wS   note.Signer
	// cp1 and cp2 are add-checkpoint bodies: 0→1 and 1→2.
	cp1, cp2 []byte
}

func newRollbackFixture(t *testing.T) *rollbackFixture {
	t.Helper()
	ls, lv, _ := tlog.GenerateKey(tlog.KindLog, "log.test")
	ws, _, _ := tlog.GenerateKey(tlog.KindWitness, "w.test")
	f := &rollbackFixture{}
	f.logS, _ = note.NewSigner(ls)
	f.logV, _ = note.NewVerifier(lv)
	f.wS, _ = tlog.NewCosignerFromKey(ws)
	h := rfc6962.DefaultHasher
	a, b := h.HashLeaf([]byte("a")), h.HashLeaf([]byte("b"))
	sign := func(size uint64, root []byte) []byte {
		n, err := note.Sign(&note.Note{Text: string(log.Checkpoint{Origin: "log.test", Size: size, Hash: root}.Marshal())}, f.logS)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	f.cp1 = append([]byte("old 0\n\n"), sign(1, a)...)
	f.cp2 = append([]byte("old 1\n"+base64.StdEncoding.EncodeToString(b)+"\n\n"), sign(2, h.HashChildren(a, b))...)
	return f
}

func (f *rollbackFixture) open(dir, marker string, reset bool, logs *bytes.Buffer) (*Witness, error) {
	cfg := Config{Dir: dir, Marker: marker, Signer: f.wS, Logs: []note.Verifier{f.logV}, ResetState: reset}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return New(cfg)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStateRollback: a witness whose state is deleted, rolled back or
// lost with its whole directory refuses to start (its cosign marker, kept
// apart, records what it cosigned); --reset-state starts, loudly.
func TestStateRollback(t *testing.T) {
	f := newRollbackFixture(t)
	base := t.TempDir()
	dir, marker := filepath.Join(base, "state"), filepath.Join(base, "w.cosigned")
	state := filepath.Join(dir, stateFile)
	w, err := f.open(dir, marker, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddCheckpoint(f.cp1); err != nil {
		t.Fatal(err)
	}
	copyFile(t, state, filepath.Join(base, "state-at-1"))
	if _, err := w.AddCheckpoint(f.cp2); err != nil {
		t.Fatal(err)
	}
	// The marker holds size 2 once size 2 is cosigned.
	if m, err := w.readMarker(); err != nil || m.Logs["log.test"] != 2 {
		t.Fatalf("marker after cosigning size 2: %+v %v", m, err)
	}
	w.Close()

	refused := func(what, want string) {
		t.Helper()
		w, err := f.open(dir, marker, false, nil)
		if err == nil {
			w.Close()
			t.Fatalf("%s: the witness started", what)
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--reset-state") || !strings.Contains(err.Error(), "size 2") {
			t.Fatalf("%s: %v", what, err)
		}
	}
	os.Remove(state)
	refused("state deleted", "is missing")
	copyFile(t, filepath.Join(base, "state-at-1"), state)
	refused("state rolled back", "rolled back")
	os.RemoveAll(dir)
	refused("state directory deleted", "is missing")

	// --reset-state starts from the state as it is, says so, and rewrites
	// the marker: a plain restart then works.
	os.MkdirAll(dir, 0o700)
	copyFile(t, filepath.Join(base, "state-at-1"), state)
	var logs bytes.Buffer
	w, err = f.open(dir, marker, true, &logs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "WITNESS STATE RESET") || !strings.Contains(logs.String(), "rolled back") {
		t.Fatalf("reset not logged loudly:\n%s", logs.String())
	}
	if size, _ := w.Latest("log.test"); size != 1 {
		t.Fatalf("size after reset %d", size)
	}
	w.Close()
	if w, err = f.open(dir, marker, false, nil); err != nil {
		t.Fatalf("restart after reset: %v", err)
	}
	w.Close()

	// A marker of another key is refused.
	other := newRollbackFixture(t)
	if w, err := other.open(dir, marker, false, nil); err == nil || !strings.Contains(err.Error(), "belongs to witness key") {
		if err == nil {
			w.Close()
		}
		t.Fatalf("another key's marker: %v", err)
	}
}

// TestStateRollbackDefaultMarker: with the marker in the state directory
// (the library default), a deleted state file is still refused.
func TestStateRollbackDefaultMarker(t *testing.T) {
	f := newRollbackFixture(t)
	dir := t.TempDir()
	w, err := f.open(dir, "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddCheckpoint(f.cp1); err != nil {
		t.Fatal(err)
	}
	w.Close()
	os.Remove(filepath.Join(dir, stateFile))
	if w, err := f.open(dir, "", false, nil); err == nil || !strings.Contains(err.Error(), "is missing") {
		if err == nil {
			w.Close()
		}
		t.Fatalf("deleted state: %v", err)
	}
}
