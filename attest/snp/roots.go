package snp

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"

	"github.com/google/go-sev-guest/verify/trust"
)

// Roots is a set of AMD roots of trust: per product line (Milan, Genoa,
// Turin), the ARK and the intermediates it certifies (ASK for VCEKs, ASVK
// for VLEKs).
type Roots struct {
	// Simulated is true for sworn's simulated roots.
	Simulated bool
	lines     map[string]*productRoots
}

type productRoots struct {
	ark, ask, asvk *x509.Certificate
}

// pinnedARKs are the SHA-256 hashes of the SubjectPublicKeyInfo of AMD's
// production ARKs. The roots embedded in go-sev-guest must match them, so an
// unexpected change of the library's roots is caught at start.
var pinnedARKs = map[string]string{
	"Milan": "9f056bee44377e29308cb5ffa895bdfb62d18881fa6bed8d6f075b0204089cb9",
	"Genoa": "429a69c9422aa258ee4d8db5fcda9c6470ef15f8cd5a9cebd6cbc7d90b863831",
	"Turin": "4f125410563a2ab9a50356f9243f6fe0b6f73de98603f53f90339c70e9d7ad08",
}

// ProductionRoots returns AMD's production roots, as embedded in
// go-sev-guest and pinned by SPKI hash.
var ProductionRoots = sync.OnceValue(func() *Roots {
	r, err := productionRoots()
	if err != nil {
		panic("snp: built-in AMD roots: " + err.Error())
	}
	return r
})

func productionRoots() (*Roots, error) {
	r := &Roots{lines: map[string]*productRoots{}}
	bundles := map[string][][]byte{
		"Milan": {trust.AskArkMilanVcekBytes, trust.AskArkMilanVlekBytes},
		"Genoa": {trust.AskArkGenoaVcekBytes, trust.AskArkGenoaVlekBytes},
		"Turin": {trust.AskArkTurinVcekBytes, trust.AskArkTurinVlekBytes},
	}
	for line, bs := range bundles {
		pr := &productRoots{}
		for _, b := range bs {
			if err := pr.addPEM(b); err != nil {
				return nil, fmt.Errorf("%s: %v", line, err)
			}
		}
		if pr.ark == nil || pr.ask == nil {
			return nil, fmt.Errorf("%s: bundle lacks the ARK or ASK", line)
		}
		if got := SPKIHash(pr.ark); got != pinnedARKs[line] {
			return nil, fmt.Errorf("%s ARK SPKI hash is %s, pinned %s", line, got, pinnedARKs[line])
		}
		r.lines[line] = pr
	}
	return r, nil
}

func (pr *productRoots) addPEM(data []byte) error {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return err
		}
		switch cn := c.Subject.CommonName; {
		case strings.HasPrefix(cn, "ARK-"):
			pr.ark = c
		case strings.HasPrefix(cn, "SEV-VLEK-"):
			pr.asvk = c
		case strings.HasPrefix(cn, "SEV-"):
			pr.ask = c
		default:
			return fmt.Errorf("unexpected certificate %q", cn)
		}
	}
}

// SPKIHash returns the hex SHA-256 of a certificate's SubjectPublicKeyInfo.
func SPKIHash(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
}

// line returns the roots of a product line, or nil.
func (r *Roots) line(name string) *productRoots { return r.lines[name] }

// ProductLines returns the product lines the roots cover.
func (r *Roots) ProductLines() []string {
	var out []string
	for _, l := range []string{"Milan", "Genoa", "Turin"} {
		if r.lines[l] != nil {
			out = append(out, l)
		}
	}
	return out
}

// contains reports whether c is one of the roots' certificates.
func (r *Roots) contains(c *x509.Certificate) bool {
	for _, pr := range r.lines {
		if c.Equal(pr.ark) || c.Equal(pr.ask) || (pr.asvk != nil && c.Equal(pr.asvk)) {
			return true
		}
	}
	return false
}
