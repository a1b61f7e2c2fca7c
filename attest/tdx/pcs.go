package tdx

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Where Intel publishes DCAP collateral. A PCCS serves the same API under
// its own base URL, the root CA CRL included.
const (
	IntelPCS       = "https://api.trustedservices.intel.com"
	IntelRootCRL   = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
	pcsTimeout     = 30 * time.Second
	maxPCSResponse = MaxCRLSize
)

// PCS fetches the DCAP collateral of a quote from Intel PCS or a PCCS.
type PCS struct {
	// Base is the API's base URL: IntelPCS, or a PCCS's.
	Base string
	// RootCRL is the URL of Intel's root CA CRL; empty: Base's
	// /sgx/certification/v4/rootcacrl (a PCCS), or IntelRootCRL when Base
	// is IntelPCS.
	RootCRL string
	// HTTP is the client (nil: one with a 30 s timeout).
	HTTP *http.Client
}

// Fetch gets the collateral for quote: the TCB info of its PCK
// certificate's FMSPC, the TD Quoting Enclave's identity, the CRL of the
// PCK's issuing CA and the root CA's CRL, each with the issuer chain PCS
// sends, assembled as [CollateralFromPCS] does and checked to parse.
// Nothing is verified here: the appraisal verifies it, offline, from the
// bundle.
func (p *PCS) Fetch(ctx context.Context, quote []byte) ([]byte, error) {
	a, err := Parse(&Evidence{Quote: quote})
	if err != nil {
		return nil, err
	}
	ext, err := pckExtensions(a.PCK[0])
	if err != nil {
		return nil, fmt.Errorf("the quote's PCK certificate: %v", err)
	}
	ca, err := pckCA(a.PCK)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(p.Base, "/")
	if base == "" {
		base = IntelPCS
	}
	root := p.RootCRL
	switch {
	case root != "":
	case base == IntelPCS:
		root = IntelRootCRL
	default:
		root = base + "/sgx/certification/v4/rootcacrl"
	}
	var r PCSResponses
	if r.TCBInfo, r.TCBInfoIssuerChain, err = p.get(ctx, base+"/tdx/certification/v4/tcb?fmspc="+strings.ToLower(ext.FMSPC), "TCB-Info-Issuer-Chain"); err != nil {
		return nil, err
	}
	if r.QEIdentity, r.QEIdentityIssuerChain, err = p.get(ctx, base+"/tdx/certification/v4/qe/identity", "SGX-Enclave-Identity-Issuer-Chain"); err != nil {
		return nil, err
	}
	if r.PCKCRL, r.PCKCRLIssuerChain, err = p.get(ctx, base+"/sgx/certification/v4/pckcrl?ca="+ca+"&encoding=der", "SGX-PCK-CRL-Issuer-Chain"); err != nil {
		return nil, err
	}
	if r.RootCACRL, _, err = p.get(ctx, root, ""); err != nil {
		return nil, err
	}
	c, err := CollateralFromPCS(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", base, err)
	}
	b, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := ParseCollateral(b); err != nil {
		return nil, fmt.Errorf("the collateral from %s does not parse: %v", base, err)
	}
	return b, nil
}

// pckCA names the PCK's issuing CA as PCS's ca= parameter does.
func pckCA(chain []*x509.Certificate) (string, error) {
	if len(chain) < 2 {
		return "", errors.New("the quote carries no PCK issuer certificate")
	}
	switch cn := chain[1].Subject.CommonName; {
	case strings.Contains(cn, "Platform"):
		return "platform", nil
	case strings.Contains(cn, "Processor"):
		return "processor", nil
	default:
		return "", fmt.Errorf("the PCK's issuer %q is neither Intel's Platform nor its Processor CA", cn)
	}
}

// get fetches u, bounded, and the URL-encoded issuer chain in header.
func (p *PCS) get(ctx context.Context, u, header string) (body, chain []byte, err error) {
	hc := p.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: pcsTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("Intel PCS: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("Intel PCS: GET %s: %s", u, resp.Status)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxPCSResponse+1))
	if err != nil {
		return nil, nil, fmt.Errorf("Intel PCS: GET %s: %v", u, err)
	}
	if len(body) > maxPCSResponse {
		return nil, nil, fmt.Errorf("Intel PCS: GET %s: the answer is over %d bytes", u, maxPCSResponse)
	}
	if header == "" {
		return body, nil, nil
	}
	h := resp.Header.Get(header)
	if h == "" {
		return nil, nil, fmt.Errorf("Intel PCS: GET %s: no %s header", u, header)
	}
	pem, err := url.QueryUnescape(h)
	if err != nil {
		return nil, nil, fmt.Errorf("Intel PCS: GET %s: header %s: %v", u, header, err)
	}
	return body, []byte(pem), nil
}
