package appraiser

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"reflect"
	"sync"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
)

// DefaultCacheEntries bounds the appraisal cache of an Appraiser.
const DefaultCacheEntries = 1024

// challengeHorizon is how long the result for a challenge-mode bundle (no
// epoch) is kept: a nonce's answer is used at once.
const challengeHorizon = 10 * time.Minute

// cacheKey names one appraisal: the SHA-256 of the bundle's encoding,
// nonce and revocation proofs (sum), under one policy value.
type cacheKey struct {
	sum [32]byte
	pol *policy.Policy
}

// entry is a cached appraisal, computed at the time at. It is offered for
// the times from at to horizon, once a probe appraisal at horizon gave the
// same outcome (confirmed).
type entry struct {
	key     cacheKey
	res     *attest.Result
	at      time.Time
	horizon time.Time

	once      sync.Once
	confirmed bool
}

// cache is a bounded LRU cache of appraisals, safe for concurrent use.
type cache struct {
	mu    sync.Mutex
	max   int
	lru   *list.List // of *entry, most recent first
	items map[cacheKey]*list.Element

	hits, misses int // for tests
}

func newCache(max int) *cache {
	return &cache{max: max, lru: list.New(), items: map[cacheKey]*list.Element{}}
}

// key returns the cache key of an appraisal, and false when the bundle
// cannot be encoded (it does not validate; such bundles are not cached).
func key(b *attest.Bundle, o Options) (cacheKey, bool) {
	d, err := b.Digest()
	if err != nil {
		return cacheKey{}, false
	}
	h := sha256.New()
	h.Write([]byte("sworn appraisal cache v1\x00"))
	h.Write(d[:])
	field := func(p []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write(p)
	}
	// A nil nonce (none given) differs from an empty one.
	if o.Nonce == nil {
		h.Write([]byte{0})
	} else {
		h.Write([]byte{1})
		field(o.Nonce)
	}
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(o.Revocations))))
	for _, r := range o.Revocations {
		field(r)
	}
	var k cacheKey
	h.Sum(k.sum[:0])
	k.pol = o.Policy
	return k, true
}

// horizon is the last time at which the result of appraising b at the
// time at may be offered: the bundle's epoch's last second, no later than
// the policy's max_age allows; for a challenge-mode bundle, shortly after
// at.
func horizon(b *attest.Bundle, p *policy.Policy, at time.Time) time.Time {
	if p == nil {
		p = policy.Default()
	}
	e := b.Freshness.Epoch
	if e == nil {
		return at.Add(challengeHorizon)
	}
	h := time.Unix(e.NotAfter-1, 0)
	if p.MaxAge > 0 {
		if m := time.Unix(e.NotBefore, 0).Add(time.Duration(p.MaxAge)); m.Before(h) {
			h = m
		}
	}
	return h
}

// get returns the entry for k that may answer at the time at, or nil.
func (c *cache) get(k cacheKey, at time.Time) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		c.misses++
		return nil
	}
	e := el.Value.(*entry)
	if at.Before(e.at) || at.After(e.horizon) {
		c.misses++
		return nil
	}
	c.hits++
	c.lru.MoveToFront(el)
	return e
}

func (c *cache) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok {
		c.lru.Remove(el)
	}
	c.items[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*entry)
		delete(c.items, old.key)
	}
}

// drop removes e, if it is still the entry of its key.
func (c *cache) drop(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok && el.Value == e {
		c.lru.Remove(el)
		delete(c.items, e.key)
	}
}

func (c *cache) stats() (hits, misses, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses, c.lru.Len()
}

// sameOutcome reports whether two results have the same verdicts and the
// same steps with the same statuses (details, which name times, may differ).
func sameOutcome(a, b *attest.Result) bool {
	if a.Verdict != b.Verdict || a.Simulated != b.Simulated || len(a.Devices) != len(b.Devices) {
		return false
	}
	same := func(x, y *attest.Section) bool {
		if x == nil || y == nil {
			return x == y
		}
		if x.Verdict != y.Verdict || len(x.Steps) != len(y.Steps) {
			return false
		}
		for i := range x.Steps {
			if x.Steps[i].ID != y.Steps[i].ID || x.Steps[i].Status != y.Steps[i].Status {
				return false
			}
		}
		return true
	}
	for name, d := range a.Devices {
		if !same(d, b.Devices[name]) {
			return false
		}
	}
	return same(a.Bundle, b.Bundle) && same(a.Release, b.Release) && same(a.Policy, b.Policy) && same(a.Receipt, b.Receipt)
}

// cloneResult returns a deep copy of r: callers own what Appraise returns.
func cloneResult(r *attest.Result) *attest.Result {
	return deepCopy(reflect.ValueOf(r)).Interface().(*attest.Result)
}

// deepCopy copies maps, slices, pointers and interfaces recursively, and
// everything else (strings, numbers, time.Time) by value.
func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		n := reflect.New(v.Elem().Type())
		n.Elem().Set(deepCopy(v.Elem()))
		return n
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		n := reflect.New(v.Type()).Elem()
		n.Set(deepCopy(v.Elem()))
		return n
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			n.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return n
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			n.Index(i).Set(deepCopy(v.Index(i)))
		}
		return n
	case reflect.Struct:
		n := reflect.New(v.Type()).Elem()
		n.Set(v) // unexported fields (time.Time's) by value
		for i := range v.NumField() {
			if n.Field(i).CanSet() {
				n.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return n
	}
	return v
}
