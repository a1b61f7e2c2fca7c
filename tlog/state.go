package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/sworn-dev/sworn/internal/atomicfile"
)

// SplitViewError reports two checkpoints of one log that cannot both be
// true: the log showed different histories to different parties.
type SplitViewError struct {
	// Seen is the checkpoint seen before; Got the conflicting one.
	Seen, Got []byte
	// Reason says how they conflict.
	Reason string
}

func (e *SplitViewError) Error() string {
	return fmt.Sprintf("SPLIT VIEW: the log signed two inconsistent checkpoints (%s).\n--- previously seen checkpoint ---\n%s--- conflicting checkpoint ---\n%sKeep both as evidence of log misbehaviour.", e.Reason, e.Seen, e.Got)
}

// ConsistencyFunc returns a consistency proof between two tree sizes of
// the log, e.g. built from its tiles. A State without one can detect a split
// view only between checkpoints of the same size.
type ConsistencyFunc func(smaller, larger uint64) ([][]byte, error)

// State is a client's persistent record of the largest checkpoint it has
// verified per log, used to detect split views. It is safe for concurrent
// use within one process.
type State struct {
	dir string
	mu  sync.Mutex
}

// OpenState opens (creating if needed) a state directory.
func OpenState(dir string) (*State, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %v", dir, err)
	}
	return &State{dir: dir}, nil
}

func (s *State) path(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(s.dir, "checkpoint-"+hex.EncodeToString(h[:8]))
}

// Latest returns the last checkpoint recorded for origin, or nil.
func (s *State) Latest(origin string) ([]byte, error) {
	b, err := os.ReadFile(s.path(origin))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Update compares a verified checkpoint with the last one recorded for its
// log and records the larger. It returns a *SplitViewError if they conflict.
// checked is false when sizes differed and no consistency proof could be
// had (prove nil): the new checkpoint is then recorded unchecked.
func (s *State) Update(cp *Checkpoint, prove ConsistencyFunc) (checked bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.Latest(cp.Origin)
	if err != nil {
		return false, fmt.Errorf("read state: %v", err)
	}
	if old == nil {
		return true, atomicfile.Write(s.path(cp.Origin), cp.Raw, 0o600)
	}
	body, _, _ := bytes.Cut(old, []byte("\n\n"))
	var oc log.Checkpoint
	if _, err := oc.Unmarshal(append(body, '\n')); err != nil || oc.Origin != cp.Origin {
		return false, fmt.Errorf("state file %s is corrupt; remove it to start over (%v)", s.path(cp.Origin), err)
	}
	small, large := &oc, &log.Checkpoint{Origin: cp.Origin, Size: cp.Size, Hash: cp.Hash[:]}
	if small.Size > large.Size {
		small, large = large, small
	}
	switch {
	case oc.Size == cp.Size:
		if !bytes.Equal(oc.Hash, cp.Hash[:]) {
			return false, &SplitViewError{Seen: old, Got: cp.Raw, Reason: fmt.Sprintf("same size %d, different root hashes", cp.Size)}
		}
		return true, nil
	case prove == nil:
		checked = false
	default:
		p, err := prove(small.Size, large.Size)
		if err != nil {
			return false, fmt.Errorf("get consistency proof %d→%d: %v", small.Size, large.Size, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, small.Size, large.Size, p, small.Hash, large.Hash); err != nil {
			return false, &SplitViewError{Seen: old, Got: cp.Raw, Reason: fmt.Sprintf("tree %d is not consistent with tree %d: %v", small.Size, large.Size, err)}
		}
		checked = true
	}
	if cp.Size > oc.Size {
		if err := atomicfile.Write(s.path(cp.Origin), cp.Raw, 0o600); err != nil {
			return checked, err
		}
	}
	return checked, nil
}
