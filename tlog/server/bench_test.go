package server_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
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
		if _, _, err := tlog.Publish(context.Background(), nil, ls.URL, leaves[i]); err != nil {
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
	cpu0 := cpuTime()
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
	// CPU time (user+system, all threads) per record: less sensitive than
	// records/s to other load on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/record")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSustainedAppendsBatch measures appends per second through
// AppendBatch, the batch API: a few callers in flight, each appending
// batchSize records per call and getting batchSize proofs back, without
// witnesses, with the same log configuration as BenchmarkSustainedAppends.
// Every record is still strictly parsed, signature-verified, checked for
// duplicates, sequenced durably and proven.
func BenchmarkSustainedAppendsBatch(b *testing.B) {
	const batchSize, callers = 512, 4
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
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for {
				lo := int(next.Add(batchSize)) - batchSize
				if lo >= b.N {
					return
				}
				batch := leaves[lo:min(lo+batchSize, b.N)]
				for i, r := range s.AppendBatch(context.Background(), batch) {
					if r.Err != nil {
						b.Error(r.Err)
						return
					}
					if r.Proof.Index >= uint64(b.N) || !bytes.Equal(r.Proof.Record, batch[i]) {
						b.Error("wrong proof")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/record")
}
