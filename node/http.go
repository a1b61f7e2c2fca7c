package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/wire"
)

// MediaTypeBundle is the media type of an encoded evidence bundle.
const MediaTypeBundle = "application/sworn-bundle+cbor"

// Handler returns the node's HTTP handler (docs/node.md, "Endpoints").
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sworn/v1/bundle", n.handleBundle)
	mux.HandleFunc("POST /sworn/v1/attest", n.handleAttest)
	mux.HandleFunc("GET /.well-known/ohttp-keys", n.handleKeys)
	mux.HandleFunc("POST /sworn/v1/ohttp", n.handleOHTTP)
	mux.HandleFunc("GET /healthz", n.handleHealth)
	mux.Handle("GET /metrics", n.metrics.handler())
	return mux
}

// current returns the current epoch, or answers 503.
func (n *Node) current(w http.ResponseWriter) *epoch {
	if ok, why := n.Ready(); !ok {
		plainError(w, http.StatusServiceUnavailable, "the node is not serving: "+why)
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.cur
}

// handleBundle serves the passport bundle of the current epoch.
func (n *Node) handleBundle(w http.ResponseWriter, r *http.Request) {
	e := n.current(w)
	if e == nil {
		return
	}
	n.metrics.bundles.WithLabelValues("passport").Inc()
	w.Header().Set("Content-Type", MediaTypeBundle)
	w.Header().Set("ETag", e.etag)
	if age := int(time.Until(e.notAfter).Seconds()); age > 0 {
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(age))
	}
	if r.Header.Get("If-None-Match") == e.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(e.encoded)
}

// handleKeys serves the current key configuration list.
func (n *Node) handleKeys(w http.ResponseWriter, r *http.Request) {
	e := n.current(w)
	if e == nil {
		return
	}
	w.Header().Set("Content-Type", wire.MediaTypeKeys)
	w.Header().Set("ETag", e.etag)
	if age := int(time.Until(e.notAfter).Seconds()); age > 0 {
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(age))
	}
	w.Write(e.configs)
}

// handleAttest answers a challenge: the body is the client's nonce (16 to
// 64 raw bytes); the answer a bundle with fresh evidence bound to the
// current keys and that nonce. It is rate-limited: each costs a TPM quote
// and a report per GPU.
func (n *Node) handleAttest(w http.ResponseWriter, r *http.Request) {
	e := n.current(w)
	if e == nil {
		return
	}
	if !n.attest.Allow(n.cfg.Now()) {
		w.Header().Set("Retry-After", "1")
		plainError(w, http.StatusTooManyRequests, "too many attestation challenges; use the passport bundle (GET /sworn/v1/bundle) or try again")
		return
	}
	nonce, err := io.ReadAll(io.LimitReader(r.Body, attest.MaxNonceSize+1))
	if err != nil || len(nonce) < attest.MinNonceSize || len(nonce) > attest.MaxNonceSize {
		plainError(w, http.StatusBadRequest, fmt.Sprintf("the body must be the nonce: %d to %d raw bytes", attest.MinNonceSize, attest.MaxNonceSize))
		return
	}
	at := n.cfg.Now()
	b, err := n.cfg.Platform.Bundle(r.Context(), EvidenceRequest{Keys: e.bundle.Keys, Nonce: nonce, At: at, Release: n.cfg.Release})
	if err == nil {
		err = n.selfAppraise(r.Context(), b, nonce, at, nil)
	}
	var enc []byte
	if err == nil {
		enc, err = b.Marshal()
	}
	if err != nil {
		n.log.Error("challenge not answered", "err", err)
		plainError(w, http.StatusInternalServerError, "the node could not collect evidence for the challenge")
		return
	}
	n.metrics.bundles.WithLabelValues("challenge").Inc()
	w.Header().Set("Content-Type", MediaTypeBundle)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(enc)
}

// handleHealth says whether the node serves, and why not.
func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	ok, why := n.Ready()
	out := map[string]any{"ready": ok, "platform": n.cfg.Platform.Name()}
	if !ok {
		out["reason"] = why
	}
	n.mu.RLock()
	if n.cur != nil {
		out["epoch_ends"] = n.cur.notAfter.UTC().Format(time.RFC3339)
		out["verdict"] = n.cur.result.Verdict
		out["simulated"] = n.cur.result.Simulated
	}
	n.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(out)
}
