package appraiser

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/attesttest"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
)

var boot = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func simNode(t testing.TB, o sim.Options) *sim.Node {
	t.Helper()
	o.At = boot
	n, err := sim.Boot(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// simPolicy is the simulated starter policy for gpus GPUs, with edit
// applied to its text.
func simPolicy(t testing.TB, gpus int, edit func([]byte) []byte) *policy.Policy {
	t.Helper()
	so, err := sim.StarterOptions(gpus)
	if err != nil {
		t.Fatal(err)
	}
	data := policy.Starter(so)
	if edit != nil {
		data = edit(data)
	}
	p, err := policy.Parse("starter", data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func jsonOf(t testing.TB, r *attest.Result) []byte {
	t.Helper()
	j, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// counts returns the cache's hits and misses since the last call.
func counts(a *Appraiser) func() (int, int) {
	h0, m0, _ := a.cache.stats()
	return func() (int, int) {
		h, m, _ := a.cache.stats()
		dh, dm := h-h0, m-m0
		h0, m0 = h, m
		return dh, dm
	}
}

func TestCacheHit(t *testing.T) {
	n := simNode(t, sim.Options{Seed: 1, GPUs: 2})
	p := simPolicy(t, 2, nil)
	a := New()
	delta := counts(a)
	at := boot.Add(time.Hour)
	first := a.Appraise(t.Context(), n.Bundle, Options{At: at, Policy: p})
	if first.Verdict != attest.Affirming {
		t.Fatalf("verdict %s: %s", first.Verdict, jsonOf(t, first))
	}
	want := jsonOf(t, first)
	// The caller owns what it got: changing it changes no later answer.
	first.Verdict = attest.Contraindicated
	first.Devices["gpu0"].Steps[0].Status = attest.Fail
	first.Devices["gpu1"].Claims["arch"] = "changed"
	first.Ledger.Verified = nil
	if h, m := delta(); h != 0 || m != 1 {
		t.Fatalf("first appraisal: %d hits, %d misses", h, m)
	}
	start := time.Now()
	again := a.Appraise(t.Context(), n.Bundle, Options{At: at, Policy: p})
	fast := time.Since(start)
	if h, m := delta(); h != 1 || m != 0 {
		t.Fatalf("same appraisal: %d hits, %d misses", h, m)
	}
	if got := jsonOf(t, again); !bytes.Equal(got, want) {
		t.Fatalf("cached result differs\nfirst:  %s\ncached: %s", want, got)
	}
	// Later in the epoch: a hit, once an appraisal at the epoch's end
	// agrees; the result is the one computed at its own time.
	later := a.Appraise(t.Context(), n.Bundle, Options{At: at.Add(5 * time.Hour), Policy: p})
	if h, _ := delta(); h != 1 || !bytes.Equal(jsonOf(t, later), want) {
		t.Fatalf("later appraisal: %d hits, %s", h, jsonOf(t, later))
	}
	t.Logf("cached appraisal of a 2-GPU bundle: %v", fast)
}

func TestCacheMisses(t *testing.T) {
	n := simNode(t, sim.Options{Seed: 2, GPUs: 2})
	p := simPolicy(t, 2, nil)
	at := boot.Add(time.Hour)
	tampered := attesttest.EditBody(t, n.Bundle, "gpu1", func(b []byte) []byte {
		b[len(b)-40] ^= 1 // in the last OCSP response's signature
		return b
	})
	for _, c := range []struct {
		name string
		b    *attest.Bundle
		o    Options
		want attest.Verdict
	}{
		{"another policy value", n.Bundle, Options{At: at, Policy: simPolicy(t, 2, nil)}, attest.Affirming},
		{"a stricter policy", n.Bundle, Options{At: at, Policy: simPolicy(t, 3, nil)}, attest.Contraindicated},
		{"a nonce", n.Bundle, Options{At: at, Policy: p, Nonce: []byte("0123456789abcdef0123456789abcdef")}, attest.Contraindicated},
		{"a revocation proof", n.Bundle, Options{At: at, Policy: p, Revocations: [][]byte{[]byte("not a proof")}}, attest.Affirming},
		{"past the epoch", n.Bundle, Options{At: boot.Add(sim.DefaultEpoch), Policy: p}, attest.Contraindicated},
		{"before the cached time", n.Bundle, Options{At: at.Add(-time.Minute), Policy: p}, attest.Affirming},
		{"a tampered bundle", tampered, Options{At: at, Policy: p}, attest.Contraindicated},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := New()
			if r := a.Appraise(t.Context(), n.Bundle, Options{At: at, Policy: p}); r.Verdict != attest.Affirming {
				t.Fatalf("verdict %s", r.Verdict)
			}
			delta := counts(a)
			r := a.Appraise(t.Context(), c.b, c.o)
			if h, m := delta(); h != 0 || m != 1 {
				t.Fatalf("%d hits, %d misses; want a miss", h, m)
			}
			if r.Verdict != c.want {
				t.Fatalf("verdict %s, want %s: %s", r.Verdict, c.want, jsonOf(t, r))
			}
			if !r.At.Equal(c.o.At) {
				t.Fatalf("result at %s, want %s", r.At, c.o.At)
			}
		})
	}
}

// TestCacheExpiryWithinEpoch: an OCSP response that expires before the
// bundle's epoch ends must not let a cached affirming result answer after
// it expired.
func TestCacheExpiryWithinEpoch(t *testing.T) {
	// The simulated OCSP responses are valid for a week; the epoch is ten days.
	n := simNode(t, sim.Options{Seed: 3, GPUs: 1, Epoch: 10 * 24 * time.Hour})
	p := simPolicy(t, 1, func(b []byte) []byte { return bytes.Replace(b, []byte("max_age: 24h"), []byte("max_age: 240h"), 1) })
	a := New()
	if r := a.Appraise(t.Context(), n.Bundle, Options{At: boot.Add(time.Hour), Policy: p}); r.Verdict != attest.Affirming {
		t.Fatalf("verdict %s: %s", r.Verdict, jsonOf(t, r))
	}
	r := a.Appraise(t.Context(), n.Bundle, Options{At: boot.Add(8 * 24 * time.Hour), Policy: p})
	if r.Verdict != attest.Contraindicated || r.Devices["gpu0"].Step("gpu.ocsp").Status != attest.Fail {
		t.Fatalf("appraised after the OCSP responses expired: %s", jsonOf(t, r))
	}
	// And it stays so.
	r = a.Appraise(t.Context(), n.Bundle, Options{At: boot.Add(8*24*time.Hour + time.Minute), Policy: p})
	if r.Verdict != attest.Contraindicated {
		t.Fatalf("verdict %s", r.Verdict)
	}
}

func TestCacheBound(t *testing.T) {
	c := newCache(2)
	at := boot
	e := func(i byte) *entry {
		return &entry{key: cacheKey{sum: [32]byte{i}}, res: &attest.Result{}, at: at, horizon: at.Add(time.Hour)}
	}
	c.put(e(1))
	c.put(e(2))
	if c.get(cacheKey{sum: [32]byte{1}}, at) == nil { // 1 is now the most recent
		t.Fatal("entry 1 missing")
	}
	c.put(e(3))
	if c.get(cacheKey{sum: [32]byte{2}}, at) != nil {
		t.Fatal("the least recently used entry was kept")
	}
	if c.get(cacheKey{sum: [32]byte{1}}, at) == nil || c.get(cacheKey{sum: [32]byte{3}}, at) == nil {
		t.Fatal("a recent entry was evicted")
	}
	if _, _, size := c.stats(); size != 2 {
		t.Fatalf("size %d", size)
	}
	if c.get(cacheKey{sum: [32]byte{1}}, at.Add(2*time.Hour)) != nil {
		t.Fatal("an entry answered past its horizon")
	}
}

// TestCacheConcurrent appraises bundles from many goroutines (run with
// -race): every answer is the one a fresh appraiser gives.
func TestCacheConcurrent(t *testing.T) {
	p := simPolicy(t, 2, nil)
	at := boot.Add(time.Hour)
	nodes := []*attest.Bundle{simNode(t, sim.Options{Seed: 4, GPUs: 2, NoTPM: true}).Bundle, simNode(t, sim.Options{Seed: 5, GPUs: 2, NoTPM: true}).Bundle}
	nodes = append(nodes, attesttest.Drop(nodes[0], "gpu1"))
	var want [][]byte
	for _, b := range nodes {
		want = append(want, jsonOf(t, New().Appraise(t.Context(), b, Options{At: at, Policy: p})))
	}
	a := New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 6 {
				k := (g + i) % len(nodes)
				r := a.Appraise(t.Context(), nodes[k], Options{At: at, Policy: p})
				if got := jsonOf(t, r); !bytes.Equal(got, want[k]) {
					t.Errorf("bundle %d: %s", k, got)
				}
				r.Devices["cpu0"].Steps = nil // callers may change what they got
			}
		})
	}
	wg.Wait()
	if h, _, _ := a.cache.stats(); h == 0 {
		t.Fatal("no appraisal was answered from the cache")
	}
}
