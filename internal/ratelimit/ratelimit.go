// Package ratelimit holds token buckets: one, or one per key with a bound
// on how many keys are tracked.
package ratelimit

import (
	"sync"
	"time"
)

// Bucket is a token bucket: Burst tokens, one more every Interval.
type Bucket struct {
	mu       sync.Mutex
	interval time.Duration
	burst    float64
	tokens   float64
	last     time.Time
}

// New returns a full bucket.
func New(interval time.Duration, burst int) *Bucket {
	return &Bucket{interval: interval, burst: float64(burst), tokens: float64(burst)}
}

// Allow takes a token at now, and reports whether there was one.
func (b *Bucket) Allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.take(now)
}

func (b *Bucket) take(now time.Time) bool {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+float64(now.Sub(b.last))/float64(b.interval))
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether the bucket has refilled by now: it can be forgotten.
func (b *Bucket) full(now time.Time) bool {
	return b.tokens+float64(now.Sub(b.last))/float64(b.interval) >= b.burst
}

// Keyed is a bucket per key, tracking at most Max keys: when it is full,
// keys whose buckets refilled are forgotten, and if none has, new keys are
// refused (fail closed) until one does.
type Keyed struct {
	mu       sync.Mutex
	interval time.Duration
	burst    int
	max      int
	buckets  map[string]*Bucket
}

// NewKeyed returns a limiter of buckets of burst tokens, one more every
// interval, for at most max keys.
func NewKeyed(interval time.Duration, burst, max int) *Keyed {
	return &Keyed{interval: interval, burst: burst, max: max, buckets: map[string]*Bucket{}}
}

// Allow takes a token of key's bucket at now.
func (k *Keyed) Allow(key string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	b, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= k.max {
			for key, b := range k.buckets {
				if b.full(now) {
					delete(k.buckets, key)
				}
			}
			if len(k.buckets) >= k.max {
				return false
			}
		}
		b = New(k.interval, k.burst)
		k.buckets[key] = b
	}
	return b.take(now)
}
