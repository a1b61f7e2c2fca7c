package echo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults for the zero fields of [Options].
const (
	// DefaultModel is the model name the engine serves when Options.Model is empty.
	DefaultModel = "echo"
	// DefaultMaxBody is the largest request body accepted when Options.MaxBody is 0.
	DefaultMaxBody = 1 << 20
	// DefaultMaxTokens is the most tokens an answer has when Options.MaxTokens is 0.
	DefaultMaxTokens = 4096
)

// Options configure the engine built by [New]. The zero value serves model
// "echo" as fast as possible with the defaults above.
type Options struct {
	// Model is the one model listed by GET /v1/models; DefaultModel if empty.
	// Completion requests may name any model (it is echoed in the answer);
	// one that names none is answered as Model.
	Model string

	// Now is the clock for the "created" fields; time.Now if nil.
	Now func() time.Time

	// TokensPerSecond paces streamed answers: the k-th content token is sent
	// k/TokensPerSecond after the stream starts, so N tokens take about
	// N/TokensPerSecond. 0 (or less) streams as fast as possible. A client that
	// goes away ends the stream at once.
	TokensPerSecond float64

	// MaxBody bounds a request body in bytes; a larger body is answered 413.
	// DefaultMaxBody if 0 or less.
	MaxBody int64

	// MaxTokens bounds every answer in tokens, whatever the request asks; a cut
	// answer has finish_reason "length". DefaultMaxTokens if 0 or less.
	MaxTokens int

	// FailAfterTokens, if above 0, makes every streamed answer abort its
	// connection (panic(http.ErrAbortHandler)) after sending that many content
	// tokens, or after its last token if it has fewer, so that no finish_reason
	// or [DONE] is ever sent: it simulates an engine that dies mid-stream.
	// Unstreamed answers are not affected.
	FailAfterTokens int

	// Logger, if set, gets one Info line per request with its method, path,
	// status and duration, and never anything of its contents. Nil logs nothing.
	Logger *slog.Logger
}

// engine is the http.Handler New returns.
type engine struct {
	opts Options
}

// New returns the echo engine as an http.Handler; see the package doc for
// what it serves.
func New(opts Options) http.Handler {
	if opts.Model == "" {
		opts.Model = DefaultModel
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokensPerSecond < 0 {
		opts.TokensPerSecond = 0
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = DefaultMaxTokens
	}
	return &engine{opts: opts}
}

// ServeHTTP routes a request to its endpoint.
func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.opts.Logger != nil {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			// Logged on an abort too (then re-panicked by net/http's recover).
			e.opts.Logger.Info("echo engine", "method", r.Method, "path", r.URL.Path,
				"status", sw.code(), "duration", time.Since(start))
		}()
		w = sw
	}
	e.route(w, r)
}

func (e *engine) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	var method string
	var serve func(http.ResponseWriter, *http.Request)
	switch {
	case path == "/v1/chat/completions":
		method, serve = http.MethodPost, e.withBody(e.chat)
	case path == "/v1/completions":
		method, serve = http.MethodPost, e.withBody(e.completion)
	case path == "/v1/embeddings":
		method, serve = http.MethodPost, e.withBody(e.embeddings)
	case path == "/v1/models":
		method, serve = http.MethodGet, e.models
	case strings.HasPrefix(path, "/v1/models/") && len(path) > len("/v1/models/"):
		method, serve = http.MethodGet, e.model
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, path), "", "unknown_url")
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed,
			fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, path, method), "", "method_not_allowed")
		return
	}
	serve(w, r)
}

// withBody reads the whole request body, at most MaxBody bytes, and passes it on.
func (e *engine) withBody(serve func(http.ResponseWriter, *http.Request, []byte)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, e.opts.MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge,
					fmt.Sprintf("request body is over %d bytes; send a smaller request", e.opts.MaxBody), "", "request_too_large")
				return
			}
			writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error(), "", "invalid_body")
			return
		}
		serve(w, r, body)
	}
}

// apiError is a client error in OpenAI's shape, with the status it is sent with.
type apiError struct {
	status  int
	message string
	param   string
	code    string
}

func (a *apiError) Error() string { return a.message }

// badRequest is a 400 about param.
func badRequest(param, code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf(format, args...), param: param, code: code}
}

// errorBody is OpenAI's error object; param and code are null when empty.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, message, param, code string) {
	var b errorBody
	b.Error.Message = message
	b.Error.Type = "invalid_request_error"
	if param != "" {
		b.Error.Param = &param
	}
	if code != "" {
		b.Error.Code = &code
	}
	writeJSON(w, status, b)
}

func writeAPIError(w http.ResponseWriter, a *apiError) {
	writeError(w, a.status, a.message, a.param, a.code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil { // only our own types are marshalled; this is a bug
		panic(fmt.Sprintf("echo: marshalling %T: %v", v, err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// requestID is prefix followed by the first 12 hex digits of SHA-256(body).
func requestID(prefix string, body []byte) string {
	sum := sha256.Sum256(body)
	return prefix + hex.EncodeToString(sum[:6])
}

// statusWriter remembers the status for the log line; Unwrap lets
// http.ResponseController reach the Flusher underneath.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
