package wire

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// ReplayFilter remembers the requests a gateway accepted inside a time
// window, in bounded memory, and refuses a second copy (RFC 9458 §6.5).
// Requests must also carry a Date within the window (CheckDate), so that
// an entry can be forgotten once its window has passed.
type ReplayFilter struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	seen  map[[32]byte]time.Time
	order [][32]byte // insertion order, for expiry
}

// ErrReplayFull: the filter holds max unexpired requests; a request it
// cannot remember is refused rather than risk a replay.
var ErrReplayFull = errors.New("too many requests inside the replay window; try again shortly")

// NewReplayFilter makes a filter for the window (each side of now) that
// remembers at most max requests.
func NewReplayFilter(window time.Duration, max int) *ReplayFilter {
	return &ReplayFilter{window: window, max: max, seen: map[[32]byte]time.Time{}}
}

// Check records id (a request's encapsulated key, or a multi-candidate
// request's ReplayID) at time now, and fails with ErrReplay if it was seen
// inside the window.
func (f *ReplayFilter) Check(id []byte, now time.Time) error {
	h := sha256.Sum256(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.order) > 0 {
		t := f.seen[f.order[0]]
		if now.Sub(t) <= 2*f.window {
			break
		}
		delete(f.seen, f.order[0])
		f.order = f.order[1:]
	}
	if _, ok := f.seen[h]; ok {
		return ErrReplay
	}
	if len(f.seen) >= f.max {
		return ErrReplayFull
	}
	f.seen[h] = now
	f.order = append(f.order, h)
	return nil
}

// CheckDate checks a request's Date header (RFC 9110 format) against now:
// a request dated outside the window is refused, since the filter no
// longer remembers that far (RFC 9458 §6.5).
func (f *ReplayFilter) CheckDate(date string, now time.Time) error {
	if date == "" {
		return errors.New("the request has no Date header; it is needed for replay protection")
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return fmt.Errorf("the request's Date header %q is not an HTTP date", clip(date))
	}
	if d := now.Sub(t); d > f.window || d < -f.window {
		return fmt.Errorf("the request is dated %s, more than %s from the node's clock %s", t.UTC().Format(http.TimeFormat), f.window, now.UTC().Format(http.TimeFormat))
	}
	return nil
}

// clip bounds an untrusted string quoted in an error.
func clip(s string) string {
	const n = 40
	out := make([]rune, 0, n)
	for _, r := range s {
		if len(out) == n {
			return string(out) + "…"
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}
