package nvgpu

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
)

func seedReports(f *testing.F) {
	root := vectors.Root()
	for _, v := range vectorReports {
		if root == "" {
			break
		}
		if b, err := os.ReadFile(filepath.Join(root, "nvidia", v.dir, v.report)); err == nil {
			if raw, err := DecodeReportInput(b); err == nil {
				f.Add(raw)
			}
		}
	}
	var b attest.Binding
	if ev, err := NewSimulator([]byte("fuzz")).Evidence(0, Nonce(b, 0), at2024); err == nil {
		f.Add(ev.Report)
	}
}

func FuzzParseReport(f *testing.F) {
	seedReports(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseReport(data)
		if err != nil {
			return
		}
		if rep.SignedLength+SignatureSize+rep.Trailing != len(data) || len(rep.Response.Signature) != SignatureSize {
			t.Fatalf("inconsistent offsets: signed %d trailing %d total %d", rep.SignedLength, rep.Trailing, len(data))
		}
		_ = rep.Response.Opaque.VBIOSVersion()
		_ = VBIOSRIMID(rep.Response.Opaque)
		_ = DriverRIMID(rep.Response.Opaque, Blackwell)
	})
}

func FuzzParseOpaque(f *testing.F) {
	f.Add([]byte{3, 0, 3, 0, '1', '2', 0, 20, 0, 48, 0})
	f.Add([]byte{6, 0, 8, 0, 0, 0x9f, 0, 0x96, 1, 0, 0, 0, 34, 0, 2, 0, 1, 0, 36, 0, 2, 0, 2, 0, 22, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	seedReports(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOpaque(data)
		if err != nil {
			return
		}
		n := 0
		for _, fl := range o.Fields {
			n += opaqueTLVHeader + len(fl.Value)
		}
		if n != len(data) {
			t.Fatalf("fields cover %d of %d bytes", n, len(data))
		}
		_, _, _, _, _ = o.VBIOSVersion(), o.Mode(), o.ChipInfo(), o.SwitchPDIs(), o.MSRSCNT()
		_, _ = o.Arch(), o.NVDEC0Disabled()
	})
}

func FuzzParseRIM(f *testing.F) {
	root := vectors.Root()
	if root != "" {
		for _, p := range [][]string{
			{"nvtrust-initial-hopper-545", "Driver_RIM_test_no_gpu.swidtag"},
			{"sdk-negative", "incorrect_cert_chain_driver_rim.xml"},
		} {
			if b, err := os.ReadFile(filepath.Join(append([]string{root, "nvidia"}, p...)...)); err == nil {
				f.Add(b)
			}
		}
	}
	if p, err := loadSimPKI(); err == nil {
		f.Add(p.vbiosRIM)
	}
	f.Add([]byte(`<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd"/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRIM(data)
		if err != nil {
			return
		}
		_ = r.CheckSignature()
		_, _ = VerifyRIM(r, ProductionRoots.RIM, at2024)
	})
}

func FuzzVerifyEntry(f *testing.F) {
	var b attest.Binding
	if es, err := NewSimulator([]byte("fuzz")).Entries(b, 1, at2024); err == nil {
		f.Add(es[0].Body)
	}
	f.Add([]byte{0xa1, 0x01, 0x40})
	v := NewVerifier(NewCache(16))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := attest.VerifyEntry(context.Background(), v, attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, at2024, nil, &b)
		if r.Devices["gpu0"] == nil {
			t.Fatal("no section")
		}
	})
}
