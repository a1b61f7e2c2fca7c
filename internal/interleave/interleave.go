// Package interleave times the steps of a benchmark in turn in every
// iteration and reports their medians, and their ratios to a baseline
// step: all steps see the same load, which separate benchmarks on a
// shared machine do not, and medians ignore the outliers of a noisy one.
package interleave

import (
	"slices"
	"testing"
	"time"
)

// Timings are the durations of named steps, in the order first timed.
type Timings struct {
	names []string
	ds    map[string][]time.Duration
}

// Time runs fn and records its duration under name.
func (t *Timings) Time(name string, fn func()) {
	if t.ds == nil {
		t.ds = map[string][]time.Duration{}
	}
	if _, ok := t.ds[name]; !ok {
		t.names = append(t.names, name)
	}
	start := time.Now()
	fn()
	t.ds[name] = append(t.ds[name], time.Since(start))
}

// Median returns the median duration of the step name, or 0 if it never
// ran.
func (t *Timings) Median(name string) time.Duration {
	ds := slices.Clone(t.ds[name])
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// Report stops b's timer and reports each step's median in microseconds
// ("NAME-µs") and, for every step but base, its ratio to base's
// ("NAME/BASE").
func (t *Timings) Report(b *testing.B, base string) {
	b.StopTimer()
	mb := t.Median(base)
	for _, n := range t.names {
		m := t.Median(n)
		b.ReportMetric(float64(m)/1e3, n+"-µs")
		if n != base && mb > 0 {
			b.ReportMetric(float64(m)/float64(mb), n+"/"+base)
		}
	}
}
