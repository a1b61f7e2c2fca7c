package tlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
)

// Publish appends a signed record to the log at logURL (POST <logURL>/add)
// and returns the proof the log answers with, after checking that it is a
// well-formed proof of exactly that record. When the log already holds
// exactly this record (a retry after an answer was lost), it builds the
// proof from the log's tiles instead. hc nil means a plain client; every
// answer is read only up to its format's size (BoundedClient). The
// caller should verify the proof with a Verifier.
func Publish(ctx context.Context, hc *http.Client, logURL string, leaf []byte) (*Proof, error) {
	hc = BoundedClient(hc)
	u, err := url.Parse(logURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("log URL %q must be an http:// or https:// URL", logURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.JoinPath("add").String(), bytes.NewReader(leaf))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("append to log %s: %v", logURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("append to log %s: reading the answer: %v", logURL, err)
	}
	if resp.StatusCode == http.StatusConflict && resp.Header.Get(EntryIndexHeader) != "" {
		// The log already holds exactly this record (an earlier attempt
		// was sequenced but not answered): build its proof from the tiles.
		idx, err := strconv.ParseUint(resp.Header.Get(EntryIndexHeader), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("log %s answered 409 with a bad %s header", logURL, EntryIndexHeader)
		}
		return proofFromTiles(ctx, hc, u, leaf, idx)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return nil, fmt.Errorf("log %s refused the record: %s: %s", logURL, resp.Status, msg)
	}
	p, err := ParseProof(body)
	if err != nil {
		return nil, fmt.Errorf("log %s answered with a bad proof: %v", logURL, err)
	}
	if !bytes.Equal(p.Record, leaf) {
		return nil, fmt.Errorf("log %s answered with a proof for a different record", logURL)
	}
	return p, nil
}

// EntryIndexHeader names, in a 409 answer to an append, the index of the
// entry that holds exactly the submitted record.
const EntryIndexHeader = "Sworn-Entry-Index"

// proofFromTiles builds the proof of the entry at index from the log's
// tlog-tiles read API: the current checkpoint, the tiles for an inclusion
// proof, and the entry bundle, whose entry must be exactly leaf. Nothing is
// trusted here: the proof is verified like any other (sworn verify
// release), against the pinned log key and witnesses.
func proofFromTiles(ctx context.Context, hc *http.Client, u *url.URL, leaf []byte, index uint64) (*Proof, error) {
	base := *u
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	f, err := client.NewHTTPFetcher(&base, hc)
	if err != nil {
		return nil, err
	}
	cpRaw, err := f.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("log %s holds the record as entry %d, but its checkpoint cannot be read: %v", u, index, err)
	}
	size, err := CheckpointSize(cpRaw)
	if err != nil {
		return nil, fmt.Errorf("log %s: %v", u, err)
	}
	if index >= size {
		return nil, fmt.Errorf("log %s holds the record as entry %d, but its published checkpoint (size %d) does not cover it yet; retry later", u, index, size)
	}
	b, err := client.GetEntryBundle(ctx, f.ReadEntryBundle, index/layout.EntryBundleWidth, size)
	if err != nil {
		return nil, fmt.Errorf("log %s: entry bundle of entry %d: %v", u, index, err)
	}
	if i := index % layout.EntryBundleWidth; int(i) >= len(b.Entries) || !bytes.Equal(b.Entries[i], leaf) {
		return nil, fmt.Errorf("log %s says entry %d is this record, but it holds other bytes", u, index)
	}
	pb, err := client.NewProofBuilder(ctx, size, f.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("log %s: %v", u, err)
	}
	hashes, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("log %s: inclusion proof of entry %d: %v", u, index, err)
	}
	p := &Proof{Record: bytes.Clone(leaf), Index: index, Checkpoint: cpRaw}
	for _, h := range hashes {
		if len(h) != sha256.Size {
			return nil, fmt.Errorf("log %s: a proof hash is %d bytes", u, len(h))
		}
		p.Hashes = append(p.Hashes, [sha256.Size]byte(h))
	}
	return p, nil
}

// CheckpointSize reads the size line of a checkpoint without verifying it.
func CheckpointSize(cp []byte) (uint64, error) {
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) < 3 {
		return 0, errors.New("malformed checkpoint")
	}
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, errors.New("malformed checkpoint size")
	}
	return n, nil
}
