package nvgpu

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
)

func links(c *Cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.m {
		if e.kind == kindLink {
			n++
		}
	}
	return n
}

// TestChainLinksShared: the GPUs of a node share their chain's upper
// intermediates; once one GPU's chain is verified, the next one's costs
// only its own two links (leaf and BROM certificate).
func TestChainLinksShared(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var binding attest.Binding
	es, err := NewSimulator([]byte("links")).Entries(binding, 2, at)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCache(0)
	roots := SimulatedRoots()
	for i, want := range []int{4, 6} {
		ev, err := ParseEvidence(es[i].Body)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.verifyChainDER(ev.Certs, roots.Device, at); err != nil {
			t.Fatal(err)
		}
		if n := links(c); n != want {
			t.Fatalf("after gpu%d: %d links cached, want %d", i, n, want)
		}
	}
}

// testCA issues a certificate for tests, with edit applied to its template.
func testCA(t *testing.T, cn string, parent *simCA, edit func(*x509.Certificate)) *simCA {
	t.Helper()
	key := simKey("link test " + cn)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(cn))), Subject: pkix.Name{CommonName: cn},
		NotBefore: simNotBefore, NotAfter: simDeviceEnd, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, SignatureAlgorithm: x509.ECDSAWithSHA384, MaxPathLen: -1,
	}
	if edit != nil {
		edit(tmpl)
	}
	issuer, ikey := tmpl, key
	if parent != nil {
		issuer, ikey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(nil, tmpl, issuer, &key.PublicKey, detSigner{ikey})
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &simCA{cert: c, key: key}
}

// TestChainLinkwiseChecks: what spans links — every intermediate a CA,
// path length constraints, order, the pinned root, validity — is refused
// by the link-by-link verification as by crypto/x509 on the whole chain,
// cached or not; chains with name constraints are verified whole.
func TestChainLinkwiseChecks(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	root := testCA(t, "root", nil, nil)
	ca := testCA(t, "ca", root, nil)
	leaf := testCA(t, "leaf", ca, func(c *x509.Certificate) { c.IsCA = false })
	notCA := testCA(t, "not a ca", root, func(c *x509.Certificate) { c.IsCA = false })
	underNotCA := testCA(t, "under a non-CA", notCA, func(c *x509.Certificate) { c.IsCA = false })
	pathZero := testCA(t, "path length 0", root, func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true })
	below := testCA(t, "below path length 0", pathZero, nil)
	underBelow := testCA(t, "leaf under it", below, func(c *x509.Certificate) { c.IsCA = false })
	short := testCA(t, "expires soon", root, func(c *x509.Certificate) { c.NotAfter = at.Add(time.Hour) })
	underShort := testCA(t, "leaf under expires soon", short, func(c *x509.Certificate) { c.IsCA = false })
	pin := SPKIOf(root.cert)
	chain := func(cs ...*simCA) []*x509.Certificate {
		var out []*x509.Certificate
		for _, c := range cs {
			out = append(out, c.cert)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		pin   SPKIHash
		at    time.Time
		ok    bool
	}{
		{"good", chain(leaf, ca, root), pin, at, true},
		{"intermediate not a CA", chain(underNotCA, notCA, root), pin, at, false},
		{"path length exceeded", chain(underBelow, below, pathZero, root), pin, at, false},
		{"out of order", chain(ca, leaf, root), pin, at, false},
		{"another root", chain(leaf, ca, root), SPKIOf(ca.cert), at, false},
		{"valid now", chain(underShort, short, root), pin, at, true},
		{"expired intermediate", chain(underShort, short, root), pin, at.Add(2 * time.Hour), false},
	} {
		_, whole := VerifyChain(tc.chain, tc.pin, tc.at)
		c := NewCache(0)
		// Twice: the second answer comes from the cached links.
		for range 2 {
			_, linked := c.verifyChain(tc.chain, tc.pin, tc.at)
			if (whole == nil) != tc.ok || (linked == nil) != tc.ok {
				t.Errorf("%s: whole chain: %v; link by link: %v; want ok=%v", tc.name, whole, linked, tc.ok)
			}
		}
	}
	// A cache that verified the chain now must not pass it later, once an
	// intermediate expired.
	c := NewCache(0)
	if _, err := c.verifyChain(chain(underShort, short, root), pin, at); err != nil {
		t.Fatal(err)
	}
	if _, err := c.verifyChain(chain(underShort, short, root), pin, at.Add(2*time.Hour)); err == nil {
		t.Error("a cached link answered after its certificate expired")
	}
	constrained := testCA(t, "constrained", root, func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"example.com"} })
	if linkwise(chain(constrained, root)) || !linkwise(chain(leaf, ca, root)) {
		t.Error("linkwise must refuse chains with name constraints, and only those here")
	}
}
