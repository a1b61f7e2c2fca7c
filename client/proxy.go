package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Proxy is an OpenAI-compatible HTTP server for the user's own machine:
// every request goes, encrypted, to a node the user's machine verified,
// and every answer's receipt is verified (and kept) before its last byte
// is passed on. Answers carry Sworn-Node (the node's release and launch
// measurement) and Sworn-Receipt (the receipt id): headers for whole
// answers, trailers for streamed ones (the answering node is known once its
// receipt verified).
type Proxy struct {
	Transport *Transport
	// Logger gets one line per request: method, path, status, receipt id.
	// Never a prompt or an answer.
	Logger *slog.Logger
	// Token, when set, is the bearer token every request must carry (for a
	// proxy listening beyond loopback).
	Token string
}

var proxyPaths = map[string]string{
	"/v1/chat/completions": http.MethodPost, "/v1/completions": http.MethodPost,
	"/v1/embeddings": http.MethodPost, "/v1/models": http.MethodGet,
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.Token != "" && r.Header.Get("Authorization") != "Bearer "+p.Token {
		proxyError(w, http.StatusUnauthorized, "this sworn proxy needs its bearer token")
		return
	}
	method, ok := proxyPaths[r.URL.Path]
	if !ok {
		proxyError(w, http.StatusNotFound, "sworn proxy serves /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models")
		return
	}
	if r.Method != method {
		proxyError(w, http.StatusMethodNotAllowed, "use "+method+" for "+r.URL.Path)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	if err != nil {
		proxyError(w, http.StatusRequestEntityTooLarge, "the request body is larger than 16 MiB")
		return
	}
	var opts struct {
		Stream bool `json:"stream"`
	}
	json.Unmarshal(body, &opts)
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, "https://node"+r.URL.Path, bytes.NewReader(body))
	if ct := r.Header.Get("Content-Type"); ct != "" {
		out.Header.Set("Content-Type", ct)
	}
	if a := r.Header.Get("Accept"); a != "" {
		out.Header.Set("Accept", a)
	}
	resp, err := p.Transport.RoundTrip(out)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, ErrNoVerifiedNode) {
			status = http.StatusServiceUnavailable
		}
		p.log(r, status, "")
		proxyError(w, status, err.Error())
		return
	}
	defer resp.Body.Close()
	if !opts.Stream {
		content, err := io.ReadAll(resp.Body)
		if err != nil {
			p.log(r, http.StatusBadGateway, "")
			proxyError(w, http.StatusBadGateway, err.Error())
			return
		}
		copyHeader(w.Header(), resp.Header)
		w.Header().Set("Sworn-Node", resp.Trailer.Get("Sworn-Node"))
		w.Header().Set("Sworn-Receipt", resp.Trailer.Get("Sworn-Receipt"))
		w.WriteHeader(resp.StatusCode)
		w.Write(content)
		p.log(r, resp.StatusCode, resp.Trailer.Get("Sworn-Receipt"))
		return
	}
	copyHeader(w.Header(), resp.Header)
	w.Header().Set("Trailer", "Sworn-Receipt, Sworn-Node")
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
			rc.Flush()
		}
		if err == io.EOF {
			w.Header().Set("Sworn-Receipt", resp.Trailer.Get("Sworn-Receipt"))
			w.Header().Set("Sworn-Node", resp.Trailer.Get("Sworn-Node"))
			p.log(r, resp.StatusCode, resp.Trailer.Get("Sworn-Receipt"))
			return
		}
		if err != nil {
			// An SSE error event: the stream did not end cleanly, and the
			// client's SDK sees an error, never a clean end.
			msg, _ := json.Marshal(map[string]any{"error": map[string]any{"message": "sworn: " + err.Error(), "type": "sworn_error"}})
			io.WriteString(w, "\nevent: error\ndata: "+string(msg)+"\n\n")
			rc.Flush()
			p.log(r, http.StatusBadGateway, "")
			return
		}
	}
}

func (p *Proxy) log(r *http.Request, status int, receiptID string) {
	if p.Logger != nil {
		p.Logger.Info("proxied", "method", r.Method, "path", r.URL.Path, "status", status, "receipt", receiptID)
	}
}

func copyHeader(dst, src http.Header) {
	for _, k := range []string{"Content-Type"} {
		if v := src.Get(k); v != "" {
			dst.Set(k, v)
		}
	}
	dst.Set("Cache-Control", "no-store")
}

func proxyError(w http.ResponseWriter, status int, msg string) {
	typ := "invalid_request_error"
	if status >= 500 {
		typ = "server_error"
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": strings.TrimSpace(msg), "type": typ, "param": nil, "code": nil}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
