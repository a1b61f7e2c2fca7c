package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/wire"
	"github.com/sworn-dev/sworn/wire/bhttp"
)

// AllowedPaths are the engine API paths a request may name; any other is
// an encrypted 404.
var AllowedPaths = []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"}

// MaxResponse bounds an engine answer that is not streamed.
const MaxResponse = 16 << 20

// forwardedHeaders are the request header fields passed to the engine;
// every other field (cookies, authorization, user agents, forwarding and
// hop-by-hop fields) is dropped.
var forwardedHeaders = []string{"content-type", "accept"}

// exchange is one request being served.
type exchange struct {
	id       string // request id, for logs
	kind     string // ohttp, chunked, multi
	start    time.Time
	epoch    *epoch
	suite    receipt.Suite
	request  []byte // the BHTTP request as decrypted
	req      *bhttp.Request
	model    [32]byte
	response chunkSink // where the sealed answer goes
}

// chunkSink receives the BHTTP answer; for chunked kinds each Write is one
// sealed chunk, and Final sends the final chunk.
type chunkSink interface {
	io.Writer
	Final(p []byte) error
}

// handleOHTTP serves POST /sworn/v1/ohttp.
func (n *Node) handleOHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{id: requestID(), start: n.cfg.Now()}
	log := n.log.With("req", ex.id)
	if ok, why := n.Ready(); !ok {
		n.metrics.requests.WithLabelValues("any", "not_ready").Inc()
		plainError(w, http.StatusServiceUnavailable, "the node is not serving: "+why)
		return
	}
	select {
	case n.streams <- struct{}{}:
		defer func() { <-n.streams }()
	default:
		n.metrics.requests.WithLabelValues("any", "busy").Inc()
		plainError(w, http.StatusServiceUnavailable, "the node is serving as many requests as it may; try again")
		return
	}
	n.metrics.streams.Inc()
	defer n.metrics.streams.Dec()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, n.cfg.MaxRequest)
	_, keys := n.keys()
	var err error
	switch mt {
	case wire.MediaTypeRequest:
		ex.kind = "ohttp"
		err = n.plainRequest(w, r, ex, keys)
	case wire.MediaTypeChunkedReq:
		ex.kind = "chunked"
		err = n.chunkedRequest(w, r, ex, keys)
	case wire.MediaTypeMultiReq:
		ex.kind = "multi"
		err = n.multiRequest(w, r, ex, keys)
	default:
		n.metrics.requests.WithLabelValues("unknown", "bad_media_type").Inc()
		plainError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("the body must be %s, %s or %s", wire.MediaTypeRequest, wire.MediaTypeChunkedReq, wire.MediaTypeMultiReq))
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = outcomeOf(err)
		var pe *plainErr
		if errors.As(err, &pe) {
			plainError(w, pe.status, pe.msg)
		}
		log.Info("request refused", "kind", ex.kind, "outcome", outcome, "status", statusOf(err))
	} else {
		log.Info("request served", "kind", ex.kind, "took", n.cfg.Now().Sub(ex.start).String())
	}
	n.metrics.requests.WithLabelValues(ex.kind, outcome).Inc()
}

// plainErr is an error answered before decryption: a plain status and a
// cause with no detail of the request.
type plainErr struct {
	status  int
	outcome string // the metrics label
	msg     string
}

func (e *plainErr) Error() string { return e.msg }

// decryptError maps a wire error to the plain answer before decryption.
func decryptError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &plainErr{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the request is larger than %d bytes", mbe.Limit)}
	case errors.Is(err, wire.ErrUnknownKey):
		return &plainErr{http.StatusUnprocessableEntity, "unknown_key", "the request is encrypted to a key this node does not hold (another node's, or an expired epoch's): fetch the node's current keys"}
	case errors.Is(err, wire.ErrSuite):
		return &plainErr{http.StatusUnprocessableEntity, "suite", "the request's symmetric suite is not offered by the key"}
	case errors.Is(err, wire.ErrReplay):
		return &plainErr{http.StatusBadRequest, "replay", "the request was already received: a replay"}
	case errors.Is(err, wire.ErrReplayFull):
		return &plainErr{http.StatusServiceUnavailable, "busy", wire.ErrReplayFull.Error()}
	}
	return &plainErr{http.StatusBadRequest, "bad_request", "the request does not decrypt or is malformed"}
}

func outcomeOf(err error) string {
	var pe *plainErr
	if errors.As(err, &pe) {
		return pe.outcome
	}
	var ee *engineErr
	if errors.As(err, &ee) {
		return "engine_error"
	}
	return "error"
}

func statusOf(err error) int {
	var pe *plainErr
	if errors.As(err, &pe) {
		return pe.status
	}
	var ee *engineErr
	if errors.As(err, &ee) {
		return ee.status
	}
	return 0
}

func plainError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// checkFresh refuses a replay (by the request's replay id) and a request
// dated outside the window (its inner Date, else the outer one).
func (n *Node) checkFresh(r *http.Request, ex *exchange, replayID []byte) error {
	now := n.cfg.Now()
	date := ex.req.Header.Get("date")
	if date == "" {
		date = r.Header.Get("Date")
	}
	if err := n.replay.CheckDate(date, now); err != nil {
		return &plainErr{http.StatusBadRequest, "date", err.Error()}
	}
	if err := n.replay.Check(replayID, now); err != nil {
		return decryptError(err)
	}
	return nil
}

func (n *Node) plainRequest(w http.ResponseWriter, r *http.Request, ex *exchange, keys []*wire.PrivateKey) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return decryptError(err)
	}
	pt, g, err := wire.DecapsulateRequest(keys, body)
	if err != nil {
		return decryptError(err)
	}
	if err := n.open(ex, pt, g.Key, g.Header.KEM, g.Header.Suite, 1); err != nil {
		return err
	}
	if err := n.checkFresh(r, ex, g.Enc()); err != nil {
		return err
	}
	sink := &bufferSink{}
	ex.response = sink
	n.serve(r.Context(), ex, false)
	sealed, err := g.SealResponse(sink.buf.Bytes())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", wire.MediaTypeResponse)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(sealed)
	n.metrics.latency.WithLabelValues(ex.kind).Observe(n.cfg.Now().Sub(ex.start).Seconds())
	return nil
}

func (n *Node) chunkedRequest(w http.ResponseWriter, r *http.Request, ex *exchange, keys []*wire.PrivateKey) error {
	cr, err := wire.OpenChunkedRequest(keys, r.Body)
	if err != nil {
		return decryptError(err)
	}
	pt, err := io.ReadAll(io.LimitReader(cr, n.cfg.MaxRequest+1))
	if err != nil {
		return decryptError(err)
	}
	if int64(len(pt)) > n.cfg.MaxRequest {
		return decryptError(&http.MaxBytesError{Limit: n.cfg.MaxRequest})
	}
	if err := n.open(ex, pt, cr.Key, cr.Header.KEM, cr.Header.Suite, 1); err != nil {
		return err
	}
	if err := n.checkFresh(r, ex, cr.Enc()); err != nil {
		return err
	}
	return n.stream(w, r, ex, wire.MediaTypeChunkedRes, func(fw io.Writer) (*wire.ChunkedResponseWriter, error) { return cr.NewResponseWriter(fw) })
}

func (n *Node) multiRequest(w http.ResponseWriter, r *http.Request, ex *exchange, keys []*wire.PrivateKey) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return decryptError(err)
	}
	pt, g, err := wire.OpenMulti(keys, body)
	if err != nil {
		return decryptError(err)
	}
	if err := n.open(ex, pt, g.Key, g.KEM, g.Suite, g.Candidates); err != nil {
		return err
	}
	if err := n.checkFresh(r, ex, g.ReplayID()); err != nil {
		return err
	}
	return n.stream(w, r, ex, wire.MediaTypeMultiRes, g.NewResponseWriter)
}

// open records the decrypted request and parses its BHTTP.
func (n *Node) open(ex *exchange, pt []byte, key *wire.PrivateKey, kem uint16, s wire.Suite, candidates int) error {
	ex.request, ex.epoch = pt, n.epochOf(key)
	ex.suite = receipt.Suite{KEM: kem, KDF: s.KDF, AEAD: s.AEAD, Candidates: uint16(candidates)}
	req, err := bhttp.DecodeRequest(pt, &bhttp.Options{Strict: true})
	if err != nil {
		return &plainErr{http.StatusBadRequest, "bad_request", "the decrypted request is not a complete binary HTTP request"}
	}
	ex.req = req
	return nil
}

// stream answers a chunked or multi-candidate request: the BHTTP answer
// is indeterminate-length, each engine write sealed and flushed as one
// chunk, the receipt in the trailer of the final chunk.
func (n *Node) stream(w http.ResponseWriter, r *http.Request, ex *exchange, mediaType string, open func(io.Writer) (*wire.ChunkedResponseWriter, error)) error {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Incremental", "?1")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	fw := &flushWriter{w: w, rc: rc, idle: n.cfg.StreamIdle}
	cw, err := open(fw)
	if err != nil {
		return err
	}
	ex.response = &chunkedSink{cw: cw, n: n}
	n.serve(r.Context(), ex, true)
	return nil
}

// flushWriter writes each sealed chunk at once, with a deadline, so that a
// client that stops reading is cut off.
type flushWriter struct {
	w    io.Writer
	rc   *http.ResponseController
	idle time.Duration
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.rc.SetWriteDeadline(time.Now().Add(f.idle))
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

type chunkedSink struct {
	cw *wire.ChunkedResponseWriter
	n  *Node
}

func (c *chunkedSink) Write(p []byte) (int, error) {
	c.n.metrics.chunks.Inc()
	return c.cw.Write(p)
}

func (c *chunkedSink) Final(p []byte) error {
	c.n.metrics.chunks.Inc()
	return c.cw.CloseWith(p)
}

type bufferSink struct{ buf bytes.Buffer }

func (b *bufferSink) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferSink) Final(p []byte) error        { _, err := b.buf.Write(p); return err }

// finalWriter passes writes to a sink, and sends the write made while
// final is set (the BHTTP trailer) as the final chunk.
type finalWriter struct {
	sink  chunkSink
	final bool
}

func (f *finalWriter) Write(p []byte) (int, error) {
	if f.final {
		return len(p), f.sink.Final(p)
	}
	return f.sink.Write(p)
}

// engineErr is an error answered inside the encryption.
type engineErr struct {
	status int
	msg    string
}

func (e *engineErr) Error() string { return e.msg }

// serve forwards the request to the engine and writes the BHTTP answer to
// ex.response: streamed (indeterminate-length) or whole (known-length).
// Every error after decryption is an encrypted answer with an
// OpenAI-style JSON error; an engine that fails mid-stream ends the answer
// without its final chunk, so the client sees a truncation.
func (n *Node) serve(ctx context.Context, ex *exchange, streamed bool) {
	status, header, body, cancel, err := n.forward(ctx, ex)
	if cancel != nil {
		defer cancel()
	}
	if err != nil {
		var ee *engineErr
		if !errors.As(err, &ee) {
			ee = &engineErr{http.StatusBadGateway, "engine unavailable"}
		}
		n.writeWhole(ex, ee.status, jsonHeader(), openAIError(ee.status, ee.msg), streamed)
		return
	}
	defer body.Close()
	if !streamed {
		content, err := io.ReadAll(io.LimitReader(body, MaxResponse+1))
		if err != nil || len(content) > MaxResponse {
			n.writeWhole(ex, http.StatusBadGateway, jsonHeader(), openAIError(http.StatusBadGateway, "the engine's answer failed or was too large"), false)
			return
		}
		n.writeWhole(ex, status, header, content, false)
		return
	}
	fw := &finalWriter{sink: ex.response}
	sw, err := bhttp.NewResponseWriter(fw, &bhttp.Response{Status: status, Header: header}, nil)
	if err != nil {
		return
	}
	hasher := receipt.NewResponseHasher(uint16(status))
	usage := &usageScanner{}
	buf := make([]byte, 16<<10)
	first := true
	idle := time.AfterFunc(n.cfg.StreamIdle, cancel)
	defer idle.Stop()
	for {
		k, rerr := body.Read(buf)
		if k > 0 {
			idle.Reset(n.cfg.StreamIdle)
			hasher.Write(buf[:k])
			usage.Write(buf[:k])
			if _, err := sw.Write(buf[:k]); err != nil {
				return // the client went away or stopped reading
			}
			if first {
				n.metrics.latency.WithLabelValues(ex.kind).Observe(n.cfg.Now().Sub(ex.start).Seconds())
				first = false
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// The engine died mid-stream: no final chunk, so the client
			// sees a truncated answer, never a shorter one that looks whole.
			n.log.Warn("engine stream failed", "req", ex.id)
			return
		}
	}
	fw.final = true
	sw.Finish(n.receiptTrailer(ex, status, hasher.Sum(), usage.tokens))
}

// writeWhole writes a complete answer: known-length BHTTP, or for a
// streamed kind an indeterminate-length one with the content as one chunk.
func (n *Node) writeWhole(ex *exchange, status int, header bhttp.Fields, content []byte, streamed bool) {
	var u usageScanner
	u.Write(content)
	trailer := n.receiptTrailer(ex, status, receipt.ResponseDigest(uint16(status), content), u.tokens)
	if !streamed {
		enc, err := (&bhttp.Response{Status: status, Header: header, Content: content, Trailer: trailer}).Encode()
		if err == nil {
			ex.response.Final(enc)
		}
		return
	}
	fw := &finalWriter{sink: ex.response}
	sw, err := bhttp.NewResponseWriter(fw, &bhttp.Response{Status: status, Header: header}, nil)
	if err != nil {
		return
	}
	sw.Write(content)
	fw.final = true
	sw.Finish(trailer)
}

// forward sends the request to the engine and returns its answer.
func (n *Node) forward(ctx context.Context, ex *exchange) (int, bhttp.Fields, io.ReadCloser, context.CancelFunc, error) {
	req := ex.req
	path, _, _ := strings.Cut(req.Path, "?")
	if !slices.Contains(AllowedPaths, path) {
		return 0, nil, nil, nil, &engineErr{http.StatusNotFound, fmt.Sprintf("the node serves only %s", strings.Join(AllowedPaths, ", "))}
	}
	if err := n.model(ex); err != nil {
		return 0, nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	u := *n.cfg.Engine
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), bytes.NewReader(req.Content))
	if err != nil {
		cancel()
		return 0, nil, nil, nil, &engineErr{http.StatusBadRequest, "the request's method is not valid"}
	}
	for _, f := range req.Header {
		if slices.Contains(forwardedHeaders, f.Name) {
			hr.Header.Add(f.Name, f.Value)
		}
	}
	hr.ContentLength = int64(len(req.Content))
	resp, err := n.engine.Do(hr)
	if err != nil {
		cancel()
		return 0, nil, nil, nil, &engineErr{http.StatusBadGateway, "engine unavailable"}
	}
	var h bhttp.Fields
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		h = bhttp.Fields{{Name: "content-type", Value: ct}}
	}
	return resp.StatusCode, h, resp.Body, cancel, nil
}

// model finds the digest of the model the request names, for the receipt;
// with models configured, a request for another model is an encrypted 404.
func (n *Node) model(ex *exchange) error {
	if len(n.cfg.Models) == 0 || ex.req.Method != http.MethodPost {
		return nil
	}
	var body struct {
		Model string `json:"model"`
	}
	json.Unmarshal(ex.req.Content, &body)
	d, ok := n.cfg.Models[body.Model]
	if !ok {
		return &engineErr{http.StatusNotFound, "the node does not serve the requested model"}
	}
	_, h, _ := strings.Cut(d, ":")
	b, err := hex.DecodeString(h)
	if err == nil && len(b) == 32 {
		ex.model = [32]byte(b)
	}
	return nil
}

// receiptTrailer signs the receipt of an answer and returns the trailer
// that carries it.
func (n *Node) receiptTrailer(ex *exchange, status int, respDigest [32]byte, tokens receipt.Tokens) bhttp.Fields {
	p := ex.epoch.named // the bundle, node key and release: the same for the epoch
	p.Version, p.Request, p.Response = receipt.Version, receipt.RequestDigest(ex.request), respDigest
	p.Model, p.Time, p.Tokens, p.Suite, p.Status = ex.model, n.cfg.Now().Unix(), tokens, ex.suite, uint16(status)
	sig, err := receipt.Sign(ex.epoch.receipt, &p)
	if err != nil {
		n.log.Error("receipt not signed", "req", ex.id, "err", err)
		return nil
	}
	return bhttp.Fields{{Name: receipt.Trailer, Value: base64.RawURLEncoding.EncodeToString(sig)}}
}

func jsonHeader() bhttp.Fields {
	return bhttp.Fields{{Name: "content-type", Value: "application/json"}}
}

// openAIError is an error body in the OpenAI API's shape.
func openAIError(status int, msg string) []byte {
	typ := "invalid_request_error"
	if status >= 500 {
		typ = "server_error"
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
	return b
}

// usageScanner finds the token counts an OpenAI-compatible answer reports:
// the "usage" object of a JSON answer, or of the last SSE event with one.
type usageScanner struct {
	line   []byte
	tokens receipt.Tokens
}

func (u *usageScanner) Write(p []byte) (int, error) {
	whole := len(p) > 0 && p[len(p)-1] == '}' // a whole JSON answer without a newline
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			u.keep(rest)
			break
		}
		if len(u.line) == 0 {
			u.parse(rest[:min(i, 1<<16)])
		} else {
			u.keep(rest[:i])
			u.parse(u.line)
			u.line = u.line[:0]
		}
		rest = rest[i+1:]
	}
	if whole {
		u.parse(u.line)
	}
	return len(p), nil
}

// keep adds p to the line so far, of which it keeps at most 64 KiB.
func (u *usageScanner) keep(p []byte) {
	u.line = append(u.line, p[:min(len(p), 1<<16-len(u.line))]...)
}

func (u *usageScanner) parse(line []byte) {
	line = bytes.TrimPrefix(bytes.TrimSpace(line), []byte("data:"))
	if !hasUsageObject(line) { // most events have none, or "usage":null
		return
	}
	var v struct {
		Usage *struct {
			Prompt     uint64 `json:"prompt_tokens"`
			Completion uint64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(bytes.TrimSpace(line), &v) == nil && v.Usage != nil {
		u.tokens = receipt.Tokens{Prompt: v.Usage.Prompt, Completion: v.Usage.Completion}
	}
}

// hasUsageObject reports whether line has a "usage" key whose value is an
// object: only then is it worth decoding.
func hasUsageObject(line []byte) bool {
	for {
		i := bytes.Index(line, []byte(`"usage"`))
		if i < 0 {
			return false
		}
		line = bytes.TrimLeft(line[i+len(`"usage"`):], " \t")
		if rest, ok := bytes.CutPrefix(line, []byte(":")); ok && bytes.HasPrefix(bytes.TrimLeft(rest, " \t"), []byte("{")) {
			return true
		}
	}
}

// requestID is a random id that names a request in logs, and nothing else.
func requestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
