package verifycache

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPassed(t *testing.T) {
	var p Passed
	now := time.Unix(1_700_000_000, 0)
	k := [32]byte{1}
	if p.Holds(k, now) {
		t.Fatal("an empty cache holds a check")
	}
	p.Store(k, Window{now, now.Add(time.Hour)})
	if !p.Holds(k, now) || p.Holds(k, now.Add(time.Hour)) || p.Holds(k, now.Add(-time.Second)) {
		t.Fatal("a window is [NotBefore, NotAfter)")
	}
	for i := range Max + 1 {
		p.Store([32]byte{byte(i), byte(i >> 8), 2}, Forever)
	}
	if len(p.m) > Max {
		t.Fatalf("%d entries", len(p.m))
	}
}

func TestParsed(t *testing.T) {
	var p Parsed[string]
	calls := 0
	parse := func(b []byte) (*string, error) {
		calls++
		if len(b) == 0 {
			return nil, errors.New("empty")
		}
		s := string(b)
		return &s, nil
	}
	a, _ := p.Get([]byte("x"), parse)
	b, _ := p.Get([]byte("x"), parse)
	if a != b || calls != 1 {
		t.Fatalf("the same bytes parsed %d times", calls)
	}
	for range 2 {
		if _, err := p.Get(nil, parse); err == nil {
			t.Fatal("a failed parse succeeded")
		}
	}
	if calls != 3 {
		t.Fatal("a failed parse was remembered")
	}
	for i := range Max + 1 {
		p.Get([]byte(fmt.Sprint(i)), parse)
	}
	if len(p.m) > Max {
		t.Fatalf("%d entries", len(p.m))
	}
}

// TestParsedCopies: what parse keeps of its input is the cache's own copy,
// so a caller reusing its buffer neither changes a cached object nor finds
// it under the new bytes.
func TestParsedCopies(t *testing.T) {
	var p Parsed[[]byte]
	alias := func(b []byte) (*[]byte, error) { return &b, nil }
	buf := []byte("abc")
	a, _ := p.Get(buf, alias)
	buf[0] = 'x'
	if string(*a) != "abc" {
		t.Fatalf("the cached object changed with the caller's buffer: %q", *a)
	}
	if b, _ := p.Get(buf, alias); string(*b) != "xbc" {
		t.Fatalf("new bytes found the old object: %q", *b)
	}
	if c, _ := p.Get([]byte("abc"), alias); c != a {
		t.Fatal("the same bytes parsed again")
	}
}
