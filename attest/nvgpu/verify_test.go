package nvgpu

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/internal/vectors"
)

var at2024 = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// TestVectorReports: every report passes signature, chain, FWID and nonce
// checks (the sdk-negative report fails its signature, as it must).
func TestVectorReports(t *testing.T) {
	for _, v := range vectorReports {
		t.Run(v.dir, func(t *testing.T) {
			rep, err := ParseReport(readReport(t, v.dir, v.report))
			if err != nil {
				t.Fatal(err)
			}
			certs, err := ParseCertChain(vectors.Read(t, "nvidia", v.dir, v.chain))
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != 5 {
				t.Fatalf("%d certs", len(certs))
			}
			if _, err := VerifyChain(certs, ProductionRoots.Device, at2024); err != nil {
				t.Errorf("chain: %v", err)
			}
			if a := ChainArch(certs[0]); a != v.arch {
				t.Errorf("chain arch %q, want %q", a, v.arch)
			}
			err = VerifyReportSignature(rep, certs[0])
			if v.sigOK && err != nil {
				t.Errorf("signature: %v", err)
			} else if !v.sigOK && err == nil {
				t.Errorf("signature verified; it must not")
			}
			if hex.EncodeToString(rep.Request.Nonce[:]) != v.nonce {
				t.Errorf("nonce mismatch")
			}
			if f := rep.Response.Opaque.FWID(); f != nil {
				lf, err := LeafFWID(certs[0], v.arch)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(lf, f) != !v.sigOK {
					t.Errorf("FWID: leaf %x, report %x", lf, f)
				}
			} else if v.dir != "nvtrust-initial-hopper-545" {
				t.Errorf("report has no FWID")
			}
		})
	}
}
