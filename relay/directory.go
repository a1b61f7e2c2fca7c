package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sworn-dev/sworn/relay/directory"
	"github.com/sworn-dev/sworn/wire"
)

// The directory format lives in package directory, which clients import
// without the relay's server code.
const (
	DirectoryVersion = directory.Version
	MaxDirectory     = directory.MaxSize
)

// Directory and DirectoryNode are the directory format (package directory).
type (
	Directory     = directory.Directory
	DirectoryNode = directory.Node
)

// ParseDirectory decodes a directory; FetchDirectory gets one.
var (
	ParseDirectory = directory.Parse
	FetchDirectory = directory.Fetch
)

// nodeState is what the relay holds of a node. It is replaced, never
// changed, once published.
type nodeState struct {
	url, id      string
	bundle, keys []byte
	configs      []wire.KeyConfig
	etag         string
	expires      time.Time
	next         time.Time // when to fetch again
	err          string
	// The previous key configurations still route until prevUntil: the
	// node decrypts with them for its grace period, and clients may hold
	// the bundle that named them until it expired.
	prev      []wire.KeyConfig
	prevUntil time.Time
}

// snapshot is the published state: the directory's encoding and the
// routing index built from the same fetches.
type snapshot struct {
	json    []byte
	etag    string
	next    time.Time // the earliest next refresh
	serving int
	total   int
	ids     map[string]bool
	byKey   map[keyRef][]*nodeState // (key id, KEM) → nodes, in order
	byHash  map[[8]byte]*nodeState
}

type keyRef struct {
	id  uint8
	kem uint16
}

// Refresh fetches every node's bundle and keys now, and publishes the new
// directory. It returns an error only if no node answered.
func (r *Relay) Refresh(ctx context.Context) error {
	return r.refresh(ctx, true)
}

// Run refreshes each node when its entry expires and at least every
// Config.Refresh, until ctx is done.
func (r *Relay) Run(ctx context.Context) {
	for {
		wait := r.snap.Load().next.Sub(r.cfg.Now())
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			r.refresh(ctx, false)
		}
	}
}

func (r *Relay) refresh(ctx context.Context, all bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	var wg sync.WaitGroup
	for i, old := range r.nodes {
		if !all && now.Before(old.next) {
			continue
		}
		wg.Go(func() { r.nodes[i] = r.fetch(ctx, old) })
	}
	wg.Wait()
	r.publish()
	if r.snap.Load().serving == 0 {
		return errors.New("no node answered: " + r.nodes[0].err)
	}
	return nil
}

// fetch refreshes one node's entry. Any failure drops its bundle and keys:
// the relay lists it with the error.
func (r *Relay) fetch(ctx context.Context, old *nodeState) *nodeState {
	now := r.cfg.Now()
	st, outcome, err := r.fetchOnce(ctx, old, now)
	if err != nil {
		// A node that fails is not routed to, with its previous keys
		// neither, until it answers again.
		st = &nodeState{url: old.url, id: old.id, err: public(err), next: now.Add(min(r.cfg.Refresh, 5*time.Second))}
		r.log.Warn("node not refreshed", "node", old.id, "err", err.Error())
		r.metrics.refreshes.WithLabelValues(outcome).Inc()
		return st
	}
	next := now.Add(r.cfg.Refresh)
	if !st.expires.IsZero() && st.expires.Before(next) {
		next = st.expires
	}
	if floor := now.Add(time.Second); next.Before(floor) {
		next = floor
	}
	st.next = next
	// Keys the node held until now keep routing while a client may still
	// use them: until the bundle that named them expires.
	switch {
	case old.configs != nil && !sameConfigs(old.configs, st.configs):
		st.prev, st.prevUntil = old.configs, old.expires
		if old.expires.IsZero() {
			st.prevUntil = now.Add(r.cfg.Refresh)
		}
	case now.Before(old.prevUntil):
		st.prev, st.prevUntil = old.prev, old.prevUntil
	default:
		st.prev, st.prevUntil = nil, time.Time{}
	}
	r.metrics.refreshes.WithLabelValues(outcome).Inc()
	return st
}

func sameConfigs(a, b []wire.KeyConfig) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Digest() != b[i].Digest() {
			return false
		}
	}
	return true
}

func (r *Relay) fetchOnce(ctx context.Context, old *nodeState, now time.Time) (*nodeState, string, error) {
	// The bundle and the keys come from two requests; if the node rotated
	// between them, their ETags differ, and the pair is fetched again.
	for range 2 {
		etag := ""
		if old.bundle != nil {
			etag = old.etag
		}
		bundle, bh, status, err := r.get(ctx, old.url+"/sworn/v1/bundle", etag, r.cfg.MaxBundle)
		if err != nil {
			return nil, "error", fmt.Errorf("bundle: %w", err)
		}
		if status == http.StatusNotModified {
			// The entry stays as it was, unless the node's expiry moved by
			// more than max-age's rounding to whole seconds.
			st := *old
			if e := expiry(bh, now); e.Sub(old.expires).Abs() > 2*time.Second {
				st.expires = e
			}
			return &st, "not_modified", nil
		}
		keys, kh, _, err := r.get(ctx, old.url+"/.well-known/ohttp-keys", "", MaxKeys)
		if err != nil {
			return nil, "error", fmt.Errorf("keys: %w", err)
		}
		if bt, kt := bh.Get("ETag"), kh.Get("ETag"); bt != "" && kt != "" && bt != kt {
			continue
		}
		cfgs, err := wire.ParseKeyConfigs(keys)
		if err != nil {
			return nil, "error", fmt.Errorf("keys: %w", err)
		}
		return &nodeState{url: old.url, id: old.id, bundle: bundle, keys: keys, configs: cfgs,
			etag: bh.Get("ETag"), expires: expiry(bh, now)}, "ok", nil
	}
	return nil, "error", errors.New("the node's bundle and keys kept changing between two requests (rotating?)")
}

// transportErr is a fetch that got no whole answer. The directory says
// only that (the error names the node's address, which the directory does
// not); the relay's log has the detail.
type transportErr struct{ err error }

func (e *transportErr) Error() string { return e.err.Error() }

// public is what the directory says of a failed fetch.
func public(err error) string {
	var te *transportErr
	if !errors.As(err, &te) {
		return err.Error()
	}
	what, _, _ := strings.Cut(err.Error(), ":")
	if isTimeout(te.err) {
		return what + ": the node did not answer in time"
	}
	return what + ": the node did not answer"
}

// get fetches url (If-None-Match etag, if any) and reads at most limit
// bytes; anything but 200 (or 304 when asked) is an error.
func (r *Relay) get(ctx context.Context, url, etag string, limit int64) ([]byte, http.Header, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	req.Header.Set("User-Agent", "")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := r.fetcher.Do(req)
	if err != nil {
		return nil, nil, 0, &transportErr{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && etag != "" {
		return nil, resp.Header, resp.StatusCode, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, 0, &transportErr{err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, 0, fmt.Errorf("%s: %s", resp.Status, excerpt(firstLine(data)))
	}
	if int64(len(data)) > limit {
		return nil, nil, 0, fmt.Errorf("more than %d bytes", limit)
	}
	return data, resp.Header, resp.StatusCode, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// expiry reads Cache-Control: max-age=N (no-store or no-cache: now); zero
// if there is none.
func expiry(h http.Header, now time.Time) time.Time {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "no-store" || d == "no-cache" {
			return now
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= 0 {
				return now.Add(time.Duration(n) * time.Second)
			}
		}
	}
	return time.Time{}
}

// publish encodes the directory and builds the routing index from the
// current states. Callers hold r.mu (or own r, in New).
func (r *Relay) publish() {
	now := r.cfg.Now()
	s := &snapshot{byKey: map[keyRef][]*nodeState{}, byHash: map[[8]byte]*nodeState{}, ids: map[string]bool{}}
	d := Directory{Version: DirectoryVersion, Nodes: make([]DirectoryNode, 0, len(r.nodes))}
	failing := 0
	s.total = len(r.nodes)
	for _, st := range r.nodes {
		s.ids[st.id] = true
		if s.next.IsZero() || st.next.Before(s.next) {
			s.next = st.next
		}
		d.Nodes = append(d.Nodes, DirectoryNode{ID: st.id, Bundle: st.bundle, Keys: st.keys, ETag: st.etag, Expires: st.expires.UTC(), Error: st.err})
		if st.bundle == nil {
			failing++
		} else {
			s.serving++
		}
		cfgs := st.configs
		if now.Before(st.prevUntil) {
			cfgs = append(append([]wire.KeyConfig(nil), cfgs...), st.prev...)
		}
		for _, c := range cfgs {
			k := keyRef{c.ID, c.KEM}
			s.byKey[k] = append(s.byKey[k], st)
			if _, dup := s.byHash[c.KeyHash()]; !dup {
				s.byHash[c.KeyHash()] = st
			}
		}
	}
	s.json, _ = json.Marshal(d)
	s.etag = `"` + shortHash(s.json) + `"`
	r.snap.Store(s)
	r.metrics.nodes.WithLabelValues("serving").Set(float64(s.serving))
	r.metrics.nodes.WithLabelValues("failing").Set(float64(failing))
}

func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// handleDirectory serves the directory with an ETag over its content and a
// max-age that runs out at the next refresh.
func (r *Relay) handleDirectory(w http.ResponseWriter, req *http.Request) {
	s := r.snap.Load()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", s.etag)
	age := max(int(s.next.Sub(r.cfg.Now()).Seconds()), 0)
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(age))
	if req.Header.Get("If-None-Match") == s.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(s.json)
}

// handleHealth says how many nodes serve; 503 if none.
func (r *Relay) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s := r.snap.Load()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if s.serving == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ready": s.serving > 0, "nodes": s.total, "serving": s.serving})
}
