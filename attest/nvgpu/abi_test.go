package nvgpu

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/sworn-dev/sworn/internal/vectors"
)

// vectorReports lists every report in the vectors, with its chain and nonce.
var vectorReports = []struct {
	dir, report, chain, nonce string
	arch                      Arch
	sigOK                     bool
}{
	{"nvtrust-initial-hopper-545", "attestationReport.txt", "gpuAkCertChain.txt", "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e", Hopper, true},
	{"nvtrust-head-hopper-550.90.07", "hopperAttestationReport.txt", "hopperCertChain.txt", "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb", Hopper, true},
	{"sdk-blackwell-gb100", "blackwellAttestationReport.txt", "blackwellCertChain.txt", "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb", Blackwell, true},
	{"sdk-hopper-580.159.03", "hopperAttestationReport.txt", "hopperCertChain.txt", "5bb22e377702d4e1e8215a903ba094826b9ac7f731dee1fe8102958bf2840aca", Hopper, true},
	{"sdk-negative", "hopperAttestationReportInvalidSignature.txt", "hopperCertChainExpired.txt", "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb", Hopper, false},
}

func readReport(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := DecodeReportInput(vectors.Read(t, append([]string{"nvidia"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hx(b []byte) string { return "0x" + hex.EncodeToString(b) }

// TestGoldenParse compares our parse with NVIDIA's golden parse of the same
// report, field by field.
func TestGoldenParse(t *testing.T) {
	raw := readReport(t, "sdk-hopper-580.159.03", "hopperAttestationReport.txt")
	var want map[string]any
	if err := json.Unmarshal(vectors.Read(t, "nvidia", "sdk-hopper-580.159.03", "spdm_parsed_output.json"), &want); err != nil {
		t.Fatal(err)
	}
	var wantReq map[string]any
	if err := json.Unmarshal(vectors.Read(t, "nvidia", "sdk-hopper-580.159.03", "spdm_req_parsed_output.json"), &wantReq); err != nil {
		t.Fatal(err)
	}
	rep, err := ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := rep.Request
	gotReq := map[string]any{
		"SPDMVersion":         fmt.Sprintf("0x%02x", q.SPDMVersion),
		"RequestResponseCode": fmt.Sprintf("0x%02x", q.RequestResponseCode),
		"Param1":              fmt.Sprintf("0x%02x", q.Param1),
		"Param2":              fmt.Sprintf("0x%02x", q.Param2),
		"Nonce":               hx(q.Nonce[:]),
		"SlotIDParam":         fmt.Sprintf("0x%02x", q.SlotIDParam),
	}
	compareMaps(t, "request", gotReq, wantReq)

	p := rep.Response
	blocks := map[string]any{}
	for _, b := range p.Blocks {
		blocks[strconv.Itoa(int(b.Index))] = map[string]any{
			"DMTFSpecMeasurementValueType": float64(b.ValueType),
			"DMTFSpecMeasurementValueSize": float64(len(b.Value)),
			"DMTFSpecMeasurementValue":     hx(b.Value),
		}
	}
	fields := map[string]any{}
	for _, f := range p.Opaque.Fields {
		name := "OPAQUE_FIELD_ID_" + f.Type.String()
		if f.Type == OpaqueMSRSCNT {
			var l []any
			for _, c := range p.Opaque.MSRSCNT() {
				l = append(l, float64(c))
			}
			fields[name] = l
			continue
		}
		fields[name] = hx(f.Value)
	}
	// NVIDIA's golden parse predates types 34 and 36 and leaves them out.
	for _, k := range []string{"OPAQUE_FIELD_ID_OPAQUE_DATA_VERSION", "OPAQUE_FIELD_ID_FEATURE_FLAG"} {
		if _, ok := want["OpaqueData"].(map[string]any)["OpaqueDataField"].(map[string]any)[k]; !ok {
			delete(fields, k)
		}
	}
	got := map[string]any{
		"SPDMVersion":             fmt.Sprintf("0x%02x", p.SPDMVersion),
		"RequestResponseCode":     fmt.Sprintf("0x%02x", p.RequestResponseCode),
		"Param1":                  fmt.Sprintf("0x%02x", p.Param1),
		"Param2":                  fmt.Sprintf("0x%02x", p.Param2),
		"NumberOfBlocks":          float64(p.NumberOfBlocks),
		"MeasurementRecordLength": float64(p.RecordLength),
		"Nonce":                   hx(p.Nonce[:]),
		"OpaqueLength":            float64(p.OpaqueLength),
		"Signature":               hx(p.Signature),
		"MeasurementRecord":       map[string]any{"NumberOfBlocks": float64(len(p.Blocks)), "MeasurementBlocks": blocks},
		"OpaqueData":              map[string]any{"OpaqueDataField": fields},
	}
	compareMaps(t, "response", got, want)
	if rep.Trailing != 0 || rep.SignedLength+SignatureSize != len(raw) {
		t.Errorf("signed length %d, trailing %d, total %d", rep.SignedLength, rep.Trailing, len(raw))
	}
}

func compareMaps(t *testing.T, path string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s.%s: missing from our parse", path, k)
			continue
		}
		gm, gok := g.(map[string]any)
		wm, wok := w.(map[string]any)
		if gok && wok {
			compareMaps(t, path+"."+k, gm, wm)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s.%s: got %v, want %v", path, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s.%s: in our parse, not in the golden one", path, k)
		}
	}
}

func TestParseVectors(t *testing.T) {
	for _, v := range vectorReports {
		t.Run(v.dir, func(t *testing.T) {
			rep, err := ParseReport(readReport(t, v.dir, v.report))
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(rep.Request.Nonce[:]); got != v.nonce {
				t.Errorf("nonce %s, want %s", got, v.nonce)
			}
			if len(rep.Response.Blocks) != 64 || rep.Trailing != 0 {
				t.Errorf("%d blocks, %d trailing", len(rep.Response.Blocks), rep.Trailing)
			}
			if a := rep.Response.Opaque.Arch(); a != v.arch {
				t.Errorf("arch %q, want %q", a, v.arch)
			}
		})
	}
}

func TestVBIOSFormat(t *testing.T) {
	o, err := ParseOpaque([]byte{6, 0, 8, 0, 0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.VBIOSVersion(); got != "96.00.9F.00.01" {
		t.Errorf("got %s", got)
	}
}

func TestParseRejects(t *testing.T) {
	raw := readReport(t, "sdk-hopper-580.159.03", "hopperAttestationReport.txt")
	rep, _ := ParseReport(raw)
	l1 := int(rep.Response.RecordLength)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), raw...)) }
	cases := map[string][]byte{
		"empty":             {},
		"request only":      raw[:RequestSize],
		"bad version":       mut(func(b []byte) []byte { b[0] = 0x12; return b }),
		"not measurements":  mut(func(b []byte) []byte { b[38] = 0x61; return b }),
		"unsigned request":  mut(func(b []byte) []byte { b[2] = 0; return b }),
		"zero blocks":       mut(func(b []byte) []byte { b[41] = 0; return b }),
		"record too long":   mut(func(b []byte) []byte { b[44] = 0xff; return b }),
		"block count short": mut(func(b []byte) []byte { b[41] = 63; return b }),
		"bad spec":          mut(func(b []byte) []byte { b[46] = 2; return b }),
		"bad index":         mut(func(b []byte) []byte { b[45] = 2; return b }),
		"opaque too long": mut(func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[77+l1:], 0xffff)
			return b
		}),
		"no signature": raw[:len(raw)-1],
		"too large":    make([]byte, MaxReportSize+1),
	}
	for name, b := range cases {
		if _, err := ParseReport(b); err == nil {
			t.Errorf("%s: parsed", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// Trailing bytes are counted, not parsed.
	rep, err := ParseReport(append(append([]byte(nil), raw...), 0, 1, 2))
	if err != nil || rep.Trailing != 3 || rep.SignedLength != len(raw)-SignatureSize {
		t.Errorf("trailing: %v %+v", err, rep)
	}
}

func TestOpaqueRejects(t *testing.T) {
	cases := map[string][]byte{
		"short header": {1, 0, 1},
		"overlong":     {3, 0, 5, 0, 'a'},
		"duplicate":    {3, 0, 1, 0, 'a', 3, 0, 1, 0, 'b'},
		"fwid size":    {20, 0, 1, 0, 0},
		"invalid":      {255, 0, 0, 0},
	}
	for name, b := range cases {
		if _, err := ParseOpaque(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	o, err := ParseOpaque([]byte{0x34, 0x12, 2, 0, 9, 9, 3, 0, 3, 0, '1', '2', 0})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := o.Get(0x1234); !ok || len(v) != 2 || o.DriverVersion() != "12" {
		t.Errorf("unknown field not kept: %+v", o)
	}
}
