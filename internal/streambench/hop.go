package streambench

import (
	"net/http"
	"net/http/httputil"
	"net/url"
)

// Hop returns the baseline of a sworn hop: a plaintext
// httputil.ReverseProxy to the server at target, flushing every write, as
// the relay and the node would be without encryption. It serves full
// duplex, as the relay does: without it, net/http discards the request body
// at the first response write while the proxy's transport may still read
// it, and about one stream in a few hundred is cut (golang/go#40747).
func Hop(target string) (http.Handler, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}), nil
}
