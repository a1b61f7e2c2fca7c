package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/server"
)

// checkProof checks a proof offline under the log key and against the
// proof Tessera's own client builds from the tiles.
func checkProof(k *keys, s *server.Server, leaf []byte, p *tlog.Proof) error {
	if !bytes.Equal(p.Record, leaf) {
		return errors.New("proof carries another record")
	}
	n, err := note.Open(p.Checkpoint, note.VerifierList(k.logVer))
	if err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return err
	}
	pb, err := client.NewProofBuilder(context.Background(), cp.Size, s.Reader().ReadTile)
	if err != nil {
		return err
	}
	want, err := pb.InclusionProof(context.Background(), p.Index)
	if err != nil {
		return err
	}
	if len(want) != len(p.Hashes) {
		return fmt.Errorf("entry %d of %d: %d hashes, Tessera's client builds %d", p.Index, cp.Size, len(p.Hashes), len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], p.Hashes[i][:]) {
			return fmt.Errorf("entry %d of %d: hash %d differs from Tessera's client", p.Index, cp.Size, i)
		}
	}
	return nil
}

// TestAppendBatch: every record of a batch is checked as by Append, the
// accepted ones get correct proofs, the others say why.
func TestAppendBatch(t *testing.T) {
	k := newKeys(t, 0)
	dir := t.TempDir()
	s, err := server.New(context.Background(), server.Config{Dir: dir, Signer: k.logS, Publishers: []note.Verifier{k.pubVer},
		BatchMaxSize: 64, BatchMaxAge: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()

	// Sizes that cross tile boundaries (256 entries), in several rounds
	// and concurrently, so proofs are built against partial and full
	// tiles at many tree sizes.
	n := 0
	var mu sync.Mutex
	var all [][]byte
	for _, sizes := range [][]int{{1}, {3, 250}, {2, 255, 256}, {17}, {300, 5}} {
		var wg sync.WaitGroup
		for _, size := range sizes {
			leaves := make([][]byte, size)
			for i := range leaves {
				leaves[i] = record(t, k, fmt.Sprintf("b.%d", n))
				n++
			}
			wg.Go(func() {
				res := s.AppendBatch(ctx, leaves)
				if len(res) != len(leaves) {
					t.Errorf("%d results for %d records", len(res), len(leaves))
					return
				}
				for i, r := range res {
					if r.Err != nil {
						t.Errorf("record %d: %v", i, r.Err)
						return
					}
					if err := checkProof(k, s, leaves[i], r.Proof); err != nil {
						t.Error(err)
						return
					}
				}
				mu.Lock()
				all = append(all, leaves...)
				mu.Unlock()
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}

	// A mixed batch: good, bad, duplicate of a logged one, duplicate
	// within the batch, unknown publisher.
	good := record(t, k, "mixed.1")
	other := newKeys(t, 0)
	res := s.AppendBatch(ctx, [][]byte{good, []byte("{}"), all[7], good, record(t, other, "mixed.2"), append(bytes.Clone(good), ' ')})
	want := []error{nil, server.ErrBadRecord, server.ErrDuplicate, server.ErrDuplicate, server.ErrForbidden, server.ErrBadRecord}
	for i, r := range res {
		if want[i] == nil {
			if r.Err != nil {
				t.Fatalf("record %d: %v", i, r.Err)
			}
			if err := checkProof(k, s, good, r.Proof); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !errors.Is(r.Err, want[i]) || r.Proof != nil {
			t.Errorf("record %d: %v, want %v", i, r.Err, want[i])
		}
	}
	// And single appends still see the batch's records as duplicates.
	if _, err := s.Append(ctx, good); !errors.Is(err, server.ErrDuplicate) {
		t.Fatalf("duplicate of a batched record: %v", err)
	}
	if _, err := s.Append(ctx, all[300]); !errors.Is(err, server.ErrDuplicate) {
		t.Fatalf("duplicate of a batched record: %v", err)
	}
	// An empty batch is fine.
	if res := s.AppendBatch(ctx, nil); len(res) != 0 {
		t.Fatal(res)
	}

	// After a restart, the batched records are still there and still
	// refused as duplicates.
	s.Close(ctx)
	s2, err := server.New(ctx, server.Config{Dir: dir, Signer: k.logS, Publishers: []note.Verifier{k.pubVer}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(ctx)
	if size, err := s2.Reader().IntegratedSize(ctx); err != nil || size != uint64(n+1) {
		t.Fatalf("size after restart %d (%v), want %d", size, err, n+1)
	}
	for _, r := range s2.AppendBatch(ctx, [][]byte{all[0], good}) {
		if !errors.Is(r.Err, server.ErrDuplicate) {
			t.Fatalf("after restart: %v", r.Err)
		}
	}
}

// TestConcurrentAppendProofs: many single appends in flight at once share
// tiles through the proof cache and all get proofs identical to Tessera's
// client.
func TestConcurrentAppendProofs(t *testing.T) {
	k := newKeys(t, 0)
	s, err := server.New(context.Background(), server.Config{Dir: t.TempDir(), Signer: k.logS, Publishers: []note.Verifier{k.pubVer},
		BatchMaxSize: 128, BatchMaxAge: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	var wg sync.WaitGroup
	for i := range 600 {
		leaf := record(t, k, fmt.Sprintf("c.%d", i))
		wg.Go(func() {
			p, err := s.Append(context.Background(), leaf)
			if err != nil {
				t.Error(err)
				return
			}
			if err := checkProof(k, s, leaf, p); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
