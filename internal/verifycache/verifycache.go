// Package verifycache holds the bounded caches that sworn's verifiers and
// parsers share: objects parsed from bytes, by those bytes, and checks
// that passed, by a collision-resistant key the verifier derives from
// their inputs, with the time window in which each holds. Every cache holds at most Max
// entries and starts over when full. The zero value of each is ready to
// use, and safe for concurrent use.
package verifycache

import (
	"bytes"
	"crypto/x509"
	"hash/maphash"
	"sync"
	"time"
)

// Max bounds each cache.
const Max = 1024

// Window is the time interval in which a passed check holds: from
// NotBefore, up to but not including NotAfter.
type Window struct{ NotBefore, NotAfter time.Time }

// Contains reports whether t is in the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.NotBefore) && t.Before(w.NotAfter) }

// ChainWindow is the window in which every certificate of a chain is
// valid: the latest NotBefore to the earliest NotAfter.
func ChainWindow(chain ...*x509.Certificate) Window {
	var w Window
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(w.NotBefore) {
			w.NotBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(w.NotAfter) {
			w.NotAfter = c.NotAfter
		}
	}
	return w
}

// Forever is the window of a check that holds at any time (a signature).
var Forever = Window{time.Time{}, time.Unix(1<<62, 0)}

// Passed remembers checks that passed.
type Passed struct {
	mu sync.Mutex
	m  map[[32]byte]Window
}

// Holds reports whether the check key passed, in a window that contains at.
func (p *Passed) Holds(key [32]byte, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.m[key]
	return ok && w.Contains(at)
}

// Store records that the check key passed, holding in w.
func (p *Passed) Store(key [32]byte, w Window) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= Max {
		p.m = map[[32]byte]Window{}
	}
	p.m[key] = w
}

// Parsed remembers objects parsed from bytes. An object is found by a
// hash/maphash hash of its bytes under a per-process random seed, and then
// only if its bytes are equal in full: a collision, however it was made,
// costs a parse, never a wrong object.
type Parsed[T any] struct {
	mu sync.Mutex
	m  map[uint64]parsed[T]
}

type parsed[T any] struct {
	der []byte
	obj *T
}

var seed = maphash.MakeSeed()

// Get returns parse(der), reusing an earlier result for the same bytes.
// parse is given a copy of der that the cache keeps, so that what it
// returns may alias its input without holding on to the caller's buffer.
// A failed parse is not remembered.
func (p *Parsed[T]) Get(der []byte, parse func([]byte) (*T, error)) (*T, error) {
	h := maphash.Bytes(seed, der)
	p.mu.Lock()
	e, ok := p.m[h]
	p.mu.Unlock()
	if ok && bytes.Equal(e.der, der) {
		return e.obj, nil
	}
	own := bytes.Clone(der)
	c, err := parse(own)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.m == nil || len(p.m) >= Max {
		p.m = map[uint64]parsed[T]{}
	}
	p.m[h] = parsed[T]{own, c}
	p.mu.Unlock()
	return c, nil
}
