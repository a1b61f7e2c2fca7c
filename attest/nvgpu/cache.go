package nvgpu

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// DefaultCacheEntries is the size of a cache made by NewCache(0).
const DefaultCacheEntries = 1024

// Cache remembers verified certificate chains and RIMs, keyed by the
// SHA-256 of their exact bytes and the pinned root, with the window of
// time in which the verification holds (the latest notBefore to the
// earliest notAfter of the chain). A hit outside that window is a miss, so
// a cached answer is always the one a fresh verification would give. It
// is bounded: when full, the oldest entry goes. It is safe for concurrent
// use. A nil *Cache caches nothing.
type Cache struct {
	mu    sync.Mutex
	max   int
	order [][32]byte
	m     map[[32]byte]*cacheEntry
}

type cacheEntry struct {
	certs     []*x509.Certificate
	rim       *RIM
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
	return &Cache{max: max, m: map[[32]byte]*cacheEntry{}}
}

func cacheKey(kind string, pin SPKIHash, parts ...[]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write(pin[:])
	var n [8]byte
	for _, p := range parts {
		l := len(p)
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(p)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *Cache) get(k [32]byte, at time.Time) *cacheEntry {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil || at.Before(e.notBefore) || at.After(e.notAfter) {
		return nil
	}
	return e
}

func (c *Cache) put(k [32]byte, e *cacheEntry) {
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
	k := cacheKey("chain", pin, ders...)
	if e := c.get(k, at); e != nil {
		return e.certs, e.expiry, nil
	}
	certs, err := ParseDERChain(ders)
	if err != nil {
		return nil, time.Time{}, err
	}
	exp, err := VerifyChain(certs, pin, at)
	if err != nil {
		return certs, time.Time{}, err
	}
	nb, na := window(certs)
	c.put(k, &cacheEntry{certs: certs, notBefore: nb, notAfter: na, expiry: exp})
	return certs, exp, nil
}

// verifyRIM parses and verifies a RIM document, through the cache.
func (c *Cache) verifyRIM(doc []byte, pin SPKIHash, at time.Time) (*RIM, time.Time, error) {
	k := cacheKey("rim", pin, doc)
	if e := c.get(k, at); e != nil {
		return e.rim, e.expiry, nil
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
	c.put(k, &cacheEntry{rim: r, notBefore: nb, notAfter: na, expiry: exp})
	return r, exp, nil
}
