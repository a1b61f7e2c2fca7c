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
	"time"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
)

// Publish appends a signed record to the log at logURL (POST <logURL>/add)
// and returns the proof the log answers with, after checking that it is a
// well-formed proof of exactly that record. When the log already holds
// exactly this record (a retry after an answer was lost), it builds the
// proof from the log's tiles instead. hc nil means a plain client; every
// answer is read only up to its format's size (BoundedClient). The
// caller should verify the proof with a Verifier. already reports that the
// log held the record before this call: the proof is then on the newest
// published checkpoint, which the log answers with only once it meets the
// log's witness policy.
//
// A log that cannot be reached or answers 502, 503 or 504 (restarting,
// overloaded, witnesses slow) is retried with backoff from 250ms doubling
// to 5s, at most 10 attempts and until ctx is done. Retrying is safe: an
// append that was logged although its answer was lost is answered 409
// with its index on the retry, and its proof is rebuilt from the tiles.
func Publish(ctx context.Context, hc *http.Client, logURL string, leaf []byte) (p *Proof, already bool, err error) {
	hc = BoundedClient(hc)
	u, perr := url.Parse(logURL)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, false, fmt.Errorf("log URL %q must be an http:// or https:// URL", logURL)
	}
	delay := retryFirst
	var last error
	for attempt := 1; ; attempt++ {
		p, already, err := publishOnce(ctx, hc, u, leaf)
		var te *transientError
		if err != nil && last != nil && ctx.Err() != nil {
			// Out of time during a retry: the previous answer says why.
			return nil, false, fmt.Errorf("%v (gave up after %d attempts: %v)", last, attempt, ctx.Err())
		}
		if err == nil || !errors.As(err, &te) {
			return p, already, err
		}
		last = err
		if attempt == retryAttempts {
			return nil, false, fmt.Errorf("%v (gave up after %d attempts)", err, attempt)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, fmt.Errorf("%v (gave up after %d attempts: %v)", err, attempt, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}

// Publish's retries.
const (
	retryFirst    = 250 * time.Millisecond
	retryMax      = 5 * time.Second
	retryAttempts = 10
)

// transientError is a failure that a retry of the same append may not
// meet: the log unreachable, restarting or busy.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(format string, args ...any) error {
	return &transientError{fmt.Errorf(format, args...)}
}

func publishOnce(ctx context.Context, hc *http.Client, u *url.URL, leaf []byte) (*Proof, bool, error) {
	logURL := u.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.JoinPath("add").String(), bytes.NewReader(leaf))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("append to log %s: %v", logURL, err)
		}
		return nil, false, transient("append to log %s: %v", logURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		var tooLarge *ResponseTooLargeError
		if errors.As(err, &tooLarge) || ctx.Err() != nil {
			return nil, false, fmt.Errorf("append to log %s: reading the answer: %v", logURL, err)
		}
		return nil, false, transient("append to log %s: reading the answer: %v", logURL, err)
	}
	if resp.StatusCode == http.StatusConflict && resp.Header.Get(EntryIndexHeader) != "" {
		// The log already holds exactly this record (an earlier attempt
		// was sequenced but not answered): build its proof from the tiles.
		idx, err := strconv.ParseUint(resp.Header.Get(EntryIndexHeader), 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("log %s answered 409 with a bad %s header", logURL, EntryIndexHeader)
		}
		p, err := proofFromTiles(ctx, hc, u, leaf, idx)
		return p, err == nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512]
		}
		err := fmt.Errorf("log %s refused the record: %s: %s", logURL, resp.Status, msg)
		switch {
		case resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout,
			// Another request is appending this record right now.
			resp.StatusCode == http.StatusConflict && resp.Header.Get("Retry-After") != "":
			return nil, false, &transientError{err}
		}
		return nil, false, err
	}
	p, err := ParseProof(body)
	if err != nil {
		return nil, false, fmt.Errorf("log %s answered with a bad proof: %v", logURL, err)
	}
	if !bytes.Equal(p.Record, leaf) {
		return nil, false, fmt.Errorf("log %s answered with a proof for a different record", logURL)
	}
	return p, false, nil
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
		return nil, transient("log %s holds the record as entry %d, but its published checkpoint (size %d) does not cover it yet", u, index, size)
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
