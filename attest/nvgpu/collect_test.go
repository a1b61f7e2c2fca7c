package nvgpu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
)

// fakeNVML serves simulated GPUs.
type fakeNVML struct {
	st    CCState
	n     int
	sim   *Simulator
	at    time.Time
	ready *bool
	nonce func(i int, n [NonceSize]byte) [NonceSize]byte
}

func (f *fakeNVML) CCState() (CCState, error) { return f.st, nil }
func (f *fakeNVML) DeviceCount() (int, error) { return f.n, nil }
func (f *fakeNVML) DeviceInfo(i int) (DeviceInfo, error) {
	return DeviceInfo{Index: i, Name: "simulated H100", Arch: "HOPPER", Driver: SimDriverVersion, VBIOS: SimVBIOSVersion}, nil
}
func (f *fakeNVML) Certificate(i int) ([]byte, error) {
	ev, err := f.sim.Evidence(uint32(i), [NonceSize]byte{}, f.at)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, c := range ev.Certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return out, nil
}
func (f *fakeNVML) Report(i int, nonce [NonceSize]byte) ([]byte, error) {
	if f.nonce != nil {
		nonce = f.nonce(i, nonce)
	}
	ev, err := f.sim.Evidence(uint32(i), nonce, f.at)
	if err != nil {
		return nil, err
	}
	return ev.Report, nil
}
func (f *fakeNVML) SetReady(r bool) error { *f.ready = r; return nil }
func (f *fakeNVML) Close() error          { return nil }

// simCollateral adds the simulator's RIMs and OCSP responses.
func simCollateral(sim *Simulator, at time.Time) Collateral {
	return func(_ context.Context, ev *Evidence) error {
		full, err := sim.Evidence(0, [NonceSize]byte{}, at)
		if err != nil {
			return err
		}
		ev.RIMs = full.RIMs
		// The device OCSP responses are per GPU; gpu0's cover gpu0 only,
		// so staple all of the simulator's for gpu0 and gpu1.
		for i := range uint32(2) {
			e, _ := sim.Evidence(i, [NonceSize]byte{}, at)
			ev.OCSP = append(ev.OCSP, e.OCSP...)
		}
		return nil
	}
}

func TestGate(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var b attest.Binding
	b[5] = 7
	sim := NewSimulator([]byte("gate"))
	pol := mustPolicy(t, "roots:\n  nvidia: simulated\n")
	ready := false
	f := &fakeNVML{st: CCState{CCEnabled: true}, n: 2, sim: sim, at: at, ready: &ready}
	res, err := Gate(context.Background(), f, NewVerifier(nil), b, at, pol, simCollateral(sim, at))
	if err != nil || !ready {
		if res != nil {
			for _, d := range res.Devices {
				dump(t, d)
			}
		}
		t.Fatalf("gate: %v ready=%v", err, ready)
	}

	// A GPU that answers the wrong nonce stays not ready.
	ready = false
	f.nonce = func(i int, n [NonceSize]byte) [NonceSize]byte {
		if i == 1 {
			n[0] ^= 1
		}
		return n
	}
	if _, err := Gate(context.Background(), f, NewVerifier(nil), b, at, pol, simCollateral(sim, at)); err == nil || ready {
		t.Errorf("bad nonce: gate opened (%v)", err)
	}
	f.nonce = nil

	// Without RIMs (no collateral) the verdict is a warning: not ready.
	if _, err := Gate(context.Background(), f, NewVerifier(nil), b, at, pol, nil); err == nil || ready {
		t.Errorf("no RIMs: gate opened")
	}

	// CC off and dev-tools mode are refused unless the policy allows them.
	f.st = CCState{CCEnabled: false}
	if _, err := Gate(context.Background(), f, NewVerifier(nil), b, at, pol, nil); !errors.Is(err, ErrCCOff) || ready {
		t.Errorf("CC off: %v", err)
	}
	f.st = CCState{CCEnabled: true, DevTools: true}
	if _, err := Gate(context.Background(), f, NewVerifier(nil), b, at, pol, nil); !errors.Is(err, ErrDevMode) || ready {
		t.Errorf("dev mode: %v", err)
	}
	devPol := mustPolicy(t, "roots:\n  nvidia: simulated\nnvgpu:\n  allow_dev_mode: true\n")
	if _, err := Gate(context.Background(), f, NewVerifier(nil), b, at, devPol, simCollateral(sim, at)); err != nil || !ready {
		t.Errorf("dev mode allowed: %v", err)
	}
}

// TestFetch serves vector RIMs and simulated OCSP responses on loopback.
func TestFetch(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	rim := vectors.Read(t, "nvidia", "nvtrust-head-hopper-550.90.07", "..", "nvtrust-initial-hopper-545", "Driver_RIM_test_no_gpu.swidtag")
	sim := NewSimulator([]byte("fetch"))
	ev, err := sim.Evidence(0, [NonceSize]byte{}, at)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := loadSimPKI()
	var ocspHits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/rim/"):
			id := strings.TrimPrefix(r.URL.Path, "/v1/rim/")
			if id != "NV_GPU_DRIVER_GH100_545.00" {
				http.NotFound(w, r)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"id": id, "rim": base64.StdEncoding.EncodeToString(rim)})
		case r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/ocsp-request":
			body, _ := io.ReadAll(r.Body)
			req, err := ocsp.ParseRequest(body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			ocspHits++
			// Answer from the simulator's responses, by serial.
			for _, der := range ev.OCSP {
				resp, err := ocsp.ParseResponse(der, nil)
				if err == nil && resp.SerialNumber.Cmp(req.SerialNumber) == 0 {
					w.Write(der)
					return
				}
			}
			http.Error(w, "unknown serial", 404)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := &Fetcher{RIMServiceURL: srv.URL + "/v1/rim", OCSPURL: srv.URL, Client: srv.Client()}
	got, err := f.FetchRIM(context.Background(), "NV_GPU_DRIVER_GH100_545.00")
	if err != nil || string(got) != string(rim) {
		t.Fatalf("FetchRIM: %v", err)
	}
	if _, err := f.FetchRIM(context.Background(), "NV_GPU_DRIVER_GH100_1.0"); err == nil {
		t.Error("missing RIM fetched")
	}
	if _, err := f.FetchRIM(context.Background(), "../etc/passwd"); err == nil {
		t.Error("bad id accepted")
	}
	// Staple OCSP for a simulated GPU's chains; the results verify.
	bare := &Evidence{Report: ev.Report, Certs: ev.Certs, RIMs: ev.RIMs}
	if err := f.Staple(context.Background(), bare); err != nil {
		t.Fatal(err)
	}
	if ocspHits != 6 || len(bare.OCSP) != 6 {
		t.Fatalf("%d OCSP requests, %d responses", ocspHits, len(bare.OCSP))
	}
	st := VerifyOCSP(bare.OCSP, p.devICA.cert, p.devIdentity.cert, at)
	if st.Err != nil || st.State != "good" {
		t.Errorf("stapled OCSP: %+v", st)
	}
}

// TestOCSPStates checks revoked, hold and unknown responses against policy.
func TestOCSPStates(t *testing.T) {
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var b attest.Binding
	sim := NewSimulator([]byte("ocsp"))
	ev, err := sim.Evidence(0, Nonce(b, 0), at)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := loadSimPKI()
	revoke := func(status, reason int) []byte {
		e := *ev
		e.OCSP = append([][]byte(nil), ev.OCSP[1:]...) // drop the BROM's good response
		certs, _ := ParseDERChain(ev.Certs)
		r, err := ocsp.CreateResponse(p.devICA.cert, p.devICA.cert, ocsp.Response{
			Status: status, SerialNumber: certs[1].SerialNumber, RevocationReason: reason,
			RevokedAt: at.Add(-48 * time.Hour), ThisUpdate: at.Add(-time.Hour), NextUpdate: at.Add(time.Hour),
		}, detSigner{p.devICA.key})
		if err != nil {
			t.Fatal(err)
		}
		e.OCSP = append(e.OCSP, r)
		body, _ := e.Marshal()
		return body
	}
	// A good response for the ICA's serial, signed with its issuer's key,
	// but whose CertID names another CA.
	otherIssuer := func() []byte {
		e := *ev
		e.OCSP = append([][]byte(nil), ev.OCSP[1:]...)
		certs, _ := ParseDERChain(ev.Certs)
		r, err := ocsp.CreateResponse(p.rimCA.cert, p.rimCA.cert, ocsp.Response{
			Status: ocsp.Good, SerialNumber: certs[1].SerialNumber, ThisUpdate: at.Add(-time.Hour), NextUpdate: at.Add(time.Hour),
		}, detSigner{p.devICA.key})
		if err != nil {
			t.Fatal(err)
		}
		e.OCSP = append(e.OCSP, r)
		body, _ := e.Marshal()
		return body
	}
	cases := []struct {
		name   string
		body   []byte
		pol    string
		status attest.Status
	}{
		{"another issuer's certificate", otherIssuer(), "", attest.Fail},
		{"revoked", revoke(ocsp.Revoked, ocsp.KeyCompromise), "", attest.Fail},
		{"revoked allowed", revoke(ocsp.Revoked, ocsp.KeyCompromise), "nvgpu:\n  ocsp_allow: [good, revoked]\n", attest.Warn},
		{"hold", revoke(ocsp.Revoked, ocsp.CertificateHold), "", attest.Fail},
		{"hold allowed", revoke(ocsp.Revoked, ocsp.CertificateHold), "nvgpu:\n  ocsp_allow: [good, hold]\n", attest.Warn},
		{"unknown", revoke(ocsp.Unknown, 0), "", attest.Fail},
		{"unknown allowed", revoke(ocsp.Unknown, 0), "nvgpu:\n  ocsp_allow: [good, unknown]\n", attest.Pass},
	}
	// One cached verifier for every case: a cached OCSP result must never
	// answer for another response, nor outlive its nextUpdate.
	cached := NewVerifier(NewCache(0))
	good, _ := ev.Marshal()
	simPol := mustPolicy(t, "roots:\n  nvidia: simulated\n")
	for _, when := range []time.Time{at, at, at.Add(8 * 24 * time.Hour)} {
		r := attest.VerifyEntry(context.Background(), cached, attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: good}, when, simPol, &b)
		want := attest.Pass
		if when != at {
			want = attest.Fail // the stapled responses have expired
		}
		if got := stepStatus(r.Devices["gpu0"], "gpu.ocsp"); got != want {
			dump(t, r.Devices["gpu0"])
			t.Fatalf("cached good responses at %s: gpu.ocsp %s, want %s", when, got, want)
		}
	}
	for _, c := range cases {
		pol := mustPolicy(t, "roots:\n  nvidia: simulated\n"+c.pol)
		r := attest.VerifyEntry(context.Background(), cached, attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: c.body}, at, pol, &b)
		if got := stepStatus(r.Devices["gpu0"], "gpu.ocsp"); got != c.status {
			dump(t, r.Devices["gpu0"])
			t.Errorf("%s: gpu.ocsp %s, want %s", c.name, got, c.status)
		}
	}
	// A response signed by the wrong key is invalid.
	e := *ev
	certs, _ := ParseDERChain(ev.Certs)
	forged, _ := ocsp.CreateResponse(p.devICA.cert, p.devICA.cert, ocsp.Response{
		Status: ocsp.Good, SerialNumber: certs[1].SerialNumber, ThisUpdate: at.Add(-time.Hour), NextUpdate: at.Add(time.Hour),
	}, detSigner{p.rimL4.key})
	e.OCSP = append([][]byte{forged}, ev.OCSP[1:]...)
	body, _ := e.Marshal()
	r := attest.VerifyEntry(context.Background(), NewVerifier(nil), attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, at, mustPolicy(t, "roots:\n  nvidia: simulated\n"), &b)
	if stepStatus(r.Devices["gpu0"], "gpu.ocsp") != attest.Fail {
		dump(t, r.Devices["gpu0"])
		t.Error("forged OCSP accepted")
	}
}
