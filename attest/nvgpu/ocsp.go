package nvgpu

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
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
		e := c.get(k, kindOCSP, SPKIHash{}, parts, time.Time{})
		if e == nil {
			if done := c.lead(k); done != nil {
				defer done()
			} else {
				e = c.get(k, kindOCSP, SPKIHash{}, parts, time.Time{})
			}
		}
		if e != nil {
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
	// x/crypto/ocsp matches the response to the certificate by serial
	// number only: the CertID's issuer name and key hashes must be the
	// issuer's too, or the response speaks of another CA's certificate.
	if r != nil {
		if err := checkCertID(der, r, cert, issuer); err != nil {
			return nil, err
		}
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

// certID is the CertID of an OCSP single response (RFC 6960 §4.1.1).
type certID struct {
	nameHash, keyHash []byte
	serial            *big.Int
}

// checkCertID checks that a single response of der for cert's serial
// names cert's issuer: its issuer name hash and key hash, under the hash
// the response uses, are those of issuer.
func checkCertID(der []byte, r *ocsp.Response, cert, issuer *x509.Certificate) error {
	ids, err := ocspCertIDs(der)
	if err != nil {
		return err
	}
	h := r.IssuerHash
	if !h.Available() {
		return fmt.Errorf("OCSP response uses an unsupported CertID hash %v", h)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return fmt.Errorf("issuer public key: %v", err)
	}
	sum := func(b []byte) []byte { d := h.New(); d.Write(b); return d.Sum(nil) }
	nameHash, keyHash := sum(issuer.RawSubject), sum(spki.PublicKey.Bytes)
	for _, id := range ids {
		if id.serial.Cmp(cert.SerialNumber) != 0 {
			continue
		}
		if !bytes.Equal(id.nameHash, nameHash) || !bytes.Equal(id.keyHash, keyHash) {
			return fmt.Errorf("the OCSP response for serial %s names another issuer than %q", cert.SerialNumber, issuer.Subject.CommonName)
		}
	}
	return nil
}

// ocspCertIDs returns the CertIDs of an OCSP response's single responses.
func ocspCertIDs(der []byte) ([]certID, error) {
	bad := errors.New("malformed OCSP response")
	var resp, respBytes, rb, basic, tbs, responses cryptobyte.String
	var octets []byte
	s := cryptobyte.String(der)
	if !s.ReadASN1(&resp, cbasn1.SEQUENCE) ||
		!resp.SkipASN1(cbasn1.ENUM) ||
		!resp.ReadASN1(&respBytes, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!respBytes.ReadASN1(&rb, cbasn1.SEQUENCE) ||
		!rb.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!rb.ReadASN1Bytes(&octets, cbasn1.OCTET_STRING) {
		return nil, bad
	}
	b := cryptobyte.String(octets)
	if !b.ReadASN1(&basic, cbasn1.SEQUENCE) || !basic.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, bad
	}
	var responder cryptobyte.String
	var tag cbasn1.Tag
	if !tbs.ReadAnyASN1(&responder, &tag) || !tbs.SkipASN1(cbasn1.GeneralizedTime) || !tbs.ReadASN1(&responses, cbasn1.SEQUENCE) {
		return nil, bad
	}
	var ids []certID
	for !responses.Empty() {
		var single, cid cryptobyte.String
		var id certID
		id.serial = new(big.Int)
		if !responses.ReadASN1(&single, cbasn1.SEQUENCE) || !single.ReadASN1(&cid, cbasn1.SEQUENCE) ||
			!cid.SkipASN1(cbasn1.SEQUENCE) ||
			!cid.ReadASN1Bytes(&id.nameHash, cbasn1.OCTET_STRING) ||
			!cid.ReadASN1Bytes(&id.keyHash, cbasn1.OCTET_STRING) ||
			!cid.ReadASN1Integer(id.serial) {
			return nil, bad
		}
		ids = append(ids, id)
	}
	return ids, nil
}
