package nvgpu

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sworn-dev/sworn/policy"
)

// OCSP limits.
const (
	// MaxOCSPResponses bounds the stapled responses of one GPU.
	MaxOCSPResponses = 32
	// MaxOCSPSize bounds one response.
	MaxOCSPSize = 16 << 10
	// ocspMaxAgeNoNext is how old a response without nextUpdate may be.
	ocspMaxAgeNoNext = 7 * 24 * time.Hour
	// ocspSkew tolerates a responder clock slightly ahead.
	ocspSkew = 5 * time.Minute
)

// OCSPStatus is the revocation status of one certificate.
type OCSPStatus struct {
	Cert *x509.Certificate
	// State is policy.OCSPGood, OCSPRevoked, OCSPHold, OCSPUnknown, or ""
	// when no stapled response covers the certificate.
	State      string
	ThisUpdate time.Time
	NextUpdate time.Time
	// Err is set when a response was found but is not valid.
	Err error
}

// VerifyOCSP finds, among the stapled responses, the one for cert (issued
// by issuer) and checks it at the time at: its signature by the issuer or
// by a responder certificate the issuer signed for OCSP signing, and
// thisUpdate ≤ at < nextUpdate. Responses for other certificates are
// ignored.
func VerifyOCSP(responses [][]byte, cert, issuer *x509.Certificate, at time.Time) OCSPStatus {
	return (*Cache)(nil).verifyOCSP(responses, cert, issuer, at)
}

// verifyOCSP is VerifyOCSP through the cache: parsing a response and
// checking its signature (ocsp.ParseResponseForCert) is cached by the exact
// response, certificate and issuer; the time and status checks run on
// every call.
func (c *Cache) verifyOCSP(responses [][]byte, cert, issuer *x509.Certificate, at time.Time) OCSPStatus {
	st := OCSPStatus{Cert: cert}
	for _, der := range responses {
		if len(der) > MaxOCSPSize {
			continue
		}
		r, err := c.parseOCSP(der, cert, issuer)
		if err != nil {
			st.Err = fmt.Errorf("OCSP response for %q is invalid: %v", cert.Subject.CommonName, err)
			return st
		}
		if r == nil { // an error status, or a response for other certificates
			continue
		}
		st.ThisUpdate, st.NextUpdate = r.ThisUpdate, r.NextUpdate
		if r.Certificate != nil && !r.Certificate.Equal(issuer) {
			if !slices.Contains(r.Certificate.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
				st.Err = fmt.Errorf("OCSP responder %q is not authorized for OCSP signing", r.Certificate.Subject.CommonName)
				return st
			}
			if at.Before(r.Certificate.NotBefore) || at.After(r.Certificate.NotAfter) {
				st.Err = fmt.Errorf("OCSP responder certificate %q is not valid at %s", r.Certificate.Subject.CommonName, at.UTC().Format(time.RFC3339))
				return st
			}
		}
		switch {
		case r.ThisUpdate.After(at.Add(ocspSkew)):
			st.Err = fmt.Errorf("OCSP response for %q is from the future (thisUpdate %s)", cert.Subject.CommonName, r.ThisUpdate.UTC().Format(time.RFC3339))
			return st
		case !r.NextUpdate.IsZero() && !at.Before(r.NextUpdate):
			st.Err = fmt.Errorf("OCSP response for %q expired at %s (nextUpdate); fetch a fresh one", cert.Subject.CommonName, r.NextUpdate.UTC().Format(time.RFC3339))
			return st
		case r.NextUpdate.IsZero() && at.Sub(r.ThisUpdate) > ocspMaxAgeNoNext:
			st.Err = fmt.Errorf("OCSP response for %q has no nextUpdate and is older than %s", cert.Subject.CommonName, ocspMaxAgeNoNext)
			return st
		}
		switch r.Status {
		case ocsp.Good:
			st.State = policy.OCSPGood
		case ocsp.Revoked:
			st.State = policy.OCSPRevoked
			if r.RevocationReason == ocsp.CertificateHold {
				st.State = policy.OCSPHold
			}
		default:
			st.State = policy.OCSPUnknown
		}
		return st
	}
	return st
}

// parseOCSP parses a response for cert and checks its signature. It
// returns nil, nil for a response that is not about cert or that carries an
// OCSP error status; both outcomes, and successful parses, are cached.
func (c *Cache) parseOCSP(der []byte, cert, issuer *x509.Certificate) (*ocsp.Response, error) {
	parts := [][]byte{der, cert.Raw, issuer.Raw}
	var k uint64
	if c != nil {
		k = c.key(kindOCSP, SPKIHash{}, parts)
		if e := c.get(k, kindOCSP, SPKIHash{}, parts, time.Time{}); e != nil {
			return e.ocsp, nil
		}
	}
	r, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		var ne ocsp.ResponseError
		if !errors.As(err, &ne) && !isNoMatch(err) {
			return nil, err
		}
		r = nil
	}
	own := make([][]byte, len(parts))
	for i, p := range parts {
		own[i] = slices.Clone(p)
	}
	// The signature holds at any time; validity is checked on every call.
	c.put(k, &cacheEntry{kind: kindOCSP, parts: own, ocsp: r, notAfter: time.Unix(1<<62, 0)})
	return r, nil
}

func isNoMatch(err error) bool {
	var pe ocsp.ParseError
	return errors.As(err, &pe) && pe == "no response matching the supplied certificate"
}
