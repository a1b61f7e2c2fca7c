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
	"sort"
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
	// Marker is the cosign marker file: it names the witness key and
	// records the largest size this key has cosigned per log, written
	// durably before each cosignature of a larger size. A state that is
	// missing or older than the marker is refused at start. Keep it out
	// of Dir (sworn witness serve puts it beside the key file), so that
	// losing or restoring the whole state directory is caught too. Empty:
	// Dir/witness-marker.json, which catches only a lost or rolled-back
	// state file.
	Marker string
	// ResetState starts even though the state is missing, corrupt or
	// older than the marker, with the state as it is (or empty); the
	// marker is rewritten to match. The operator vouches that the key has
	// not cosigned anything the state does not hold: a wrong reset lets
	// the witness cosign a fork.
	ResetState bool
}

// Witness is a running witness.
type Witness struct {
	cfg    Config
	logs   map[string]note.Verifier
	lock   *dirlock.Lock
	mu     sync.Mutex
	state  map[string]treeState
	marker markerDoc
}

type treeState struct {
	Size uint64 `json:"size"`
	Hash []byte `json:"hash"`
}

type stateDoc struct {
	Logs map[string]treeState `json:"logs"`
}

// markerDoc is the cosign marker: the key it belongs to and the largest
// size it has cosigned per log origin.
type markerDoc struct {
	Key  string            `json:"key"`
	Logs map[string]uint64 `json:"logs"`
}

const markerFile = "witness-marker.json"

// maxStateFile bounds the state and marker files.
const maxStateFile = 16 << 20

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
	if cfg.Marker == "" {
		cfg.Marker = filepath.Join(cfg.Dir, markerFile)
	}
	w := &Witness{cfg: cfg, logs: map[string]note.Verifier{}, lock: lock, state: map[string]treeState{}}
	for _, v := range cfg.Logs {
		w.logs[v.Name()] = v
	}
	if err := w.load(); err != nil {
		lock.Release()
		return nil, err
	}
	return w, nil
}

// load reads the state and the cosign marker, refuses a state that is
// missing, corrupt or older than what the key has cosigned (unless
// ResetState), and writes the marker for the state it starts from.
func (w *Witness) load() error {
	marker, problem := w.check()
	if problem != nil && !w.cfg.ResetState {
		return fmt.Errorf("%v (only if this key has cosigned nothing beyond this state, start once with --reset-state; see docs/tlog.md)", problem)
	}
	if w.cfg.ResetState {
		w.cfg.Logger.Error("WITNESS STATE RESET (--reset-state): starting from the state as it is, and rewriting the cosign marker to match. If this key cosigned anything beyond this state, it may now cosign a fork.",
			"state", filepath.Join(w.cfg.Dir, stateFile), "marker", w.cfg.Marker, "problem", fmt.Sprint(problem))
		marker = nil
	}
	w.marker = markerDoc{Key: w.keyID(), Logs: map[string]uint64{}}
	if marker != nil {
		w.marker.Logs = marker.Logs
	}
	for o, st := range w.state {
		w.marker.Logs[o] = max(w.marker.Logs[o], st.Size)
	}
	return w.writeMarker()
}

// check loads the state into w.state (empty if missing or corrupt) and
// returns the marker (nil if none) and what is wrong with the state.
func (w *Witness) check() (*markerDoc, error) {
	statePath := filepath.Join(w.cfg.Dir, stateFile)
	data, err := readBounded(statePath)
	missing := errors.Is(err, os.ErrNotExist)
	if err != nil && !missing {
		return nil, fmt.Errorf("witness state: %v", err)
	}
	if !missing {
		var doc stateDoc
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("witness state %s is corrupt (%v); restore it from backup — starting over would let the log fork", statePath, err)
		}
		if doc.Logs != nil {
			w.state = doc.Logs
		}
	}
	m, err := w.readMarker()
	if err != nil || m == nil {
		return nil, err
	}
	if m.Key != w.keyID() {
		return nil, fmt.Errorf("cosign marker %s belongs to witness key %s, not to this key %s; give this key's marker", w.cfg.Marker, m.Key, w.keyID())
	}
	origins := make([]string, 0, len(m.Logs))
	for o := range m.Logs {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	for _, o := range origins {
		size := m.Logs[o]
		switch {
		case size == 0:
		case missing:
			return m, fmt.Errorf("witness state %s is missing, but this witness key has cosigned log %q up to size %d (cosign marker %s): restore the latest state — starting over would let the log fork", statePath, o, size, w.cfg.Marker)
		case w.state[o].Size < size:
			return m, fmt.Errorf("witness state %s holds log %q at size %d, but this witness key has cosigned it up to size %d (cosign marker %s): the state was rolled back; restore the latest state — starting from it would let the log fork", statePath, o, w.state[o].Size, size, w.cfg.Marker)
		}
	}
	return m, nil
}

func (w *Witness) keyID() string {
	return fmt.Sprintf("%s+%08x", w.cfg.Signer.Name(), w.cfg.Signer.KeyHash())
}

// readMarker reads the cosign marker, or returns nil if there is none.
func (w *Witness) readMarker() (*markerDoc, error) {
	data, err := readBounded(w.cfg.Marker)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cosign marker: %v", err)
	}
	var m markerDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || m.Key == "" {
		return nil, fmt.Errorf("cosign marker %s is corrupt (%v); restore it from backup", w.cfg.Marker, err)
	}
	if m.Logs == nil {
		m.Logs = map[string]uint64{}
	}
	return &m, nil
}

func (w *Witness) writeMarker() error {
	data, err := json.Marshal(w.marker)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(w.cfg.Marker, data, 0o600); err != nil {
		return fmt.Errorf("write cosign marker: %v (it must be on durable, writable storage; see --marker)", err)
	}
	return nil
}

// readBounded reads a state or marker file of bounded size.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err == nil && len(data) > maxStateFile {
		err = fmt.Errorf("%s is larger than %d bytes", path, maxStateFile)
	}
	return data, err
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
	// The marker records the size before the key cosigns it.
	if cp.Size > w.marker.Logs[cp.Origin] {
		prev := w.marker.Logs[cp.Origin]
		w.marker.Logs[cp.Origin] = cp.Size
		if err := w.writeMarker(); err != nil {
			w.marker.Logs[cp.Origin] = prev
			return nil, fail(http.StatusInternalServerError, "save cosign marker: %v", err)
		}
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
