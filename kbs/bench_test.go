package kbs_test

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/tlog"
)

// phaseMeans reads the mean of each release phase from the broker's
// metrics: appraisal, log (append and witness wait), total.
func phaseMeans(b *testing.B, url string) map[string]float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sum, count := map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "sworn_kbs_release_seconds_") {
			continue
		}
		_, label, _ := strings.Cut(name, `phase="`)
		label, _, _ = strings.Cut(label, `"`)
		v, _ := strconv.ParseFloat(val, 64)
		switch {
		case strings.HasPrefix(name, "sworn_kbs_release_seconds_sum"):
			sum[label] = v
		case strings.HasPrefix(name, "sworn_kbs_release_seconds_count"):
			count[label] = v
		}
	}
	out := map[string]float64{}
	for k, s := range sum {
		if count[k] > 0 {
			out[k] = s / count[k] * 1e3
		}
	}
	return out
}

func percentile(ds []time.Duration, p float64) float64 {
	slices.Sort(ds)
	return float64(ds[min(len(ds)-1, int(float64(len(ds))*p))].Microseconds()) / 1e3
}

// prepared is a node's release request answering a fresh challenge.
func (st *stack) prepared(b *testing.B, url string, seed uint64) kbs.ReleaseRequest {
	model := kbs.FormatDigest(st.Model.Digest)
	nonce := challenge(b, url, model)
	bundle, _ := st.nodeBundle(b, seed, nonce)
	return kbs.ReleaseRequest{Model: model, Nonce: nonce, Bundle: bundle}
}

// BenchmarkKeyRelease: one node's key release on sworn up's log with its
// two witnesses, p50 and p99, beside the mean of its phases as the broker
// measures them (appraisal; log append with the witness wait; the rest),
// and beside a bare witnessed append of a record of the same size to the
// same log (the floor the log sets).
func BenchmarkKeyRelease(b *testing.B) {
	st := startStack(b)
	_, url := st.newBroker(b, st.policy, st.LogURL, func(c *kbs.Config) { c.NodeLimit = kbs.Limit{Every: time.Millisecond, Burst: 1 << 20} })
	var total, bare []time.Duration
	seed := uint64(100)
	for b.Loop() {
		b.StopTimer()
		req := st.prepared(b, url, seed)
		seed++
		b.StartTimer()
		t0 := time.Now()
		if code, out := post(b, url+"/kbs/v1/release", req); code != 200 {
			b.Fatalf("release: %d %v", code, out)
		}
		total = append(total, time.Since(t0))
		b.StopTimer()
		t1 := time.Now()
		if _, _, err := tlog.Publish(context.Background(), nil, st.LogURL, noise(b, st, seed)); err != nil {
			b.Fatal(err)
		}
		bare = append(bare, time.Since(t1))
		b.StartTimer()
	}
	m := phaseMeans(b, url)
	b.ReportMetric(percentile(total, 0.5), "p50-ms")
	b.ReportMetric(percentile(total, 0.99), "p99-ms")
	b.ReportMetric(m["appraisal"], "appraisal-ms")
	b.ReportMetric(m["log"], "log-ms")
	b.ReportMetric(m["total"]-m["appraisal"]-m["log"], "rest-ms")
	b.ReportMetric(percentile(bare, 0.5), "bare-append-p50-ms")
}

// noise is a signed release record to publish as the bare append.
func noise(b *testing.B, st *stack, i uint64) []byte {
	r := &tlog.Record{Schema: tlog.Schema, Type: tlog.TypeRevocation, Revocation: &tlog.Revocation{ReleaseID: "bench-noise", Version: strconv.FormatUint(i, 10), Reason: "benchmark", Created: time.Now().UTC().Truncate(time.Second)}}
	pub, err := tlog.NewSigner(st.dir+"/publisher.key", tlog.KindPublisher)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Sign(pub); err != nil {
		b.Fatal(err)
	}
	leaf, err := r.Canonical()
	if err != nil {
		b.Fatal(err)
	}
	return leaf
}

// BenchmarkKeyRelease100: 100 nodes ask for the key at once; the time
// until all have it, and their p50 and p99.
func BenchmarkKeyRelease100(b *testing.B) {
	st := startStack(b)
	_, url := st.newBroker(b, st.policy, st.LogURL)
	seed := uint64(10_000)
	var all []time.Duration
	var each []time.Duration
	for b.Loop() {
		b.StopTimer()
		reqs := make([]kbs.ReleaseRequest, 100)
		for i := range reqs {
			reqs[i] = st.prepared(b, url, seed)
			seed++
		}
		b.StartTimer()
		var mu sync.Mutex
		var wg sync.WaitGroup
		t0 := time.Now()
		for _, req := range reqs {
			wg.Go(func() {
				t := time.Now()
				code, out := post(b, url+"/kbs/v1/release", req)
				if code != 200 {
					b.Errorf("release: %d %v", code, out)
				}
				mu.Lock()
				each = append(each, time.Since(t))
				mu.Unlock()
			})
		}
		wg.Wait()
		all = append(all, time.Since(t0))
	}
	b.ReportMetric(percentile(all, 0.5), "all-100-ms")
	b.ReportMetric(percentile(each, 0.5), "p50-ms")
	b.ReportMetric(percentile(each, 0.99), "p99-ms")
}
