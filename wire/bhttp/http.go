package bhttp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// FromHTTPRequest converts r: scheme from r.URL (else "https" with TLS,
// "http" without), authority from r.Host (else r.URL.Host), path and query
// from r.URL.RequestURI(). The Host field and connection-specific fields
// (RFC 9110 §7.6.1) are left out, header names are sorted. It reads r.Body
// to its end, refusing more than DefaultLimits().MaxContent bytes, closes
// it, and then takes r.Trailer. The result is known-length.
func FromHTTPRequest(r *http.Request) (*Request, error) {
	req := &Request{Method: r.Method, Scheme: r.URL.Scheme, Authority: r.Host, Path: r.URL.RequestURI()}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	if req.Scheme == "" {
		req.Scheme = "http"
		if r.TLS != nil {
			req.Scheme = "https"
		}
	}
	if req.Authority == "" {
		req.Authority = r.URL.Host
	}
	var err error
	if req.Content, err = readBody(r.Body); err != nil {
		return nil, fmt.Errorf("bhttp: request body: %w", err)
	}
	h := make(http.Header, len(r.Header))
	for k, v := range r.Header {
		if http.CanonicalHeaderKey(k) != "Host" {
			h[k] = v
		}
	}
	req.Header = withoutHopByHop(FromHeader(h))
	req.Trailer = withoutHopByHop(FromHeader(r.Trailer))
	if err := validRequestControl(req.Method, req.Scheme, req.Authority, req.Path); err != nil {
		return nil, fmt.Errorf("bhttp: request: %w", err)
	}
	if err := req.Header.Validate(); err != nil {
		return nil, fmt.Errorf("bhttp: request header: %w", err)
	}
	if err := req.Trailer.Validate(); err != nil {
		return nil, fmt.Errorf("bhttp: request trailer: %w", err)
	}
	return req, nil
}

// HTTPRequest returns r as an outgoing (client) request for
// scheme://authority/path, its Host the authority or, if that is empty, the
// Host field. With trailer fields, ContentLength is -1 so that net/http
// sends them (chunked).
func (r *Request) HTTPRequest() (*http.Request, error) {
	if err := validRequestControl(r.Method, r.Scheme, r.Authority, r.Path); err != nil {
		return nil, fmt.Errorf("bhttp: request: %w", err)
	}
	path := r.Path
	if path == "" {
		path = "/"
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, fmt.Errorf("bhttp: request path %q: %w", clip(r.Path), err)
	}
	host := r.Authority
	if host == "" {
		host = r.Header.Get("host")
	}
	if r.Scheme == "" || host == "" {
		return nil, fmt.Errorf("bhttp: request has no scheme or no authority (and no Host field); want both to make a URL")
	}
	u.Scheme, u.Host = r.Scheme, host
	hr, err := http.NewRequest(r.Method, u.String(), bytes.NewReader(r.Content))
	if err != nil {
		return nil, fmt.Errorf("bhttp: request: %w", err)
	}
	hr.Host = host
	if hr.Header = r.Header.Header(); hr.Header == nil {
		hr.Header = http.Header{}
	}
	hr.Header.Del("Host")
	if len(r.Content) == 0 {
		hr.Body, hr.GetBody = http.NoBody, nil
	}
	if len(r.Trailer) > 0 {
		hr.Trailer = r.Trailer.Header()
		hr.ContentLength = -1
	}
	return hr, nil
}

// FromHTTPResponse converts r (a final response, 200 to 599), leaving out
// connection-specific fields. It reads r.Body to its end, refusing more
// than DefaultLimits().MaxContent bytes, closes it, and then takes
// r.Trailer. The result is known-length and has no informational
// responses.
func FromHTTPResponse(r *http.Response) (*Response, error) {
	if r.StatusCode < 200 || r.StatusCode > 599 {
		return nil, fmt.Errorf("bhttp: response status %d; want a final status, 200 to 599", r.StatusCode)
	}
	resp := &Response{Status: r.StatusCode, Header: withoutHopByHop(FromHeader(r.Header))}
	var err error
	if resp.Content, err = readBody(r.Body); err != nil {
		return nil, fmt.Errorf("bhttp: response body: %w", err)
	}
	resp.Trailer = withoutHopByHop(FromHeader(r.Trailer))
	if err := resp.Header.Validate(); err != nil {
		return nil, fmt.Errorf("bhttp: response header: %w", err)
	}
	if err := resp.Trailer.Validate(); err != nil {
		return nil, fmt.Errorf("bhttp: response trailer: %w", err)
	}
	return resp, nil
}

// HTTPResponse returns r as an http.Response (HTTP/1.1, its body the
// content, its Trailer the trailer section). Informational responses are
// not carried: net/http has no place for them in a Response.
func (r *Response) HTTPResponse() *http.Response {
	h := r.Header.Header()
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{
		Status:        strconv.Itoa(r.Status) + " " + http.StatusText(r.Status),
		StatusCode:    r.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(r.Content)),
		ContentLength: int64(len(r.Content)),
		Trailer:       r.Trailer.Header(),
	}
}

// readBody reads and closes body (which may be nil), refusing more than
// DefaultLimits().MaxContent bytes.
func readBody(body io.ReadCloser) ([]byte, error) {
	if body == nil || body == http.NoBody {
		return nil, nil
	}
	defer body.Close()
	max := DefaultLimits().MaxContent
	b, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes (Limits.MaxContent)", ErrLimit, max)
	}
	if len(b) == 0 {
		b = nil
	}
	return b, nil
}
