package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/server"
)

// BenchmarkAppendToPublishableOneWitness measures, one append at a time,
// the latency from POST /add to a proof under a cosigned checkpoint, with
// one witness on loopback. It reports the median.
func BenchmarkAppendToPublishableOneWitness(b *testing.B) {
	k := newKeys(b, 1)
	_, ws := startWitness(b, k, 0, b.TempDir())
	_, ls := startLog(b, k, b.TempDir(), []string{ws.URL}, 1, k.logS)
	leaves := make([][]byte, b.N)
	for i := range leaves {
		leaves[i] = record(b, k, fmt.Sprintf("lat.%d", i))
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		t := time.Now()
		if _, err := tlog.Publish(context.Background(), nil, ls.URL, leaves[i]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkSustainedAppends measures appends per second, many in flight,
// batched, without witnesses (in process: signature check, dedup,
// sequencing, integration, publication and proof building).
func BenchmarkSustainedAppends(b *testing.B) {
	k := newKeys(b, 0)
	s, err := server.New(context.Background(), server.Config{Dir: b.TempDir(), Signer: k.logS, Publishers: []note.Verifier{k.pubVer},
		BatchMaxSize: 1024, BatchMaxAge: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	leaves := make([][]byte, b.N)
	for i := range leaves {
		leaves[i] = record(b, k, fmt.Sprintf("s.%d", i))
	}
	var next atomic.Int64
	b.SetParallelism(256)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := s.Append(context.Background(), leaves[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
