package nvgpu

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Kinds of cache entries.
const (
	kindChain = "chain"
	kindRIM   = "rim"
	kindOCSP  = "ocsp"
)

// DefaultCacheEntries is the size of a cache made by NewCache(0).
const DefaultCacheEntries = 1024

// Cache remembers verified certificate chains, RIMs and OCSP responses, keyed by their
// exact bytes and the pinned root, with the window of time in which the
// verification holds (the latest notBefore to the earliest notAfter of the
// chain). A hit outside that window is a miss, so a cached answer is
// always the one a fresh verification would give.
//
// Lookups are cheap and exact: entries are found by a keyed 64-bit
// hash/maphash of the bytes (random per cache, so its collisions cannot be
// chosen), and a candidate is a hit only when its stored bytes, pin and
// kind equal the query's in full. A hash collision, or any byte changed,
// is therefore a miss that verifies from scratch; it can never return
// another input's result. No cryptographic digest of the inputs is needed.
//
// It is bounded: when full, the oldest entry goes. It is safe for
// concurrent use. A nil *Cache caches nothing.
type Cache struct {
	seed  maphash.Seed
	mu    sync.Mutex
	max   int
	order []uint64
	m     map[uint64]*cacheEntry
}

type cacheEntry struct {
	// What was verified, compared in full on every lookup.
	kind  string
	pin   SPKIHash
	parts [][]byte

	certs     []*x509.Certificate
	rim       *RIM
	ocsp      *ocsp.Response
	notBefore time.Time
	notAfter  time.Time
	expiry    time.Time
}

// NewCache returns a cache of at most max entries (DefaultCacheEntries
// when max ≤ 0).
func NewCache(max int) *Cache {
	if max <= 0 {
		max = DefaultCacheEntries
	}
	return &Cache{seed: maphash.MakeSeed(), max: max, m: map[uint64]*cacheEntry{}}
}

// key hashes the kind, the pin and the parts, each part with its length
// (so that the split between parts counts), under the cache's seed.
func (c *Cache) key(kind string, pin SPKIHash, parts [][]byte) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(kind)
	h.Write(pin[:])
	var n [16]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(n[:8], uint64(len(p)))
		binary.LittleEndian.PutUint64(n[8:], maphash.Bytes(c.seed, p))
		h.Write(n[:])
	}
	return h.Sum64()
}

// matches reports whether the entry was made from exactly these inputs.
func (e *cacheEntry) matches(kind string, pin SPKIHash, parts [][]byte) bool {
	return e.kind == kind && e.pin == pin &&
		slices.EqualFunc(e.parts, parts, bytes.Equal)
}

func (c *Cache) get(k uint64, kind string, pin SPKIHash, parts [][]byte, at time.Time) *cacheEntry {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	e := c.m[k]
	c.mu.Unlock()
	// Entries are immutable once stored, so they are compared unlocked.
	if e == nil || !e.matches(kind, pin, parts) || at.Before(e.notBefore) || at.After(e.notAfter) {
		return nil
	}
	return e
}

func (c *Cache) put(k uint64, e *cacheEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		c.m[k] = e
		return
	}
	for len(c.order) >= c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, k)
	c.m[k] = e
}

// Len returns the number of cached entries.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func window(certs []*x509.Certificate) (nb, na time.Time) {
	nb, na = certs[0].NotBefore, certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotBefore.After(nb) {
			nb = c.NotBefore
		}
		if c.NotAfter.Before(na) {
			na = c.NotAfter
		}
	}
	return nb, na
}

// verifyChainDER parses and verifies a DER chain, through the cache.
func (c *Cache) verifyChainDER(ders [][]byte, pin SPKIHash, at time.Time) ([]*x509.Certificate, time.Time, error) {
	var k uint64
	if c != nil {
		k = c.key(kindChain, pin, ders)
		if e := c.get(k, kindChain, pin, ders, at); e != nil {
			return e.certs, e.expiry, nil
		}
	}
	// Parse a copy: the certificates share the memory they are parsed
	// from, and the caller's bytes (possibly a slice of an entry body) may
	// change after this call; the cache keeps the copy to compare with.
	own := make([][]byte, len(ders))
	for i, d := range ders {
		own[i] = bytes.Clone(d)
	}
	certs, err := ParseDERChain(own)
	if err != nil {
		return nil, time.Time{}, err
	}
	exp, err := VerifyChain(certs, pin, at)
	if err != nil {
		return certs, time.Time{}, err
	}
	nb, na := window(certs)
	c.put(k, &cacheEntry{kind: kindChain, pin: pin, parts: own, certs: certs, notBefore: nb, notAfter: na, expiry: exp})
	return certs, exp, nil
}

// verifyRIM parses and verifies a RIM document, through the cache.
func (c *Cache) verifyRIM(doc []byte, pin SPKIHash, at time.Time) (*RIM, time.Time, error) {
	var k uint64
	parts := [][]byte{doc}
	if c != nil {
		k = c.key(kindRIM, pin, parts)
		if e := c.get(k, kindRIM, pin, parts, at); e != nil {
			return e.rim, e.expiry, nil
		}
	}
	r, err := ParseRIM(doc)
	if err != nil {
		return nil, time.Time{}, err
	}
	exp, err := VerifyRIM(r, pin, at)
	if err != nil {
		return r, time.Time{}, err
	}
	nb, na := window(r.Certs)
	// r.Raw() is ParseRIM's own copy of doc.
	c.put(k, &cacheEntry{kind: kindRIM, pin: pin, parts: [][]byte{r.Raw()}, rim: r, notBefore: nb, notAfter: na, expiry: exp})
	return r, exp, nil
}
