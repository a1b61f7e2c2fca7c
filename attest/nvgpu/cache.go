package nvgpu

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sworn-dev/sworn/attest"
)

// Kinds of cache entries.
const (
	kindChain = "chain"
	kindRIM   = "rim"
	kindOCSP  = "ocsp"
	kindLink  = "link"
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
// What GPUs of one node share is verified once: a chain is verified link
// by link from the root down, each link cached under the chain from it to
// the root, so the GPUs' common intermediates are checked once; and when
// several GPUs of an appraisal miss the same entry at once, one verifies
// it while the others wait for its result.
//
// It is bounded: when full, the oldest entry goes. It is safe for
// concurrent use. A nil *Cache caches nothing.
type Cache struct {
	seed     maphash.Seed
	mu       sync.Mutex
	max      int
	order    []uint64
	m        map[uint64]*cacheEntry
	inflight map[uint64]chan struct{}
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
	return &Cache{seed: maphash.MakeSeed(), max: max, m: map[uint64]*cacheEntry{}, inflight: map[uint64]chan struct{}{}}
}

// lead makes the caller the one to verify the entry k after a miss, and
// returns the function to call when it is stored (or failed); or, when
// another caller verifies it already, waits for it and returns nil: the
// caller then looks the entry up again, and verifies it itself if it is
// still missing (the other failed, or the key collided).
func (c *Cache) lead(k uint64) (done func()) {
	c.mu.Lock()
	if ch, ok := c.inflight[k]; ok {
		c.mu.Unlock()
		<-ch
		return nil
	}
	ch := make(chan struct{})
	c.inflight[k] = ch
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.inflight, k)
		c.mu.Unlock()
		close(ch)
	}
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
		e := c.get(k, kindChain, pin, ders, at)
		if e == nil {
			if done := c.lead(k); done != nil {
				defer done()
			} else {
				e = c.get(k, kindChain, pin, ders, at)
			}
		}
		if e != nil {
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
	exp, err := c.verifyChain(certs, pin, at)
	if err != nil {
		return certs, time.Time{}, err
	}
	nb, na := window(certs)
	c.put(k, &cacheEntry{kind: kindChain, pin: pin, parts: own, certs: certs, notBefore: nb, notAfter: na, expiry: exp})
	return certs, exp, nil
}

// verifyChain is VerifyChain through the cache: each link, a certificate
// signed by the next, is verified by crypto/x509 on its own, from the root
// down, and cached under the chain from that certificate to the root, so
// that chains sharing intermediates check them once. The checks that span
// links — every intermediate a CA, path length constraints — run on the
// whole chain each time. A chain with name or policy constraints, which
// span links in ways crypto/x509 alone checks, is verified whole.
func (c *Cache) verifyChain(certs []*x509.Certificate, pin SPKIHash, at time.Time) (time.Time, error) {
	if c == nil || len(certs) < 2 || !linkwise(certs) {
		return VerifyChain(certs, pin, at)
	}
	root := certs[len(certs)-1]
	if got := SPKIOf(root); got != pin {
		return time.Time{}, fmt.Errorf("chain ends at %q, whose key (SPKI SHA-256 %s) is not the pinned root %s", root.Subject.CommonName, got, pin)
	}
	for j, ca := range certs[1:] {
		j++ // the position of ca in the chain; j-1 intermediates are below it
		if j < len(certs)-1 && (!ca.BasicConstraintsValid || !ca.IsCA) {
			return time.Time{}, fmt.Errorf("chain does not verify at %s: %q is not a CA", attest.FormatAt(at), ca.Subject.CommonName)
		}
		if ca.BasicConstraintsValid && ca.MaxPathLen >= 0 && j-1 > ca.MaxPathLen {
			return time.Time{}, fmt.Errorf("chain does not verify at %s: %q allows %d intermediates below it, the chain has %d", attest.FormatAt(at), ca.Subject.CommonName, ca.MaxPathLen, j-1)
		}
	}
	for i := len(certs) - 2; i >= 0; i-- {
		if err := c.verifyLink(certs[i:], pin, at); err != nil {
			return time.Time{}, err
		}
	}
	exp := root.NotAfter
	for _, c := range certs {
		if c.NotAfter.Before(exp) {
			exp = c.NotAfter
		}
	}
	return exp, nil
}

// verifyLink checks that chain[0] is signed by chain[1], both valid at the
// time at, through the cache (keyed by the whole chain from chain[0] to
// the root, so a cached link is one whose issuers were verified too).
func (c *Cache) verifyLink(chain []*x509.Certificate, pin SPKIHash, at time.Time) error {
	parts := make([][]byte, len(chain))
	for i, x := range chain {
		parts[i] = x.Raw
	}
	k := c.key(kindLink, pin, parts)
	if c.get(k, kindLink, pin, parts, at) != nil {
		return nil
	}
	if done := c.lead(k); done != nil {
		defer done()
	} else if c.get(k, kindLink, pin, parts, at) != nil {
		return nil
	}
	issuer := x509.NewCertPool()
	issuer.AddCert(chain[1])
	chains, err := chain[0].Verify(x509.VerifyOptions{Roots: issuer, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("chain does not verify at %s: %v", attest.FormatAt(at), err)
	}
	if len(chains) != 1 || len(chains[0]) != 2 {
		return errors.New("the certificates are not in order (leaf first, each signed by the next, root last)")
	}
	// The certificates are the parsed copies the caller keeps, immutable.
	nb, na := window(chain[:2])
	c.put(k, &cacheEntry{kind: kindLink, pin: pin, parts: parts, notBefore: nb, notAfter: na})
	return nil
}

// linkwise reports whether a chain can be verified link by link: none of
// its certificates carries name constraints, certificate policies or
// policy constraints, whose effect reaches past the next certificate.
func linkwise(certs []*x509.Certificate) bool {
	for _, c := range certs {
		if c.PermittedDNSDomainsCritical || len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains)+
			len(c.PermittedIPRanges)+len(c.ExcludedIPRanges)+len(c.PermittedEmailAddresses)+
			len(c.ExcludedEmailAddresses)+len(c.PermittedURIDomains)+len(c.ExcludedURIDomains) > 0 {
			return false
		}
		if len(c.Policies)+len(c.PolicyIdentifiers)+len(c.PolicyMappings) > 0 ||
			c.InhibitAnyPolicy > 0 || c.InhibitAnyPolicyZero || c.RequireExplicitPolicy > 0 ||
			c.RequireExplicitPolicyZero || c.InhibitPolicyMapping > 0 || c.InhibitPolicyMappingZero {
			return false
		}
		for _, e := range c.Extensions {
			// name constraints, certificate policies, policy mappings,
			// policy constraints, inhibit anyPolicy
			if o := e.Id; len(o) == 4 && o[0] == 2 && o[1] == 5 && o[2] == 29 && slices.Contains([]int{30, 32, 33, 36, 54}, o[3]) {
				return false
			}
		}
	}
	return true
}

// verifyRIM parses and verifies a RIM document, through the cache.
func (c *Cache) verifyRIM(doc []byte, pin SPKIHash, at time.Time) (*RIM, time.Time, error) {
	var k uint64
	parts := [][]byte{doc}
	if c != nil {
		k = c.key(kindRIM, pin, parts)
		e := c.get(k, kindRIM, pin, parts, at)
		if e == nil {
			if done := c.lead(k); done != nil {
				defer done()
			} else {
				e = c.get(k, kindRIM, pin, parts, at)
			}
		}
		if e != nil {
			return e.rim, e.expiry, nil
		}
	}
	r, err := ParseRIM(doc)
	if err != nil {
		return nil, time.Time{}, err
	}
	exp, err := c.checkRIM(r, pin, at)
	if err != nil {
		return r, time.Time{}, err
	}
	nb, na := window(r.Certs)
	// r.Raw() is ParseRIM's own copy of doc.
	c.put(k, &cacheEntry{kind: kindRIM, pin: pin, parts: [][]byte{r.Raw()}, rim: r, notBefore: nb, notAfter: na, expiry: exp})
	return r, exp, nil
}
