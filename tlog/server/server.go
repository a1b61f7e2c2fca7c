// Package server is sworn's release log: a Tessera log personality that
// accepts signed records from allow-listed publishers, answers each append
// with a stapled proof once a (witnessed) checkpoint covers it, and serves
// the C2SP tlog-tiles read API.
package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/tlog"
)

// Config configures a log.
type Config struct {
	// Dir is the POSIX storage directory.
	Dir string
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// Publishers are the keys allowed to append records. None: the log
	// refuses every append (read only).
	Publishers []note.Verifier
	// Witnesses, when set, must cosign a checkpoint before it is published
	// (and so before an append is answered).
	Witnesses *tessera.WitnessGroup
	// WitnessTimeout bounds each witness round (default 5s).
	WitnessTimeout time.Duration
	// BatchMaxAge is how long an entry may wait for its batch (default
	// 50ms); BatchMaxSize the largest batch (default 512).
	BatchMaxAge  time.Duration
	BatchMaxSize uint
	// CheckpointInterval is how often a checkpoint is signed (default and
	// POSIX minimum: 100ms).
	CheckpointInterval time.Duration
	// AppendTimeout bounds the wait for a published checkpoint (default 30s).
	AppendTimeout time.Duration
	// HTTPClient is used to reach witnesses.
	HTTPClient *http.Client
	// Logger receives operational messages (never record contents).
	Logger *slog.Logger
}

// Server is a running log.
type Server struct {
	cfg      Config
	origin   string
	add      tessera.AddFn
	reader   tessera.LogReader
	awaiter  *tessera.PublicationAwaiter
	shutdown func(context.Context) error
	cancel   context.CancelFunc

	mu   sync.Mutex
	seen map[string]uint64 // unique key → index (or pending)
}

const pending = ^uint64(0)

// Errors returned by Append, mapped to HTTP statuses by the handler.
var (
	ErrDuplicate = errors.New("duplicate record")
	ErrForbidden = errors.New("publisher not allowed")
	ErrBadRecord = errors.New("bad record")
)

// New opens (or creates) the log in cfg.Dir and starts it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Signer == nil {
		return nil, errors.New("log: no checkpoint signing key")
	}
	if cfg.BatchMaxAge == 0 {
		cfg.BatchMaxAge = 50 * time.Millisecond
	}
	if cfg.BatchMaxSize == 0 {
		cfg.BatchMaxSize = 512
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = 100 * time.Millisecond
	}
	if cfg.AppendTimeout == 0 {
		cfg.AppendTimeout = 30 * time.Second
	}
	if cfg.WitnessTimeout == 0 {
		cfg.WitnessTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	driver, err := posix.New(ctx, posix.Config{Path: cfg.Dir, HTTPClient: cfg.HTTPClient})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("log storage %s: %v", cfg.Dir, err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(cfg.Signer).
		WithBatching(cfg.BatchMaxSize, cfg.BatchMaxAge).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithCheckpointRepublishInterval(10 * time.Minute)
	if cfg.Witnesses != nil {
		opts = opts.WithWitnesses(*cfg.Witnesses, &tessera.WitnessOptions{Timeout: cfg.WitnessTimeout})
	}
	app, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("log %s: %v", cfg.Dir, err)
	}
	s := &Server{cfg: cfg, origin: cfg.Signer.Name(), add: app.Add, reader: reader, shutdown: shutdown, cancel: cancel,
		awaiter: tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 10*time.Millisecond), seen: map[string]uint64{}}
	if err := s.loadSeen(ctx); err != nil {
		shutdown(ctx)
		cancel()
		return nil, err
	}
	return s, nil
}

// Origin returns the log's origin.
func (s *Server) Origin() string { return s.origin }

// Reader returns the log's reader.
func (s *Server) Reader() tessera.LogReader { return s.reader }

// Close publishes what was added and stops the log.
func (s *Server) Close(ctx context.Context) error {
	err := s.shutdown(ctx)
	s.cancel()
	return err
}

// uniqueKey names what may appear only once in the log.
func uniqueKey(r *tlog.Record, leaf []byte) string {
	switch r.Type {
	case tlog.TypeRelease:
		return "release:" + r.Release.Key()
	case tlog.TypeRevocation:
		return "revocation:" + r.Revocation.ReleaseID + "@" + r.Revocation.Version
	}
	h := sha256.Sum256(leaf)
	return fmt.Sprintf("leaf:%x", h)
}

// loadSeen indexes the records already in the log, so duplicates are
// refused across restarts.
func (s *Server) loadSeen(ctx context.Context) error {
	size, err := s.reader.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("log %s: read size: %v", s.cfg.Dir, err)
	}
	for i := uint64(0); i*layout.EntryBundleWidth < size; i++ {
		raw, err := s.reader.ReadEntryBundle(ctx, i, layout.PartialTileSize(0, i, size))
		if err != nil {
			return fmt.Errorf("log %s: read entry bundle %d: %v", s.cfg.Dir, i, err)
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil {
			return fmt.Errorf("log %s: entry bundle %d is corrupt: %v", s.cfg.Dir, i, err)
		}
		for j, e := range b.Entries {
			r, err := tlog.ParseLeaf(e)
			if err != nil {
				s.cfg.Logger.Warn("log entry is not a valid record", "index", i*layout.EntryBundleWidth+uint64(j), "err", err)
				continue
			}
			s.seen[uniqueKey(r, e)] = i*layout.EntryBundleWidth + uint64(j)
		}
	}
	return nil
}

// Append checks a signed record, adds it, waits until a published
// checkpoint covers it and returns its proof.
func (s *Server) Append(ctx context.Context, leaf []byte) (*tlog.Proof, error) {
	r, err := tlog.ParseLeaf(leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if len(s.cfg.Publishers) == 0 {
		return nil, fmt.Errorf("%w: this log is read-only (started without --publishers)", ErrForbidden)
	}
	if _, err := r.VerifySignature(s.cfg.Publishers); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	key := uniqueKey(r, leaf)
	s.mu.Lock()
	if idx, dup := s.seen[key]; dup {
		s.mu.Unlock()
		if idx == pending {
			return nil, fmt.Errorf("%w: %s is being appended by another request", ErrDuplicate, key)
		}
		return nil, fmt.Errorf("%w: %s is already entry %d", ErrDuplicate, key, idx)
	}
	s.seen[key] = pending
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.seen, key)
		s.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	fut := s.add(ctx, tessera.NewEntry(leaf))
	idx, err := fut()
	if err != nil {
		forget()
		return nil, err
	}
	s.mu.Lock()
	s.seen[key] = idx.Index
	s.mu.Unlock()
	_, cpRaw, err := s.awaiter.Await(ctx, func() (tessera.Index, error) { return idx, nil })
	if err != nil {
		return nil, fmt.Errorf("entry %d was sequenced but no checkpoint covering it was published in time (witnesses down?): %v", idx.Index, err)
	}
	return s.proofFor(ctx, leaf, idx.Index, cpRaw)
}

func (s *Server) proofFor(ctx context.Context, leaf []byte, index uint64, cpRaw []byte) (*tlog.Proof, error) {
	body, _, _ := bytes.Cut(cpRaw, []byte("\n\n"))
	var cp log.Checkpoint
	if _, err := cp.Unmarshal(append(bytes.Clone(body), '\n')); err != nil {
		return nil, fmt.Errorf("published checkpoint is unreadable: %v", err)
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, s.reader.ReadTile)
	if err != nil {
		return nil, err
	}
	hs, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("build inclusion proof for entry %d: %v", index, err)
	}
	p := &tlog.Proof{Record: leaf, Index: index, Checkpoint: cpRaw}
	for _, h := range hs {
		if len(h) != sha256.Size {
			return nil, errors.New("inclusion proof has a malformed hash")
		}
		p.Hashes = append(p.Hashes, [sha256.Size]byte(h))
	}
	return p, nil
}

// Handler serves POST /add (body: a canonical signed record; answer: its
// proof file) and the tlog-tiles read API: GET /checkpoint, GET /tile/….
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", s.handleAdd)
	mux.HandleFunc("GET /checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp, err := s.reader.ReadCheckpoint(r.Context())
		if err != nil {
			http.Error(w, "no checkpoint yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(cp)
	})
	mux.HandleFunc("GET /tile/{level}/{index...}", func(w http.ResponseWriter, r *http.Request) {
		var data []byte
		var err error
		lvl := r.PathValue("level")
		if lvl == "entries" {
			var idx uint64
			var p uint8
			idx, p, err = layout.ParseTileIndexPartial(r.PathValue("index"))
			if err == nil {
				data, err = s.reader.ReadEntryBundle(r.Context(), idx, p)
			}
		} else {
			var l, idx uint64
			var p uint8
			l, idx, p, err = layout.ParseTileLevelIndexPartial(lvl, r.PathValue("index"))
			if err == nil {
				data, err = s.reader.ReadTile(r.Context(), l, idx, p)
			}
		}
		if err != nil || data == nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Write(data)
	})
	return mux
}

func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, tlog.MaxRecordSize))
	if err != nil {
		http.Error(w, fmt.Sprintf("record body is larger than %d bytes or unreadable", tlog.MaxRecordSize), http.StatusRequestEntityTooLarge)
		return
	}
	p, err := s.Append(r.Context(), body)
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(p.Marshal())
		return
	case errors.Is(err, ErrBadRecord):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, ErrForbidden):
		http.Error(w, err.Error(), http.StatusForbidden)
	case errors.Is(err, ErrDuplicate):
		http.Error(w, err.Error(), http.StatusConflict)
	case errors.Is(err, tessera.ErrPushback):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "log is busy; retry", http.StatusServiceUnavailable)
	default:
		http.Error(w, strings.TrimSpace(err.Error()), http.StatusServiceUnavailable)
	}
	s.cfg.Logger.Info("append refused", "err", err)
}
