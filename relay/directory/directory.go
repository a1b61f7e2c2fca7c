// Package directory is the format of a sworn relay's directory
// (GET /sworn/v1/directory, docs/protocol.md): each node's bundle and key
// configuration list. Clients read it with Fetch and appraise each bundle
// themselves; the relay vouches for nothing.
package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Bounds of a directory.
const (
	// MaxNodes bounds the nodes of one relay; MaxBundle a node's bundle;
	// MaxKeys its encoded key configuration list.
	MaxNodes  = 64
	MaxBundle = 4 << 20
	MaxKeys   = 64 << 10
)

// Version is the version of the directory format.
const Version = 1

// MaxSize bounds a directory a client reads: MaxNodes entries with a
// bundle of DefaultMaxBundle bytes, in base64.
const MaxSize = MaxNodes * (MaxBundle*4/3 + MaxKeys*4/3 + 4<<10)

// Directory is what GET /sworn/v1/directory serves, as JSON: every node of
// the relay, in the relay's order. The relay does not appraise: a client
// verifies each bundle itself (client.VerifyBundle) and encrypts to the
// keys of the bundle, never to Keys alone.
type Directory struct {
	// Version is Version.
	Version int `json:"version"`
	// Nodes are the relay's nodes, in its order.
	Nodes []Node `json:"nodes"`
}

// Node is one node's entry. A node that did not answer its last
// fetch has Error and no Bundle or Keys.
type Node struct {
	// ID is NodeID of the node's URL.
	ID string `json:"id"`
	// Bundle is the node's passport bundle (application/sworn-bundle+cbor)
	// and Keys its key configuration list (application/ohttp-keys), both
	// base64 (standard, padded) in JSON.
	Bundle []byte `json:"bundle,omitempty"`
	Keys   []byte `json:"keys,omitempty"`
	// ETag is the node's ETag of the bundle; Expires when its
	// Cache-Control max-age runs out (absent if it gave none).
	ETag    string    `json:"etag,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	// Error says why the node has no entry.
	Error string `json:"error,omitempty"`
}

// Parse decodes a directory (at most MaxSize bytes).
func Parse(b []byte) (*Directory, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("the directory is %d bytes; at most %d", len(b), MaxSize)
	}
	var d Directory
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("the directory is not valid JSON: %v", err)
	}
	if d.Version != Version {
		return nil, fmt.Errorf("the directory has version %d; this client reads version %d", d.Version, Version)
	}
	if len(d.Nodes) > MaxNodes {
		return nil, fmt.Errorf("the directory lists %d nodes; at most %d", len(d.Nodes), MaxNodes)
	}
	return &d, nil
}

// Fetch gets and decodes the directory of the relay at relayURL.
func Fetch(ctx context.Context, hc *http.Client, relayURL string) (*Directory, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(relayURL, "/")+"/sworn/v1/directory", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the directory of %s: %v", relayURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching the directory of %s: %v", relayURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the relay %s does not serve its directory (%s)", relayURL, resp.Status)
	}
	d, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", relayURL, err)
	}
	return d, nil
}
