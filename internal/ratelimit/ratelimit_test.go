package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := New(time.Second, 2)
	if !b.Allow(now) || !b.Allow(now) || b.Allow(now) {
		t.Fatal("a bucket of 2 does not give exactly 2 at once")
	}
	if b.Allow(now.Add(500*time.Millisecond)) || !b.Allow(now.Add(1500*time.Millisecond)) {
		t.Fatal("one token per second")
	}
	// A clock that steps back gives nothing new.
	if b.Allow(now) {
		t.Fatal("a token from a clock stepping back")
	}
	if !b.Allow(now.Add(time.Hour)) || !b.Allow(now.Add(time.Hour)) || b.Allow(now.Add(time.Hour)) {
		t.Fatal("a refilled bucket holds at most its burst")
	}
}

func TestKeyed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	k := NewKeyed(time.Second, 1, 2)
	if !k.Allow("a", now) || k.Allow("a", now) || !k.Allow("b", now) {
		t.Fatal("per-key buckets")
	}
	// Full of keys none of which has refilled: a new key is refused.
	if k.Allow("c", now) {
		t.Fatal("a third key while two are tracked and empty")
	}
	// Once they refilled, they are forgotten and c gets its bucket.
	if !k.Allow("c", now.Add(2*time.Second)) || len(k.buckets) != 1 {
		t.Fatalf("after a refill: %d keys", len(k.buckets))
	}
}
