package nvgpu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// OpaqueType is the type of an opaque-data field of an NVIDIA report.
type OpaqueType uint16

// The opaque-data field types NVIDIA defines (nvtrust OPAQUE_DATA_TYPES,
// the C++ SDK's GpuOpaqueDataType).
const (
	OpaqueCertIssuerName      OpaqueType = 1
	OpaqueCertAuthorityKeyID  OpaqueType = 2
	OpaqueDriverVersion       OpaqueType = 3
	OpaqueGPUInfo             OpaqueType = 4
	OpaqueSKU                 OpaqueType = 5
	OpaqueVBIOSVersion        OpaqueType = 6
	OpaqueManufacturerID      OpaqueType = 7
	OpaqueTamperDetection     OpaqueType = 8
	OpaqueSMC                 OpaqueType = 9
	OpaqueVPR                 OpaqueType = 10
	OpaqueNVDEC0Status        OpaqueType = 11
	OpaqueMSRSCNT             OpaqueType = 12
	OpaqueCPRInfo             OpaqueType = 13
	OpaqueBoardID             OpaqueType = 14
	OpaqueChipSKU             OpaqueType = 15
	OpaqueChipSKUMod          OpaqueType = 16
	OpaqueProject             OpaqueType = 17
	OpaqueProjectSKU          OpaqueType = 18
	OpaqueProjectSKUMod       OpaqueType = 19
	OpaqueFWID                OpaqueType = 20
	OpaqueProtectedPCIeStatus OpaqueType = 21
	OpaqueSwitchPDI           OpaqueType = 22
	OpaqueFloorsweptPorts     OpaqueType = 23
	OpaquePositionID          OpaqueType = 24
	OpaqueLockSwitchStatus    OpaqueType = 25
	OpaqueGPULinkConn         OpaqueType = 32
	OpaqueSysEnableStatus     OpaqueType = 33
	OpaqueOpaqueDataVersion   OpaqueType = 34
	OpaqueChipInfo            OpaqueType = 35
	OpaqueFeatureFlag         OpaqueType = 36
	OpaqueInvalid             OpaqueType = 255
	nvdec0Disabled            byte       = 0x55
	nvdec0Enabled             byte       = 0xAA
	opaqueTLVHeader                      = 4
	maxSwitchPDIs                        = 64
	opaqueMSRSCNTSize                    = 256
	opaqueFWIDSize                       = 48
	opaqueVBIOSSize                      = 8
)

var opaqueNames = map[OpaqueType]string{
	OpaqueCertIssuerName:      "CERT_ISSUER_NAME",
	OpaqueCertAuthorityKeyID:  "CERT_AUTHORITY_KEY_IDENTIFIER",
	OpaqueDriverVersion:       "DRIVER_VERSION",
	OpaqueGPUInfo:             "GPU_INFO",
	OpaqueSKU:                 "SKU",
	OpaqueVBIOSVersion:        "VBIOS_VERSION",
	OpaqueManufacturerID:      "MANUFACTURER_ID",
	OpaqueTamperDetection:     "TAMPER_DETECTION",
	OpaqueSMC:                 "SMC",
	OpaqueVPR:                 "VPR",
	OpaqueNVDEC0Status:        "NVDEC0_STATUS",
	OpaqueMSRSCNT:             "MSRSCNT",
	OpaqueCPRInfo:             "CPRINFO",
	OpaqueBoardID:             "BOARD_ID",
	OpaqueChipSKU:             "CHIP_SKU",
	OpaqueChipSKUMod:          "CHIP_SKU_MOD",
	OpaqueProject:             "PROJECT",
	OpaqueProjectSKU:          "PROJECT_SKU",
	OpaqueProjectSKUMod:       "PROJECT_SKU_MOD",
	OpaqueFWID:                "FWID",
	OpaqueProtectedPCIeStatus: "PROTECTED_PCIE_STATUS",
	OpaqueSwitchPDI:           "SWITCH_PDI",
	OpaqueFloorsweptPorts:     "FLOORSWEPT_PORTS",
	OpaquePositionID:          "POSITION_ID",
	OpaqueLockSwitchStatus:    "LOCK_SWITCH_STATUS",
	OpaqueGPULinkConn:         "GPU_LINK_CONN",
	OpaqueSysEnableStatus:     "SYS_ENABLE_STATUS",
	OpaqueOpaqueDataVersion:   "OPAQUE_DATA_VERSION",
	OpaqueChipInfo:            "CHIP_INFO",
	OpaqueFeatureFlag:         "FEATURE_FLAG",
	OpaqueInvalid:             "INVALID",
}

// String returns NVIDIA's name of the type ("FWID"), or "UNKNOWN_<n>".
func (t OpaqueType) String() string {
	if n, ok := opaqueNames[t]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN_%d", uint16(t))
}

// Known reports whether NVIDIA defines the type.
func (t OpaqueType) Known() bool { _, ok := opaqueNames[t]; return ok && t != OpaqueInvalid }

// OpaqueField is one type-length-value field of the opaque data. Fields of
// unknown types are kept, raw.
type OpaqueField struct {
	Type  OpaqueType
	Value []byte
}

// Opaque is the opaque data of a report: TLV fields in the order the GPU
// wrote them (which is not fixed).
type Opaque struct {
	Fields []OpaqueField
}

// ParseOpaque parses opaque data: a sequence of type (u16 LE), length (u16
// LE), value. The fields may come in any order; a type may appear once;
// known types with a fixed size are checked; unknown types are kept raw.
func ParseOpaque(data []byte) (Opaque, error) {
	var o Opaque
	seen := map[OpaqueType]bool{}
	for off := 0; off < len(data); {
		if len(data)-off < opaqueTLVHeader {
			return Opaque{}, fmt.Errorf("%d stray bytes at offset %d, too short for a field header", len(data)-off, off)
		}
		t := OpaqueType(binary.LittleEndian.Uint16(data[off:]))
		n := int(binary.LittleEndian.Uint16(data[off+2:]))
		off += opaqueTLVHeader
		if n > len(data)-off {
			return Opaque{}, fmt.Errorf("field %s at offset %d claims %d bytes, %d are left", t, off-opaqueTLVHeader, n, len(data)-off)
		}
		v := data[off : off+n]
		off += n
		if t == OpaqueInvalid {
			return Opaque{}, fmt.Errorf("field of type INVALID (255) at offset %d", off-n-opaqueTLVHeader)
		}
		if seen[t] {
			return Opaque{}, fmt.Errorf("field %s appears twice; which one counts would be ambiguous", t)
		}
		seen[t] = true
		if len(o.Fields) == maxOpaqueFields {
			return Opaque{}, fmt.Errorf("more than %d fields", maxOpaqueFields)
		}
		if err := checkOpaqueSize(t, v); err != nil {
			return Opaque{}, err
		}
		o.Fields = append(o.Fields, OpaqueField{Type: t, Value: v})
	}
	return o, nil
}

func checkOpaqueSize(t OpaqueType, v []byte) error {
	want := -1
	switch t {
	case OpaqueVBIOSVersion:
		want = opaqueVBIOSSize
	case OpaqueFWID:
		want = opaqueFWIDSize
	case OpaqueMSRSCNT:
		want = opaqueMSRSCNTSize
	case OpaqueNVDEC0Status, OpaqueProtectedPCIeStatus:
		want = 1
	case OpaqueOpaqueDataVersion, OpaqueFeatureFlag:
		want = 2
	case OpaqueBoardID:
		want = 4
	case OpaqueSwitchPDI:
		if len(v)%8 != 0 || len(v) > 8*maxSwitchPDIs {
			return fmt.Errorf("field SWITCH_PDI is %d bytes; it must be a multiple of 8, at most %d", len(v), 8*maxSwitchPDIs)
		}
	}
	if want >= 0 && len(v) != want {
		return fmt.Errorf("field %s is %d bytes; it must be %d", t, len(v), want)
	}
	return nil
}

// Get returns the value of the field of type t.
func (o Opaque) Get(t OpaqueType) ([]byte, bool) {
	for _, f := range o.Fields {
		if f.Type == t {
			return f.Value, true
		}
	}
	return nil, false
}

// String returns the field's value as text: up to the first NUL, spaces
// trimmed. It returns "" when the field is absent.
func (o Opaque) String(t OpaqueType) string {
	v, _ := o.Get(t)
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(string(v))
}

// DriverVersion returns the driver version ("550.90.07").
func (o Opaque) DriverVersion() string { return o.String(OpaqueDriverVersion) }

// VBIOSVersion returns the VBIOS version formatted as NVIDIA does
// ("96.00.9F.00.01"), or "" when absent.
func (o Opaque) VBIOSVersion() string {
	v, ok := o.Get(OpaqueVBIOSVersion)
	if !ok || len(v) != opaqueVBIOSSize {
		return ""
	}
	return fmt.Sprintf("%02X.%02X.%02X.%02X.%02X", v[3], v[2], v[1], v[0], v[4])
}

// FWID returns the 48-byte firmware ID, or nil when the report has none
// (drivers before 550).
func (o Opaque) FWID() []byte { v, _ := o.Get(OpaqueFWID); return v }

// NVDEC0Disabled reports whether NVDEC0 is disabled (status 0x55); RIM
// index 35 is then not compared.
func (o Opaque) NVDEC0Disabled() bool {
	v, ok := o.Get(OpaqueNVDEC0Status)
	return ok && len(v) == 1 && v[0] == nvdec0Disabled
}

// MSRSCNT returns the 64 per-index measurement counters, or nil.
func (o Opaque) MSRSCNT() []uint32 {
	v, ok := o.Get(OpaqueMSRSCNT)
	if !ok {
		return nil
	}
	out := make([]uint32, len(v)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(v[4*i:])
	}
	return out
}

// DataVersion returns OPAQUE_DATA_VERSION (0 when absent).
func (o Opaque) DataVersion() uint16 {
	v, ok := o.Get(OpaqueOpaqueDataVersion)
	if !ok {
		return 0
	}
	return binary.LittleEndian.Uint16(v)
}

// GPUMode is the confidential-computing mode of a GPU, from FEATURE_FLAG.
type GPUMode string

// The modes. The mapping follows nvtrust's Python verifier and Trustee
// (0 SPT, 1 MPT, 2 PPCIe), which single-GPU captures support; NVIDIA's C++
// SDK swaps 0 and 1.
const (
	ModeSPT     GPUMode = "SPT"   // single GPU passthrough (CC)
	ModeMPT     GPUMode = "MPT"   // multi-GPU passthrough
	ModePPCIe   GPUMode = "PPCIE" // protected PCIe
	ModeUnknown GPUMode = ""
)

// Mode returns the mode from FEATURE_FLAG, when OPAQUE_DATA_VERSION ≥ 1
// makes it meaningful; otherwise ModeUnknown.
func (o Opaque) Mode() GPUMode {
	v, ok := o.Get(OpaqueFeatureFlag)
	if !ok || o.DataVersion() < 1 {
		return ModeUnknown
	}
	switch binary.LittleEndian.Uint16(v) {
	case 0:
		return ModeSPT
	case 1:
		return ModeMPT
	case 2:
		return ModePPCIe
	}
	return ModeUnknown
}

// ChipInfo returns CHIP_INFO ("GB202"), meaningful when
// OPAQUE_DATA_VERSION ≥ 1; "" otherwise.
func (o Opaque) ChipInfo() string {
	if o.DataVersion() < 1 {
		return ""
	}
	return o.String(OpaqueChipInfo)
}

// SwitchPDIs returns the NVSwitch PDIs as NVIDIA's C++ SDK prints them
// (bytes reversed, upper-case hex).
func (o Opaque) SwitchPDIs() []string {
	v, _ := o.Get(OpaqueSwitchPDI)
	var out []string
	for i := 0; i+8 <= len(v); i += 8 {
		var b [8]byte
		for j := range 8 {
			b[j] = v[i+7-j]
		}
		out = append(out, fmt.Sprintf("%X", b[:]))
	}
	return out
}

// Arch is a GPU architecture.
type Arch string

// The supported architectures.
const (
	Hopper      Arch = "HOPPER"
	Blackwell   Arch = "BLACKWELL"
	ArchUnknown Arch = ""
)

// Arch returns the architecture from GPU_INFO's chip id (0x18x Hopper,
// 0x1ax/0x1bx Blackwell), or ArchUnknown.
func (o Opaque) Arch() Arch {
	v, ok := o.Get(OpaqueGPUInfo)
	if !ok || len(v) < 4 {
		return ArchUnknown
	}
	switch id := binary.LittleEndian.Uint32(v) &^ 0xf; id {
	case 0x180:
		return Hopper
	case 0x1a0, 0x1b0:
		return Blackwell
	}
	return ArchUnknown
}
