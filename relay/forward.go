package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sworn-dev/sworn/wire"
)

// kinds names the forwarded media types in logs and metrics.
var kinds = map[string]string{wire.MediaTypeRequest: "ohttp", wire.MediaTypeChunkedReq: "chunked", wire.MediaTypeMultiReq: "multi"}

// passResponse are the response header fields passed back to the client;
// every other field of the node's answer is dropped.
var passResponse = []string{"Content-Type", "Incremental", "Cache-Control"}

var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// forward is one request being forwarded, as logged: never its body, its
// headers or the client's address.
type forward struct {
	id, kind, node string
	status         int
	outcome        string
	err            error
	down           int64
	start          time.Time
}

// routeErr is a request refused before it reached a node.
type routeErr struct {
	status  int
	outcome string
	msg     string
}

// handleForward serves POST /sworn/v1/ohttp: it chooses a node from the
// request's key header (docs/protocol.md, "The relay"), passes the body
// to it with no identifying header, and streams the answer back as its
// bytes arrive.
func (r *Relay) handleForward(w http.ResponseWriter, req *http.Request) {
	f := &forward{id: requestID(), kind: "unknown", start: r.cfg.Now()}
	body := &countingBody{r: req.Body, max: r.cfg.MaxRequest}
	abort := false
	defer func() {
		took := r.cfg.Now().Sub(f.start)
		r.metrics.requests.WithLabelValues(f.kind, f.outcome).Inc()
		r.metrics.duration.WithLabelValues(f.outcome).Observe(took.Seconds())
		r.metrics.bytes.WithLabelValues("to_node").Add(float64(body.n.Load()))
		r.metrics.bytes.WithLabelValues("to_client").Add(float64(f.down))
		attrs := []any{"req", f.id, "kind", f.kind, "node", f.node, "status", f.status, "outcome", f.outcome,
			"to_node_bytes", body.n.Load(), "to_client_bytes", f.down, "took", took.String()}
		if f.err != nil {
			// Errors of the client's connection name its address.
			attrs = append(attrs, "err", addrRE.ReplaceAllString(f.err.Error(), "[addr]"))
		}
		r.log.Info("forward", attrs...)
		if abort {
			// Cut the client's connection rather than end the answer
			// cleanly: the client sees the truncation at once.
			panic(http.ErrAbortHandler)
		}
	}()
	fail := func(e *routeErr) {
		f.status, f.outcome = e.status, e.outcome
		plainError(w, e.status, e.msg)
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	kind, ok := kinds[mt]
	if !ok {
		fail(&routeErr{http.StatusUnsupportedMediaType, "bad_media_type", fmt.Sprintf("the body must be %s, %s or %s", wire.MediaTypeRequest, wire.MediaTypeChunkedReq, wire.MediaTypeMultiReq)})
		return
	}
	f.kind = kind
	if req.ContentLength > r.cfg.MaxRequest {
		fail(tooLarge(r.cfg.MaxRequest))
		return
	}
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		fail(&routeErr{http.StatusServiceUnavailable, "busy", "the relay is forwarding as many requests as it may; try again"})
		return
	}
	r.metrics.active.Inc()
	defer r.metrics.active.Dec()

	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	var idled atomic.Bool
	idle := time.AfterFunc(r.cfg.IdleTimeout, func() { idled.Store(true); cancel() })
	defer idle.Stop()
	// While the body comes in, a stalled client is cut after the idle
	// timeout; once it is in, the deadline goes (it would end the
	// request's context).
	var finished atomic.Bool
	defer func() {
		// The connection may serve another request: no deadline of
		// this one stays on it.
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
	}()
	defer finished.Store(true)
	touch := func() {
		if finished.Load() { // a late read of the transport's
			return
		}
		idle.Reset(r.cfg.IdleTimeout)
		if body.eof.Load() {
			rc.SetReadDeadline(time.Time{})
		} else {
			rc.SetReadDeadline(time.Now().Add(r.cfg.IdleTimeout))
		}
	}
	touch()
	body.touch = touch

	var only string
	if id := req.PathValue("node"); id != "" {
		if !r.snap.Load().ids[id] {
			fail(&routeErr{http.StatusNotFound, "no_node", "this relay has no node " + excerpt(id) + ": fetch the directory"})
			return
		}
		only = id
	}
	prefix, st, rerr := r.route(kind, body, only)
	if rerr != nil {
		fail(rerr)
		return
	}
	f.node = st.id
	// The request may stream while its answer streams (chunked OHTTP).
	// (Only now: a refusal leaves the rest of the body to net/http.)
	rc.EnableFullDuplex()
	up, err := http.NewRequestWithContext(ctx, http.MethodPost, st.url+"/sworn/v1/ohttp", io.MultiReader(bytes.NewReader(prefix), body))
	if err != nil {
		fail(&routeErr{http.StatusInternalServerError, "error", "the relay could not make the request"})
		return
	}
	up.ContentLength = -1
	if req.ContentLength > 0 {
		up.ContentLength = req.ContentLength
	}
	up.Header = outboundHeader(mt, req.Header)
	resp, err := r.fwd.RoundTrip(up)
	if err != nil {
		f.err = err
		switch {
		case body.tooLarge.Load():
			fail(tooLarge(r.cfg.MaxRequest))
		case req.Context().Err() != nil:
			f.outcome = "client_gone"
		case idled.Load():
			fail(&routeErr{http.StatusGatewayTimeout, "idle_timeout", "the request stalled: nothing moved for " + r.cfg.IdleTimeout.String()})
		case isTimeout(err):
			fail(&routeErr{http.StatusGatewayTimeout, "node_timeout", "node " + st.id + " did not answer in time; try another node or again later"})
		default:
			fail(&routeErr{http.StatusBadGateway, "node_unreachable", "node " + st.id + " did not answer; try another node or again later"})
		}
		return
	}
	defer resp.Body.Close()
	r.metrics.firstByte.WithLabelValues(outcomeOfStatus(resp.StatusCode)).Observe(r.cfg.Now().Sub(f.start).Seconds())
	for _, k := range passResponse {
		if v := resp.Header.Values(k); len(v) > 0 {
			w.Header()[k] = v
		}
	}
	f.status, f.outcome = resp.StatusCode, outcomeOfStatus(resp.StatusCode)
	w.WriteHeader(resp.StatusCode)
	rc.Flush()
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	for {
		n, err := resp.Body.Read(buf[:])
		if n > 0 {
			idle.Reset(r.cfg.IdleTimeout)
			rc.SetWriteDeadline(time.Now().Add(r.cfg.IdleTimeout))
			k, werr := w.Write(buf[:n])
			f.down += int64(k)
			if werr == nil {
				werr = rc.Flush()
			}
			if werr != nil {
				f.outcome, f.err = "client_gone", werr
				return
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			f.outcome, f.err, abort = "cut", err, true
			switch {
			case req.Context().Err() != nil:
				f.outcome = "client_gone"
			case idled.Load():
				f.outcome = "idle_timeout"
			}
			return
		}
	}
}

func tooLarge(limit int64) *routeErr {
	return &routeErr{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the request is larger than %d bytes", limit)}
}

func outcomeOfStatus(status int) string {
	if status >= 200 && status < 300 {
		return "ok"
	}
	return "node_refused"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// outboundHeader is all the relay tells a node: the media type, whether
// the body is incremental, and the client's Date (RFC 9458 §6.5; the
// gateway checks it), normalized. Nothing else of the client's request
// passes: no Forwarded, X-Forwarded-*, Via, cookies, User-Agent or
// Authorization, and Go's own User-Agent and Accept-Encoding are
// suppressed.
func outboundHeader(mediaType string, in http.Header) http.Header {
	h := http.Header{"Content-Type": {mediaType}, "User-Agent": {""}}
	if in.Get("Incremental") == "?1" {
		h.Set("Incremental", "?1")
	}
	if t, err := http.ParseTime(in.Get("Date")); err == nil {
		h.Set("Date", t.UTC().Format(http.TimeFormat))
	}
	return h
}

// route reads the request's key header from body and chooses the node:
// for OHTTP and chunked OHTTP, the first node (in the relay's order) whose
// current key configurations hold the header's key id and KEM; for a
// multi-candidate request, one at random among the nodes that hold a
// candidate's key hash. With only, the node must be that one. It returns
// the bytes it read.
func (r *Relay) route(kind string, body io.Reader, only string) ([]byte, *nodeState, *routeErr) {
	s := r.snap.Load()
	var buf []byte
	if kind == "multi" {
		buf = make([]byte, wire.MaxMultiHeader)
	} else {
		buf = make([]byte, 7)
	}
	n, err := io.ReadFull(body, buf)
	buf = buf[:n]
	if errors.Is(err, errTooLarge) {
		return nil, nil, tooLarge(r.cfg.MaxRequest)
	}
	if err != nil && !(kind == "multi" && errors.Is(err, io.ErrUnexpectedEOF)) {
		return nil, nil, &routeErr{http.StatusBadRequest, "malformed", "the request ended before its key header (7 bytes for OHTTP)"}
	}
	if kind == "multi" {
		hashes, err := wire.MultiCandidates(buf)
		if err != nil {
			return nil, nil, &routeErr{http.StatusBadRequest, "malformed", "the multi-candidate request's header: " + err.Error()}
		}
		var nodes []*nodeState
		for _, h := range hashes {
			if st := s.byHash[h]; st != nil && (only == "" || st.id == only) && !contains(nodes, st) {
				nodes = append(nodes, st)
			}
		}
		if len(nodes) == 0 {
			return nil, nil, &routeErr{http.StatusNotFound, "no_node", fmt.Sprintf("none of the request's %d candidate keys is held by a node of this relay: fetch the directory again", len(hashes))}
		}
		return buf, nodes[rand.IntN(len(nodes))], nil
	}
	h, _, err := wire.ParseHeader(buf)
	if err == nil {
		for _, st := range s.byKey[keyRef{h.KeyID, h.KEM}] {
			if only == "" || st.id == only {
				return buf, st, nil
			}
		}
	}
	who := "no node of this relay holds"
	if only != "" {
		who = "node " + only + " does not hold"
	}
	return nil, nil, &routeErr{http.StatusNotFound, "no_node", fmt.Sprintf("%s key id %d with KEM 0x%04x: fetch the directory again", who, h.KeyID, h.KEM)}
}

func contains(nodes []*nodeState, st *nodeState) bool {
	for _, n := range nodes {
		if n == st {
			return true
		}
	}
	return false
}

// countingBody counts and bounds what is read of a request body, and
// notes each read for the idle timeout.
type countingBody struct {
	r        io.Reader
	n        atomic.Int64
	max      int64
	tooLarge atomic.Bool
	eof      atomic.Bool
	touch    func()
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.n.Add(int64(n)) > b.max {
		b.tooLarge.Store(true)
		return 0, errTooLarge
	}
	if err == io.EOF {
		b.eof.Store(true)
	}
	if (n > 0 || err == io.EOF) && b.touch != nil {
		b.touch()
	}
	return n, err
}

// addrRE matches IPv4 and bracketed IPv6 addresses, with or without a
// port.
var addrRE = regexp.MustCompile(`\[[0-9a-fA-F:.%]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`)

// ServerErrorLog returns an http.Server ErrorLog that writes to l at warn
// level with every IP address and port replaced by "[addr]": net/http
// names the client's address in some of its messages (TLS handshake
// errors, panics), and the relay logs no client address.
func ServerErrorLog(l *slog.Logger) *log.Logger {
	return log.New(redactWriter{l}, "", 0)
}

type redactWriter struct{ l *slog.Logger }

func (w redactWriter) Write(p []byte) (int, error) {
	w.l.Warn("http server", "detail", addrRE.ReplaceAllString(string(bytes.TrimSpace(p)), "[addr]"))
	return len(p), nil
}
