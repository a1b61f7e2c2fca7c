// Package server is sworn's release log: a Tessera log personality that
// accepts signed records from allow-listed publishers, answers each append
// with a stapled proof once a (witnessed) checkpoint covers it, and serves
// the C2SP tlog-tiles read API.
//
// Appends come one record per call (Append, POST /add) or many per call
// (AppendBatch, for publishers and importers with many records at once:
// each record is checked exactly as by Append, and all the accepted ones
// are proven under one published checkpoint). Throughput of single appends
// is bounded by how many are in flight: each waits for its batch
// (Config.BatchMaxAge) and for the next checkpoint (CheckpointInterval,
// 100ms at least with POSIX storage), so 512 concurrent callers top out
// near 5,000 records/s however fast the log is; AppendBatch reaches the
// log's CPU-bound rate with a few callers.
//
// Inclusion proofs are built from the log's tiles through a cache shared
// by all appends (see proofCache): each tile is read and its inner nodes
// hashed once, and every proof is checked against the checkpoint's root
// before it is returned.
package server

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/storage/mysql"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/internal/dirlock"
	"github.com/sworn-dev/sworn/tlog"
)

// Config configures a log.
type Config struct {
	// Dir is the POSIX storage directory.
	Dir string
	// DB, when set, stores the log in this MySQL database with Tessera's
	// MySQL driver instead of Dir. The database must hold Tessera's schema
	// (storage/mysql/schema.sql of the tessera module); checkpoints are then
	// signed at most once a second.
	DB *sql.DB
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
	// HTTPClient is used to reach witnesses (nil: a plain client); their
	// answers are bounded in size (tlog.BoundedClient).
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

	proofs *proofCache
	lock   *dirlock.Lock

	mu   sync.Mutex
	seen map[string]seenEntry // unique key → its entry (or pending)
}

const pending = ^uint64(0)

// seenEntry is a logged (or pending) record: its index and the SHA-256 of
// its leaf, so that a retry of the same bytes can be told from a
// conflicting record with the same key.
type seenEntry struct {
	index uint64
	leaf  [sha256.Size]byte
}

// DuplicateError refuses a record whose key is already in the log. When
// Same is set, the log holds exactly these bytes at Index: the publisher
// only needs the proof, which it can build from the tiles (tlog.Publish
// does so when the answer names the entry's index).
type DuplicateError struct {
	Key   string
	Index uint64
	Same  bool
}

func (e *DuplicateError) Error() string {
	if e.Index == pending {
		return fmt.Sprintf("%s is being appended by another request", e.Key)
	}
	if e.Same {
		return fmt.Sprintf("%s is already entry %d, with these exact bytes", e.Key, e.Index)
	}
	return fmt.Sprintf("%s is already entry %d, with other content", e.Key, e.Index)
}

// Is makes errors.Is(err, ErrDuplicate) hold.
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

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
		if cfg.DB != nil {
			cfg.CheckpointInterval = time.Second
		}
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
	// A witness's answer is read only up to a bounded size.
	cfg.HTTPClient = tlog.BoundedClient(cfg.HTTPClient)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var driver tessera.Driver
	var lock *dirlock.Lock
	var err error
	if cfg.DB != nil {
		cfg.Dir = "(MySQL)"
		driver, err = mysql.New(ctx, cfg.DB)
	} else {
		// The duplicate index lives in this process: a second log process
		// on the same directory could accept a release twice.
		if err = os.MkdirAll(cfg.Dir, 0o755); err == nil {
			lock, err = dirlock.Acquire(cfg.Dir)
		}
		if err == nil {
			err = rewitness(cfg)
		}
		if err == nil {
			driver, err = posix.New(ctx, posix.Config{Path: cfg.Dir, HTTPClient: cfg.HTTPClient})
		}
	}
	if err != nil {
		lock.Release()
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
		lock.Release()
		cancel()
		return nil, fmt.Errorf("log %s: %v", cfg.Dir, err)
	}
	s := &Server{cfg: cfg, origin: cfg.Signer.Name(), add: app.Add, reader: reader, shutdown: shutdown, cancel: cancel,
		awaiter: tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 10*time.Millisecond), seen: map[string]seenEntry{},
		proofs: newProofCache(reader.ReadTile)}
	s.lock = lock
	if err := s.loadSeen(ctx); err != nil {
		shutdown(ctx)
		lock.Release()
		cancel()
		return nil, err
	}
	return s, nil
}

// rewitness makes Tessera republish, through the witnesses, a POSIX log's
// published checkpoint that does not meet the witness policy (a log
// restarted with witnesses added): it is marked stale, so that the next
// publication round has it cosigned at once instead of at the next
// republish interval (10 min). Records already logged then get a proof on
// a witnessed checkpoint.
func rewitness(cfg Config) error {
	if cfg.Witnesses == nil {
		return nil
	}
	path := filepath.Join(cfg.Dir, layout.CheckpointPath)
	cp, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Witnesses.Satisfied(cp) {
		return nil
	}
	cfg.Logger.Info("the published checkpoint does not meet the witness policy; having it cosigned now")
	return os.Chtimes(path, time.Time{}, time.Unix(0, 0))
}

// Origin returns the log's origin.
func (s *Server) Origin() string { return s.origin }

// Reader returns the log's reader.
func (s *Server) Reader() tessera.LogReader { return s.reader }

// Close publishes what was added and stops the log.
func (s *Server) Close(ctx context.Context) error {
	err := s.shutdown(ctx)
	s.cancel()
	s.lock.Release()
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
			s.seen[uniqueKey(r, e)] = seenEntry{i*layout.EntryBundleWidth + uint64(j), sha256.Sum256(e)}
		}
	}
	return nil
}

// Append checks a signed record, adds it, waits until a published
// checkpoint covers it and returns its proof.
func (s *Server) Append(ctx context.Context, leaf []byte) (*tlog.Proof, error) {
	key, err := s.check(leaf)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	if err := s.reserve(key, leaf); err != nil {
		var de *DuplicateError
		if errors.As(err, &de) && de.Same {
			// The publisher will build the proof from the tiles: answer
			// once the published checkpoint covers the entry and meets
			// the witness policy.
			wctx, wcancel := context.WithTimeout(ctx, duplicateWait)
			defer wcancel()
			if werr := s.awaitWitnessed(wctx, de.Index); werr != nil {
				return nil, werr
			}
		}
		return nil, err
	}
	fut := s.add(ctx, tessera.NewEntry(leaf))
	idx, err := fut()
	if err != nil {
		s.forget(key)
		return nil, err
	}
	s.mu.Lock()
	s.seen[key] = seenEntry{idx.Index, sha256.Sum256(leaf)}
	s.mu.Unlock()
	cp, err := s.await(ctx, idx)
	if err != nil {
		return nil, err
	}
	return s.proofFor(ctx, leaf, idx.Index, cp)
}

// check parses a leaf strictly and verifies its publisher's signature; it
// returns the record's unique key.
func (s *Server) check(leaf []byte) (string, error) {
	l, err := tlog.ParseSignedLeaf(leaf)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if len(s.cfg.Publishers) == 0 {
		return "", fmt.Errorf("%w: this log is read-only (started without --publishers)", ErrForbidden)
	}
	if _, err := l.VerifySignature(s.cfg.Publishers); err != nil {
		return "", fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	return uniqueKey(l.Record, leaf), nil
}

// reserve marks key as being appended, or refuses a duplicate with a
// *DuplicateError.
func (s *Server) reserve(key string, leaf []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, dup := s.seen[key]; dup {
		return &DuplicateError{Key: key, Index: e.index, Same: e.index != pending && e.leaf == sha256.Sum256(leaf)}
	}
	s.seen[key] = seenEntry{index: pending}
	return nil
}

// forget releases a reservation whose entry was not sequenced.
func (s *Server) forget(key string) {
	s.mu.Lock()
	delete(s.seen, key)
	s.mu.Unlock()
}

// await waits for a published checkpoint covering idx.
func (s *Server) await(ctx context.Context, idx tessera.Index) ([]byte, error) {
	_, cpRaw, err := s.awaiter.Await(ctx, func() (tessera.Index, error) { return idx, nil })
	if err != nil {
		return nil, fmt.Errorf("entry %d was sequenced but no checkpoint covering it was published in time (witnesses down?): %v", idx.Index, err)
	}
	return cpRaw, nil
}

// duplicateWait bounds how long a resent record waits for a witnessed
// checkpoint before it is answered 503 (the publisher retries).
const duplicateWait = 10 * time.Second

// awaitWitnessed waits until the published checkpoint covers entry index
// and, with witnesses configured, meets the witness policy.
func (s *Server) awaitWitnessed(ctx context.Context, index uint64) error {
	t := time.NewTicker(s.cfg.CheckpointInterval / 2)
	defer t.Stop()
	for {
		cp, err := s.reader.ReadCheckpoint(ctx)
		if err == nil {
			size, err := tlog.CheckpointSize(cp)
			if err == nil && size > index && (s.cfg.Witnesses == nil || s.cfg.Witnesses.Satisfied(cp)) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("entry %d holds this record, but no published checkpoint that covers it meets the witness policy yet (witnesses down?); retry later", index)
		case <-t.C:
		}
	}
}

// AppendResult is the outcome of one record of AppendBatch: its proof, or
// why it was refused or not published.
type AppendResult struct {
	Proof *tlog.Proof
	Err   error
}

// AppendBatch appends many records in one call: each is checked exactly as
// by Append (strict parsing, an allowed publisher's signature, duplicates
// refused, including within the batch), the accepted ones are added
// together, and once one published checkpoint covers them all every one
// gets its proof under that checkpoint. Results are in the order of leaves;
// a refused record does not stop the others.
func (s *Server) AppendBatch(ctx context.Context, leaves [][]byte) []AppendResult {
	res := make([]AppendResult, len(leaves))
	keys := make([]string, len(leaves))
	parallel(len(leaves), func(i int) {
		keys[i], res[i].Err = s.check(leaves[i])
	})
	for i := range leaves {
		if res[i].Err == nil {
			res[i].Err = s.reserve(keys[i], leaves[i])
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AppendTimeout)
	defer cancel()
	futs := make([]tessera.IndexFuture, len(leaves))
	for i, leaf := range leaves {
		if res[i].Err == nil {
			futs[i] = s.add(ctx, tessera.NewEntry(leaf))
		}
	}
	idxs := make([]tessera.Index, len(leaves))
	var last *tessera.Index
	for i, fut := range futs {
		if fut == nil {
			continue
		}
		idx, err := fut()
		if err != nil {
			s.forget(keys[i])
			res[i].Err = err
			continue
		}
		idxs[i] = idx
		s.mu.Lock()
		s.seen[keys[i]] = seenEntry{idx.Index, sha256.Sum256(leaves[i])}
		s.mu.Unlock()
		if last == nil || idx.Index > last.Index {
			last = &idxs[i]
		}
	}
	if last == nil {
		return res
	}
	cpRaw, err := s.await(ctx, *last)
	for i := range leaves {
		if futs[i] == nil || res[i].Err != nil {
			continue
		}
		if err != nil {
			res[i].Err = err
			continue
		}
		res[i].Proof, res[i].Err = s.proofFor(ctx, leaves[i], idxs[i].Index, cpRaw)
	}
	return res
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/16)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

func (s *Server) proofFor(ctx context.Context, leaf []byte, index uint64, cpRaw []byte) (*tlog.Proof, error) {
	cp, err := s.proofs.checkpoint(cpRaw)
	if err != nil {
		return nil, err
	}
	hs, err := s.proofs.inclusion(ctx, cp, index, leaf)
	if err != nil {
		return nil, err
	}
	return &tlog.Proof{Record: leaf, Index: index, Checkpoint: cpRaw, Hashes: hs}, nil
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
		var level, idx uint64
		var p uint8
		entries := r.PathValue("level") == "entries"
		if entries {
			idx, p, err = layout.ParseTileIndexPartial(r.PathValue("index"))
		} else {
			level, idx, p, err = layout.ParseTileLevelIndexPartial(r.PathValue("level"), r.PathValue("index"))
		}
		if err != nil {
			http.Error(w, "not a tlog-tiles path", http.StatusNotFound)
			return
		}
		// Serve only what the published checkpoint commits to: tiles are
		// cached as immutable, and data beyond it may still change.
		size, err := s.publishedSize(r.Context())
		if err != nil || !tilePublished(size, level, idx, p) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if entries {
			data, err = s.reader.ReadEntryBundle(r.Context(), idx, p)
		} else {
			data, err = s.reader.ReadTile(r.Context(), level, idx, p)
		}
		if err == nil && data != nil && p > 0 {
			// A partial tile replaced by its full one is served as the
			// prefix the path names.
			data, err = truncateTile(data, p, entries)
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

// publishedSize returns the size of the log's published checkpoint.
func (s *Server) publishedSize(ctx context.Context) (uint64, error) {
	cp, err := s.reader.ReadCheckpoint(ctx)
	if err != nil {
		return 0, err
	}
	return tlog.CheckpointSize(cp)
}

// tilePublished reports whether a tree of the given size contains the
// tile (level, index) in full (p = 0) or its first p entries.
func tilePublished(size, level, index uint64, p uint8) bool {
	if level >= 8 {
		return false
	}
	n := size >> (8 * level) // nodes of the tree at the tile level's bottom row
	width := uint64(layout.TileWidth)
	if p > 0 {
		width = uint64(p)
	}
	// The first test keeps index*TileWidth from overflowing.
	return index <= n/layout.TileWidth && index*layout.TileWidth+width <= n
}

// truncateTile cuts a (full) hash tile or entry bundle to its first p
// entries.
func truncateTile(data []byte, p uint8, entries bool) ([]byte, error) {
	if !entries {
		if len(data) < int(p)*sha256.Size {
			return nil, errors.New("short tile")
		}
		return data[:int(p)*sha256.Size], nil
	}
	var b api.EntryBundle
	if err := b.UnmarshalText(data); err != nil {
		return nil, err
	}
	if len(b.Entries) < int(p) {
		return nil, errors.New("short entry bundle")
	}
	if len(b.Entries) == int(p) {
		return data, nil
	}
	var out []byte
	for _, e := range b.Entries[:p] {
		out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
		out = append(out, e...)
	}
	return out, nil
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
		var de *DuplicateError
		if errors.As(err, &de) && de.Same {
			w.Header().Set(tlog.EntryIndexHeader, strconv.FormatUint(de.Index, 10))
		}
		if errors.As(err, &de) && de.Index == pending {
			// Another request is appending this record: worth a retry.
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, err.Error(), http.StatusConflict)
	case errors.Is(err, tessera.ErrPushback):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "log is busy; retry", http.StatusServiceUnavailable)
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, strings.TrimSpace(err.Error()), http.StatusServiceUnavailable)
	}
	s.cfg.Logger.Info("append refused", "err", err)
}
