// Package witness is a C2SP tlog-witness: it checks that each checkpoint a
// log presents is signed by the log and consistent with the last one it
// cosigned, remembers that checkpoint durably, and cosigns it with a
// timestamped cosignature/v1 signature. A witness never cosigns two
// inconsistent checkpoints of one log, even across crashes and restarts.
package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/internal/atomicfile"
	"github.com/sworn-dev/sworn/internal/dirlock"
)

// maxBody bounds an add-checkpoint request: 63 proof lines and a checkpoint.
const maxBody = 32 << 10

const stateFile = "witness-state.json"

// Config configures a witness.
type Config struct {
	// Dir holds the witness's state.
	Dir string
	// Signer makes cosignature/v1 signatures (see tlog.NewCosigner).
	Signer note.Signer
	// Logs are the verifier keys of the logs this witness follows; each
	// key's name is its log's origin.
	Logs []note.Verifier
	// Logger receives operational messages.
	Logger *slog.Logger
}

// Witness is a running witness.
type Witness struct {
	cfg   Config
	logs  map[string]note.Verifier
	lock  *dirlock.Lock
	mu    sync.Mutex
	state map[string]treeState
}

type treeState struct {
	Size uint64 `json:"size"`
	Hash []byte `json:"hash"`
}

type stateDoc struct {
	Logs map[string]treeState `json:"logs"`
}

// New opens a witness, loading its state from cfg.Dir.
func New(cfg Config) (*Witness, error) {
	if cfg.Signer == nil {
		return nil, errors.New("witness: no signing key")
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: no log keys to follow")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("witness state directory: %v", err)
	}
	// Two witnesses on one state directory could each cosign one side of a
	// fork: only one instance may hold it.
	lock, err := dirlock.Acquire(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("witness: %v", err)
	}
	w := &Witness{cfg: cfg, logs: map[string]note.Verifier{}, lock: lock, state: map[string]treeState{}}
	for _, v := range cfg.Logs {
		w.logs[v.Name()] = v
	}
	data, err := os.ReadFile(filepath.Join(cfg.Dir, stateFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Release()
		return nil, fmt.Errorf("witness state: %v", err)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
	default:
		var doc stateDoc
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			lock.Release()
			return nil, fmt.Errorf("witness state %s is corrupt (%v); restore it from backup — starting over would let the log fork", filepath.Join(cfg.Dir, stateFile), err)
		}
		if doc.Logs != nil {
			w.state = doc.Logs
		}
	}
	return w, nil
}

// Latest returns the size and root hash last cosigned for origin.
func (w *Witness) Latest(origin string) (uint64, []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.state[origin]
	return st.Size, st.Hash
}

// Error is an add-checkpoint failure with its HTTP status.
type Error struct {
	Status int
	// Size is the witness's current size, for 409 Conflict.
	Size uint64
	// Fork marks a 409 for a checkpoint that forks from the one cosigned
	// at the same size: it is answered as plain text, not as a size to
	// resynchronise from (which would invite the log to retry).
	Fork bool
	Err  error
}

// Close releases the witness's state directory.
func (w *Witness) Close() error { return w.lock.Release() }

func (e *Error) Error() string { return e.Err.Error() }

func fail(status int, format string, args ...any) *Error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// AddCheckpoint handles one tlog-witness add-checkpoint request body and
// returns the cosignature lines.
func (w *Witness) AddCheckpoint(body []byte) ([]byte, error) {
	oldLine, rest, ok := bytes.Cut(body, []byte("\n"))
	oldStr, isOld := strings.CutPrefix(string(oldLine), "old ")
	if !ok || !isOld {
		return nil, fail(http.StatusBadRequest, `request must start with "old <size>"`)
	}
	old, err := strconv.ParseUint(oldStr, 10, 64)
	if err != nil || strconv.FormatUint(old, 10) != oldStr {
		return nil, fail(http.StatusBadRequest, "old size %q is not a decimal number", oldStr)
	}
	var hashes [][]byte
	for {
		var l []byte
		l, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, fail(http.StatusBadRequest, "request ends before the blank line that precedes the checkpoint")
		}
		if len(l) == 0 {
			break
		}
		if len(hashes) == 63 {
			return nil, fail(http.StatusBadRequest, "more than 63 consistency proof hashes")
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(l))
		if err != nil || len(h) != 32 {
			return nil, fail(http.StatusBadRequest, "consistency proof line %d is not a base64 SHA-256 hash", len(hashes)+1)
		}
		hashes = append(hashes, h)
	}
	origin, _, _ := bytes.Cut(rest, []byte("\n"))
	v, known := w.logs[string(origin)]
	if !known {
		return nil, fail(http.StatusNotFound, "log %q is not followed by this witness", shorten(string(origin)))
	}
	cp, _, n, err := log.ParseCheckpoint(rest, v.Name(), v)
	if err != nil {
		return nil, fail(http.StatusForbidden, "checkpoint is not signed by the log's key: %v", err)
	}
	if len(cp.Hash) != sha256.Size {
		return nil, fail(http.StatusBadRequest, "checkpoint root hash is %d bytes, not %d", len(cp.Hash), sha256.Size)
	}
	if old > cp.Size {
		return nil, fail(http.StatusBadRequest, "old size %d is larger than the checkpoint size %d", old, cp.Size)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.state[cp.Origin]
	if old != cur.Size {
		return nil, &Error{Status: http.StatusConflict, Size: cur.Size, Err: fmt.Errorf("old size %d is not the witness's latest size %d", old, cur.Size)}
	}
	switch {
	case old == cp.Size:
		if len(hashes) != 0 {
			return nil, fail(http.StatusUnprocessableEntity, "a proof between equal sizes must be empty")
		}
		if old > 0 && !bytes.Equal(cur.Hash, cp.Hash) {
			w.cfg.Logger.Error("SPLIT VIEW: log signed two different trees of one size", "origin", cp.Origin, "size", cp.Size)
			return nil, &Error{Status: http.StatusConflict, Size: cur.Size, Fork: true, Err: fmt.Errorf("checkpoint of size %d has a different root than the one this witness cosigned: the log forked", cp.Size)}
		}
	case old == 0:
		if len(hashes) != 0 {
			return nil, fail(http.StatusUnprocessableEntity, "a proof from size 0 must be empty")
		}
	default:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, cp.Size, hashes, cur.Hash, cp.Hash); err != nil {
			return nil, fail(http.StatusUnprocessableEntity, "consistency proof %d→%d does not verify: %v", old, cp.Size, err)
		}
	}
	if cp.Size != cur.Size || cur.Size == 0 {
		next := map[string]treeState{}
		for k, s := range w.state {
			next[k] = s
		}
		next[cp.Origin] = treeState{Size: cp.Size, Hash: cp.Hash}
		data, err := json.Marshal(stateDoc{Logs: next})
		if err != nil {
			return nil, fail(http.StatusInternalServerError, "encode state: %v", err)
		}
		if err := atomicfile.Write(filepath.Join(w.cfg.Dir, stateFile), data, 0o600); err != nil {
			return nil, fail(http.StatusInternalServerError, "save state: %v", err)
		}
		w.state = next
	}
	// Cosign exactly the text the log's signature covers.
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.cfg.Signer)
	if err != nil {
		return nil, fail(http.StatusInternalServerError, "cosign: %v", err)
	}
	_, sigs, _ := bytes.Cut(signed, []byte("\n\n"))
	return sigs, nil
}

// Handler serves POST /add-checkpoint.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBody))
		if err != nil {
			http.Error(rw, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		sigs, err := w.AddCheckpoint(body)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) {
				we = &Error{Status: http.StatusInternalServerError, Err: err}
			}
			w.cfg.Logger.Info("add-checkpoint refused", "status", we.Status, "err", err)
			if we.Status == http.StatusConflict && !we.Fork {
				rw.Header().Set("Content-Type", "text/x.tlog.size")
				rw.WriteHeader(http.StatusConflict)
				fmt.Fprintf(rw, "%d\n", we.Size)
				return
			}
			http.Error(rw, we.Error(), we.Status)
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Write(sigs)
	})
	return mux
}

func shorten(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
