package interleave

import (
	"testing"
	"time"
)

func TestTimings(t *testing.T) {
	var tm Timings
	if tm.Median("none") != 0 {
		t.Fatal("a step that never ran has a median")
	}
	for _, d := range []time.Duration{3, 1, 2} {
		tm.Time("fast", func() { time.Sleep(d * time.Millisecond) })
		tm.Time("slow", func() { time.Sleep(4 * d * time.Millisecond) })
	}
	if m := tm.Median("fast"); m < 2*time.Millisecond || m >= 3*time.Millisecond {
		t.Fatalf("median %v, want about 2ms", m)
	}
	r := testing.Benchmark(func(b *testing.B) {
		var tm Timings
		for b.Loop() {
			tm.Time("base", func() { time.Sleep(time.Millisecond) })
			tm.Time("x", func() { time.Sleep(3 * time.Millisecond) })
		}
		tm.Report(b, "base")
	})
	if x := r.Extra["x/base"]; x < 2 || x > 4 || r.Extra["base-µs"] < 1000 {
		t.Fatalf("metrics %v", r.Extra)
	}
	if _, ok := r.Extra["base/base"]; ok {
		t.Fatal("the base has a ratio to itself")
	}
}
