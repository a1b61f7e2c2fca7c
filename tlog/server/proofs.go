package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
)

// proofCache builds inclusion proofs from the log's tiles, shared by all
// concurrent appends.
//
// Tessera's client.ProofBuilder caches the tiles it reads but recomputes
// every node inside a tile from the tile's leaves on each lookup (up to 255
// hashes per tile per proof), and it may not be used concurrently. Here a
// tile is read once, all its internal nodes are computed once, and the
// result is shared by every waiter whose checkpoint needs that tile: a
// batch of appends released by one checkpoint reads each of its tiles
// once.
//
// A tile of a given width is immutable (tlog-tiles: a partial tile of width
// w never changes, the full tile only extends it), so entries are keyed by
// (level, index, width) and stay valid across checkpoints. The cache is
// bounded: entries not used recently are dropped.
type proofCache struct {
	read  func(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	limit int

	mu    sync.Mutex
	tiles map[tileKey]*tileEntry
	clock uint64

	cp atomic.Pointer[parsedCheckpoint] // the last checkpoint parsed
}

type tileKey struct {
	level, index uint64
	width        uint8 // layout.PartialTileSize: 0 is a full tile
}

type tileEntry struct {
	once sync.Once
	// nodes[j][k] is the k-th node j levels above the tile's bottom row
	// (only complete subtrees of the tile).
	nodes [layout.TileHeight][][sha256.Size]byte
	err   error
	used  uint64 // proofCache.clock at the last lookup; under proofCache.mu
}

type parsedCheckpoint struct {
	raw  []byte
	size uint64
	root []byte
}

func newProofCache(read func(ctx context.Context, level, index uint64, p uint8) ([]byte, error)) *proofCache {
	return &proofCache{read: read, limit: 256, tiles: map[tileKey]*tileEntry{}}
}

// checkpoint parses the body of a published signed checkpoint (its
// signature was checked by whoever published it; it is our own).
func (c *proofCache) checkpoint(cpRaw []byte) (*parsedCheckpoint, error) {
	if p := c.cp.Load(); p != nil && bytes.Equal(p.raw, cpRaw) {
		return p, nil
	}
	body, _, _ := bytes.Cut(cpRaw, []byte("\n\n"))
	var cp log.Checkpoint
	if _, err := cp.Unmarshal(append(bytes.Clone(body), '\n')); err != nil {
		return nil, fmt.Errorf("published checkpoint is unreadable: %v", err)
	}
	p := &parsedCheckpoint{raw: bytes.Clone(cpRaw), size: cp.Size, root: cp.Hash}
	c.cp.Store(p)
	return p, nil
}

// tile returns the expanded tile, reading and hashing it at most once
// however many goroutines ask for it at the same time.
func (c *proofCache) tile(ctx context.Context, k tileKey) (*tileEntry, error) {
	c.mu.Lock()
	c.clock++
	e, ok := c.tiles[k]
	if !ok {
		e = &tileEntry{}
		c.tiles[k] = e
		if len(c.tiles) > 2*c.limit {
			for key, old := range c.tiles {
				if c.clock-old.used > uint64(c.limit) && old != e {
					delete(c.tiles, key)
				}
			}
		}
	}
	e.used = c.clock
	c.mu.Unlock()
	// The read is not cancelled with the caller: other waiters share it.
	e.once.Do(func() { e.err = e.load(context.WithoutCancel(ctx), c.read, k) })
	if e.err != nil {
		// Do not keep a failure (a cancelled context, a transient read
		// error): the next caller reads again.
		c.mu.Lock()
		if c.tiles[k] == e {
			delete(c.tiles, k)
		}
		c.mu.Unlock()
		return nil, e.err
	}
	return e, nil
}

func (e *tileEntry) load(ctx context.Context, read func(ctx context.Context, level, index uint64, p uint8) ([]byte, error), k tileKey) error {
	raw, err := read(ctx, k.level, k.index, k.width)
	if err != nil {
		return fmt.Errorf("read tile %d/%d (width %d): %v", k.level, k.index, k.width, err)
	}
	if len(raw)%sha256.Size != 0 {
		return fmt.Errorf("tile %d/%d is corrupt: %d bytes is not a multiple of %d", k.level, k.index, len(raw), sha256.Size)
	}
	n := len(raw) / sha256.Size
	want := int(k.width)
	if want == 0 {
		want = layout.TileWidth
	}
	if n < want {
		return fmt.Errorf("tile %d/%d has %d nodes; a tree of this size needs %d", k.level, k.index, n, want)
	}
	// A full tile may be served for a partial one (the partial file was
	// garbage-collected); its first nodes are the partial tile's.
	n = want
	row := make([][sha256.Size]byte, n)
	for i := range row {
		copy(row[i][:], raw[i*sha256.Size:])
	}
	e.nodes[0] = row
	for j := 1; j < layout.TileHeight; j++ {
		below := e.nodes[j-1]
		up := make([][sha256.Size]byte, len(below)/2)
		for i := range up {
			up[i] = [sha256.Size]byte(rfc6962.DefaultHasher.HashChildren(below[2*i][:], below[2*i+1][:]))
		}
		e.nodes[j] = up
	}
	return nil
}

// inclusion builds the inclusion proof of the leaf at index in the tree of
// the checkpoint, and checks it against the checkpoint's root before
// answering.
func (c *proofCache) inclusion(ctx context.Context, cp *parsedCheckpoint, index uint64, leaf []byte) ([][sha256.Size]byte, error) {
	nodes, err := proof.Inclusion(index, cp.size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof for entry %d in a tree of %d: %v", index, cp.size, err)
	}
	hs := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		tl, ti, nl, ni := layout.NodeCoordsToTileAddress(uint64(id.Level), id.Index)
		t, err := c.tile(ctx, tileKey{tl, ti, layout.PartialTileSize(tl, ti, cp.size)})
		if err != nil {
			return nil, fmt.Errorf("build inclusion proof for entry %d: %v", index, err)
		}
		if ni >= uint64(len(t.nodes[nl])) {
			return nil, fmt.Errorf("build inclusion proof for entry %d: tile %d/%d lacks node %d at level %d", index, tl, ti, ni, nl)
		}
		hs[i] = t.nodes[nl][ni][:]
	}
	if hs, err = nodes.Rehash(hs, rfc6962.DefaultHasher.HashChildren); err != nil {
		return nil, fmt.Errorf("build inclusion proof for entry %d: %v", index, err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.size, rfc6962.DefaultHasher.HashLeaf(leaf), hs, cp.root); err != nil {
		return nil, fmt.Errorf("inclusion proof for entry %d does not match the published checkpoint: %v", index, err)
	}
	out := make([][sha256.Size]byte, len(hs))
	for i, h := range hs {
		if len(h) != sha256.Size {
			return nil, errors.New("inclusion proof has a malformed hash")
		}
		out[i] = [sha256.Size]byte(h)
	}
	return out, nil
}
