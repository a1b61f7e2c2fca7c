package witness

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/tlog"
)

func TestAddCheckpointStatuses(t *testing.T) {
	ls, lv, _ := tlog.GenerateKey(tlog.KindLog, "log.test")
	logS, _ := note.NewSigner(ls)
	logV, _ := note.NewVerifier(lv)
	os2, _, _ := tlog.GenerateKey(tlog.KindLog, "log.test")
	otherS, _ := note.NewSigner(os2)
	ws, _, _ := tlog.GenerateKey(tlog.KindWitness, "w.test")
	wS, _ := tlog.NewCosignerFromKey(ws)
	dir := t.TempDir()
	w, err := New(Config{Dir: dir, Signer: wS, Logs: []note.Verifier{logV}})
	if err != nil {
		t.Fatal(err)
	}
	cp := func(s note.Signer, origin string, size uint64, seed string) string {
		h := sha256.Sum256([]byte(seed))
		b, _ := note.Sign(&note.Note{Text: string(log.Checkpoint{Origin: origin, Size: size, Hash: h[:]}.Marshal())}, s)
		return string(b)
	}
	h := sha256.Sum256([]byte("p"))
	hash := base64.StdEncoding.EncodeToString(h[:])
	if _, err := w.AddCheckpoint([]byte("old 0\n\n" + cp(logS, "log.test", 1, "a"))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		status     int
	}{
		{"malformed", "hello", 400},
		{"no blank line", "old 0\n" + hash, 400},
		{"bad hash line", "old 1\nxx\n\n" + cp(logS, "log.test", 2, "b"), 400},
		{"unknown origin", "old 0\n\n" + cp(logS, "other.test", 1, "a"), 404},
		{"bad signature", "old 1\n\n" + cp(otherS, "log.test", 2, "b"), 403},
		{"old larger than size", "old 3\n\n" + cp(logS, "log.test", 2, "b"), 400},
		{"stale old size", "old 0\n\n" + cp(logS, "log.test", 2, "b"), 409},
		{"fork at same size", "old 1\n\n" + cp(logS, "log.test", 1, "forked"), 409},
		{"bad consistency proof", "old 1\n" + hash + "\n\n" + cp(logS, "log.test", 2, "b"), 422},
		{"proof between equal sizes", "old 1\n" + hash + "\n\n" + cp(logS, "log.test", 1, "a"), 422},
	}
	for _, tc := range tests {
		_, err := w.AddCheckpoint([]byte(tc.body))
		var we *Error
		if !errors.As(err, &we) || we.Status != tc.status {
			t.Errorf("%s: got %v, want status %d", tc.name, err, tc.status)
		}
	}
	// The same checkpoint again is cosigned (idempotent); state survives reopening.
	if sigs, err := w.AddCheckpoint([]byte("old 1\n\n" + cp(logS, "log.test", 1, "a"))); err != nil || !strings.HasPrefix(string(sigs), "— w.test ") {
		t.Fatalf("repeat: %q %v", sigs, err)
	}
	if _, err := New(Config{Dir: dir, Signer: wS, Logs: []note.Verifier{logV}}); err == nil {
		t.Fatal("a second witness on the same state directory started")
	}
	w.Close()
	w2, err := New(Config{Dir: dir, Signer: wS, Logs: []note.Verifier{logV}})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if size, _ := w2.Latest("log.test"); size != 1 {
		t.Fatalf("size after reopen %d", size)
	}
}
