package tlog

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/transparency-dev/tessera/api/layout"
)

// The largest answers a log or witness can legitimately send, by format.
const (
	// MaxCheckpointSize bounds a checkpoint (with its signatures); a proof
	// file cannot hold a larger one either.
	MaxCheckpointSize = maxCheckpointSize
	// MaxHashTileSize bounds a tlog-tiles hash tile: 256 SHA-256 hashes.
	MaxHashTileSize = layout.TileWidth * sha256.Size
	// MaxEntryBundleSize bounds an entry bundle: 256 records, each with
	// its 2-byte length prefix.
	MaxEntryBundleSize = layout.EntryBundleWidth * (2 + MaxRecordSize)
	// maxOtherResponse bounds any other answer (a proof for POST /add, a
	// witness's cosignatures, an error text).
	maxOtherResponse = MaxProofSize
)

// ResponseTooLargeError is a network answer larger than its format allows:
// a broken or hostile server. Nothing more of it is read.
type ResponseTooLargeError struct {
	// URL is what was fetched; What names the format; Limit its maximum.
	URL, What string
	Limit     int64
}

func (e *ResponseTooLargeError) Error() string {
	return fmt.Sprintf("%s sent more than %d bytes, the most %s can be: refused (a broken or hostile server)", e.URL, e.Limit, e.What)
}

// responseLimit returns the size bound of the answer to a request for
// path, by the tlog-tiles path layout.
func responseLimit(path string) (int64, string) {
	switch {
	case strings.HasSuffix(path, "/"+layout.CheckpointPath) || path == layout.CheckpointPath:
		return MaxCheckpointSize, "a checkpoint"
	case strings.Contains(path, "/tile/entries/"):
		return MaxEntryBundleSize, "an entry bundle"
	case strings.Contains(path, "/tile/"):
		return MaxHashTileSize, "a hash tile"
	}
	return maxOtherResponse, "a proof or other log or witness answer"
}

// BoundedClient returns a copy of hc (nil: a client with no timeout of
// its own) whose answers are read at most to the size their format allows:
// a checkpoint, a hash tile, an entry bundle (by tlog-tiles path) or, for
// anything else, a proof file. A longer answer fails the read with a
// *ResponseTooLargeError naming the URL and the limit, so a hostile log
// cannot exhaust the memory of the client watching it.
func BoundedClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = &http.Client{}
	}
	if _, done := hc.Transport.(boundedTransport); done {
		return hc
	}
	c := *hc
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = boundedTransport{next}
	return &c
}

type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	limit, what := responseLimit(req.URL.Path)
	tooLarge := &ResponseTooLargeError{URL: req.URL.Redacted(), What: what, Limit: limit}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, tooLarge
	}
	resp.Body = &boundedBody{rc: resp.Body, left: limit, err: tooLarge}
	return resp, nil
}

// boundedBody reads at most left bytes; one more fails with err.
type boundedBody struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, b.err
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }
