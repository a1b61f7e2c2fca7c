package tdx

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
)

// pcsServer answers as Intel PCS does, from go-tdx-guest's recorded
// responses: the issuer chains URL-encoded in their headers.
func pcsServer(t *testing.T, seen *[]string) *httptest.Server {
	r := func(name string) []byte { return vectors.Read(t, "tdx", "go-tdx-guest", name) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		*seen = append(*seen, req.URL.RequestURI())
		chain := func(h, file string) { w.Header().Set(h, url.QueryEscape(string(r(file)))) }
		switch req.URL.Path {
		case "/tdx/certification/v4/tcb":
			chain("TCB-Info-Issuer-Chain", "tcb_info_issuer_chain.pem")
			w.Write(r("sample_tcbInfo_response"))
		case "/tdx/certification/v4/qe/identity":
			chain("SGX-Enclave-Identity-Issuer-Chain", "qe_identity_issuer_chain.pem")
			w.Write(r("sample_qeIdentity_response"))
		case "/sgx/certification/v4/pckcrl":
			chain("SGX-PCK-CRL-Issuer-Chain", "pck_crl_issuer_chain.pem")
			w.Write(r("pckcrl"))
		case "/sgx/certification/v4/rootcacrl":
			w.Write(r("rootcrl.der"))
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPCSFetch: the collateral fetched from a PCCS for the real SPR quote
// is the collateral assembled from the same recorded responses (which
// TestTDXRealVectors verifies), asked for the quote's own FMSPC and CA; a
// PCS that leaves out an issuer chain, or answers an error, is refused.
func TestPCSFetch(t *testing.T) {
	quote := vectors.Read(t, "tdx", "go-tdx-guest", "tdx_prod_quote_SPR_E4.dat")
	var seen []string
	srv := pcsServer(t, &seen)
	got, err := (&PCS{Base: srv.URL}).Fetch(t.Context(), quote)
	if err != nil {
		t.Fatal(err)
	}
	if want := goTDXGuestCollateral(t); !bytes.Equal(got, want) {
		t.Fatal("the fetched collateral is not the one assembled from the same responses")
	}
	a, _ := Parse(&Evidence{Quote: quote})
	ext, _ := pckExtensions(a.PCK[0])
	all := strings.Join(seen, " ")
	if !strings.Contains(all, "fmspc="+strings.ToLower(ext.FMSPC)) || !strings.Contains(all, "ca=platform") && !strings.Contains(all, "ca=processor") {
		t.Fatalf("requests %v", seen)
	}

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/tdx/certification/v4/qe/identity" {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{}`)) // and no issuer-chain header
	}))
	defer bad.Close()
	if _, err := (&PCS{Base: bad.URL}).Fetch(t.Context(), quote); err == nil || !strings.Contains(err.Error(), "Intel PCS") {
		t.Fatalf("a PCS without issuer chains: %v", err)
	}
	if _, err := (&PCS{Base: srv.URL}).Fetch(t.Context(), []byte("not a quote")); err == nil {
		t.Fatal("fetched collateral for garbage")
	}
}

// TestCollectorFetchesCollateral: a collector given a PCCS and no
// collateral fetches the simulated platform's collateral at collection, as
// a PCCS serves it, and the evidence it staples affirms.
func TestCollectorFetchesCollateral(t *testing.T) {
	data, err := SimCollateral(simAt, SimCollateralOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var c Collateral
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	unhex := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen = append(seen, req.URL.Path)
		switch req.URL.Path {
		case "/tdx/certification/v4/tcb":
			w.Header().Set("TCB-Info-Issuer-Chain", url.QueryEscape(c.TCBInfoIssuerChain))
			fmt.Fprintf(w, `{"tcbInfo":%s,"signature":%q}`, c.TCBInfo, c.TCBInfoSignature)
		case "/tdx/certification/v4/qe/identity":
			w.Header().Set("SGX-Enclave-Identity-Issuer-Chain", url.QueryEscape(c.QEIdentityIssuerChain))
			fmt.Fprintf(w, `{"enclaveIdentity":%s,"signature":%q}`, c.QEIdentity, c.QEIdentitySignature)
		case "/sgx/certification/v4/pckcrl":
			w.Header().Set("SGX-PCK-CRL-Issuer-Chain", url.QueryEscape(c.PCKCRLIssuerChain))
			w.Write(unhex(c.PCKCRL))
		case "/sgx/certification/v4/rootcacrl":
			w.Write(unhex(c.RootCACRL))
		default:
			http.NotFound(w, req)
		}
	}))
	defer srv.Close()
	col := &Collector{Provider: simProvider{p: NewSimPlatform(1)}, PCS: &PCS{Base: srv.URL}}
	e, err := col.Collect(simBinding)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 4 || len(e.Collateral) == 0 {
		t.Fatalf("requests %v; %d bytes of collateral", seen, len(e.Collateral))
	}
	if r := appraise(t, e, simAt, simPolicy(t, ""), simBinding[:]); r.Verdict != attest.Affirming {
		t.Fatalf("evidence with fetched collateral: %s %+v", r.Verdict, r.Devices["cpu0"].FirstFailure())
	}
	srv.Close()
	if _, err := (&Collector{Provider: simProvider{p: NewSimPlatform(1)}, PCS: &PCS{Base: srv.URL}}).Collect(simBinding); err == nil {
		t.Fatal("collected without collateral while the PCCS is down")
	}
}
