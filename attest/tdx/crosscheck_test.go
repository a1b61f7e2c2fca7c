package tdx

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/pcs"
	"github.com/google/go-tdx-guest/verify"

	"github.com/sworn-dev/sworn/attest"
)

// stapledGetter serves stapled collateral to go-tdx-guest as if it came
// from Intel PCS, so that its verdict can be compared with sworn's.
type stapledGetter struct{ c *Collateral }

func (g stapledGetter) Get(u string) (map[string][]string, []byte, error) {
	esc := func(pem string) []string { return []string{url.QueryEscape(pem)} }
	switch {
	case strings.Contains(u, "/tcb?fmspc="):
		sig := g.c.TCBInfoSignature
		return map[string][]string{pcs.TcbInfoIssuerChainPhrase: esc(g.c.TCBInfoIssuerChain)},
			[]byte(fmt.Sprintf(`{"tcbInfo":%s,"signature":"%s"}`, g.c.TCBInfo, sig)), nil
	case strings.Contains(u, "/qe/identity"):
		return map[string][]string{pcs.SgxQeIdentityIssuerChainPhrase: esc(g.c.QEIdentityIssuerChain)},
			[]byte(fmt.Sprintf(`{"enclaveIdentity":%s,"signature":"%s"}`, g.c.QEIdentity, g.c.QEIdentitySignature)), nil
	case strings.Contains(u, "/pckcrl"):
		der, err := hex.DecodeString(g.c.PCKCRL)
		return map[string][]string{pcs.SgxPckCrlIssuerChainPhrase: esc(g.c.PCKCRLIssuerChain)}, der, err
	default: // the root CA CRL, at the root certificate's distribution point
		der, err := hex.DecodeString(g.c.RootCACRL)
		return map[string][]string{}, der, err
	}
}

// TestTDXAgreesWithGoTDXGuest: on the real v4 quotes with their real
// collateral, go-tdx-guest (fed the stapled collateral) and sworn agree:
// both pass the dcap-qvl quote (UpToDate is the one status go-tdx-guest
// accepts), both refuse go-tdx-guest's own sample for its TCB level, and
// both refuse the dcap-qvl quote after its collateral expired.
func TestTDXAgreesWithGoTDXGuest(t *testing.T) {
	for _, tc := range []struct {
		v      vector
		at     time.Time
		wantOK bool
	}{
		{realVectors[0], realVectors[0].at, true},
		{realVectors[1], realVectors[1].at, false},
		{realVectors[0], time.Date(2025, 7, 20, 0, 0, 0, 0, time.UTC), false},
	} {
		e := loadVector(t, tc.v)
		var c Collateral
		if err := strictJSON(e.Collateral, &c); err != nil {
			t.Fatal(err)
		}
		at := tc.at
		err := verify.RawTdxQuote(e.Quote, &verify.Options{
			GetCollateral: true, CheckRevocations: true, Getter: stapledGetter{&c},
			Now: &verify.TimeSet{PckCertChain: at, TcbInfo: at, QeIdentity: at, PckCrl: at, RootCaCrl: at},
		})
		r := appraise(t, e, at, nil, nil)
		sworn := true
		for _, id := range []string{"tdx.signature", "tdx.chain", "tdx.collateral", "tdx.revocation", "tdx.tcb", "tdx.qe"} {
			if step(t, r, id).Status != attest.Pass {
				sworn = false
			}
		}
		if (err == nil) != tc.wantOK || sworn != tc.wantOK {
			t.Errorf("%s at %s: go-tdx-guest %v, sworn ok=%v (first failure %+v); want ok=%v", tc.v.name, at.Format(time.RFC3339), err, sworn, r.Devices["cpu0"].FirstFailure(), tc.wantOK)
		} else {
			t.Logf("%s at %s: go-tdx-guest %v; sworn ok=%v", tc.v.name, at.Format(time.RFC3339), err, sworn)
		}
	}
}

// TestFrame: a v4 quote's frame is all of it but the TD body and the quote
// signature, so that a quote whose frame go-tdx-guest agreed on differs
// from it only where go-tdx-guest checks sizes alone; and a Verifier,
// which cross-parses each frame once, parses as ParseQuote does.
func TestFrame(t *testing.T) {
	raw := loadVector(t, realVectors[0]).Quote
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	head, tail := q.frame()
	if len(head)+len(tail) != len(raw)-body10Size-sigSize {
		t.Fatalf("frame of %d bytes from a %d-byte quote", len(head)+len(tail), len(raw))
	}
	body := [2]int{headerSize, headerSize + body10Size}
	sig := [2]int{body[1] + 4, body[1] + 4 + sigSize}
	var seen frames
	for i := range raw {
		flipped := bytes.Clone(raw)
		flipped[i] ^= 0x01
		inBody, inSig := i >= body[0] && i < body[1], i >= sig[0] && i < sig[1]
		fq, err := ParseQuote(flipped)
		if err != nil {
			if inBody || inSig {
				t.Fatalf("byte %d: a flipped body or signature byte does not parse: %v", i, err)
			}
			continue
		}
		fh, ft := fq.frame()
		if same := fh == head && bytes.Equal(ft, tail); same != (inBody || inSig) {
			t.Fatalf("byte %d (body %v, signature %v): frame unchanged = %v", i, inBody, inSig, same)
		}
		if (inBody || inSig) && crossCheckV4(fq) != nil {
			t.Fatalf("byte %d: go-tdx-guest disagrees on a quote of the same frame", i)
		}
		cached, err := parseQuote(flipped, &seen)
		if err != nil || !reflect.DeepEqual(cached, fq) {
			t.Fatalf("byte %d: the Verifier's parse differs from ParseQuote's (%v)", i, err)
		}
	}
}
