package nvgpu

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"golang.org/x/crypto/ocsp"
)

// Default service locations.
const (
	DefaultRIMServiceURL = "https://rim.attestation.nvidia.com/v1/rim/"
	DefaultOCSPURL       = "http://ocsp.ndis.nvidia.com"
)

var rimIDRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)

// Fetcher gets RIMs and OCSP responses over the network, for when the
// network allows it; verification never needs it.
type Fetcher struct {
	// RIMServiceURL is the RIM service base ("…/v1/rim/").
	RIMServiceURL string
	// OCSPURL is used for certificates that name no OCSP server.
	OCSPURL string
	// Client is the HTTP client (http.DefaultClient when nil); give it a
	// timeout.
	Client *http.Client
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return http.DefaultClient
}

func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", what, limit)
	}
	return b, nil
}

// FetchRIM gets the RIM with the given id (NV_GPU_DRIVER_GH100_550.90.07)
// from the RIM service, and checks that it parses. It returns the XML.
func (f *Fetcher) FetchRIM(ctx context.Context, id string) ([]byte, error) {
	if !rimIDRE.MatchString(id) {
		return nil, fmt.Errorf("RIM id %q is not valid (letters, digits, _ . - only)", id)
	}
	base := f.RIMServiceURL
	if base == "" {
		base = DefaultRIMServiceURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+id, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching RIM %s: %v", id, err)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, 2*MaxRIMSize, "RIM service response")
	if err != nil {
		return nil, fmt.Errorf("fetching RIM %s: %v", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching RIM %s: HTTP %s", id, resp.Status)
	}
	var j struct {
		ID  string `json:"id"`
		RIM string `json:"rim"`
	}
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, fmt.Errorf("RIM service answer for %s is not JSON: %v", id, err)
	}
	if j.ID != id {
		return nil, fmt.Errorf("RIM service answered id %q for %q", j.ID, id)
	}
	x, err := base64.StdEncoding.DecodeString(j.RIM)
	if err != nil {
		return nil, fmt.Errorf("RIM service answer for %s: field rim is not base64: %v", id, err)
	}
	return DecodeRIMInput(x)
}

// DecodeRIMInput accepts a RIM as XML or as the RIM service's JSON answer
// ({"id": …, "rim": base64 XML}), and returns the XML, checked to parse.
func DecodeRIMInput(data []byte) ([]byte, error) {
	if len(data) > 2*MaxRIMSize {
		return nil, fmt.Errorf("RIM input is %d bytes; the limit is %d", len(data), 2*MaxRIMSize)
	}
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] == '{' {
		var j struct {
			RIM string `json:"rim"`
		}
		if err := json.Unmarshal(t, &j); err != nil {
			return nil, fmt.Errorf("RIM JSON: %v", err)
		}
		x, err := base64.StdEncoding.DecodeString(j.RIM)
		if err != nil {
			return nil, fmt.Errorf("RIM JSON: field rim is not base64: %v", err)
		}
		data = x
	}
	if _, err := ParseRIM(data); err != nil {
		return nil, err
	}
	return data, nil
}

// FetchOCSP asks the certificate's OCSP responder (or f.OCSPURL) for the
// status of cert, issued by issuer, and returns the DER response. The
// response is checked when it is verified, not here.
func (f *Fetcher) FetchOCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error) {
	url := f.OCSPURL
	if len(cert.OCSPServer) > 0 {
		url = cert.OCSPServer[0]
	}
	if url == "" {
		url = DefaultOCSPURL
	}
	reqDER, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA384})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("OCSP for %q: %v", cert.Subject.CommonName, err)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, MaxOCSPSize, "OCSP response")
	if err != nil {
		return nil, fmt.Errorf("OCSP for %q: %v", cert.Subject.CommonName, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OCSP for %q: HTTP %s", cert.Subject.CommonName, resp.Status)
	}
	return body, nil
}

// Staple fetches OCSP responses for the device chain (all but leaf and
// root) and for the RIM chains (all but root) of ev, and adds them.
func (f *Fetcher) Staple(ctx context.Context, ev *Evidence) error {
	certs, err := ParseDERChain(ev.Certs)
	if err != nil {
		return err
	}
	var pairs [][2]*x509.Certificate
	for i := 1; i+1 < len(certs); i++ {
		pairs = append(pairs, [2]*x509.Certificate{certs[i], certs[i+1]})
	}
	for _, doc := range ev.RIMs {
		r, err := ParseRIM(doc)
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(r.Certs); i++ {
			pairs = append(pairs, [2]*x509.Certificate{r.Certs[i], r.Certs[i+1]})
		}
	}
	seen := map[string]bool{}
	for _, p := range pairs {
		if seen[string(p[0].Raw)] {
			continue
		}
		seen[string(p[0].Raw)] = true
		der, err := f.FetchOCSP(ctx, p[0], p[1])
		if err != nil {
			return err
		}
		if len(ev.OCSP) == MaxOCSPResponses {
			return fmt.Errorf("more than %d OCSP responses", MaxOCSPResponses)
		}
		ev.OCSP = append(ev.OCSP, der)
	}
	return nil
}
