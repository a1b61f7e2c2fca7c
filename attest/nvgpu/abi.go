package nvgpu

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/sworn-dev/sworn/internal/lebytes"
)

// Sizes and limits of an SPDM 1.1 measurement transcript as NVIDIA GPUs
// produce it (NVML's attestationReport buffer).
const (
	// MaxReportSize is NVML's NVML_CC_GPU_ATTESTATION_REPORT_SIZE: no
	// report is larger.
	MaxReportSize = 0x2000
	// RequestSize is the size of the GET_MEASUREMENTS request that opens
	// the transcript.
	RequestSize = 37
	// NonceSize is the size of the requester and responder nonces.
	NonceSize = 32
	// SignatureSize is the size of the raw ECDSA P-384 signature r‖s.
	SignatureSize = 96
	// DigestSize is the size of a SHA-384 measurement value.
	DigestSize = 48

	spdmVersion11        = 0x11
	codeGetMeasurements  = 0xE0
	codeMeasurements     = 0x60
	measurementSpecDMTF  = 0x01
	responseHeaderSize   = 8 // version, code, param1, param2, number of blocks, record length (u24)
	blockHeaderSize      = 4 // index, specification, measurement size (u16)
	dmtfHeaderSize       = 3 // value type, value size (u16)
	maxOpaqueFields      = 128
	requestParam1SigBit  = 0x01
	requestAllMeasuremts = 0xFF
)

// Request is the SPDM 1.1 GET_MEASUREMENTS request (37 bytes) that opens
// the transcript. Its Nonce is the requester's nonce: the one the verifier
// chose, and the one compared with the expected value.
type Request struct {
	SPDMVersion         uint8
	RequestResponseCode uint8
	Param1              uint8
	Param2              uint8
	Nonce               [NonceSize]byte
	SlotIDParam         uint8
}

// MeasurementBlock is one DMTF measurement block of the MEASUREMENTS
// response.
type MeasurementBlock struct {
	// Index is the SPDM measurement index, 1-based. RIM index i is SPDM
	// index i+1.
	Index uint8
	// Specification is the measurement specification (1: DMTF).
	Specification uint8
	// ValueType is DMTFSpecMeasurementValueType (bit 7 clear: a digest).
	ValueType uint8
	// Value is the SHA-384 digest (48 bytes; all zero for an unused slot).
	Value []byte
}

// Response is the SPDM 1.1 MEASUREMENTS response.
type Response struct {
	SPDMVersion         uint8
	RequestResponseCode uint8
	Param1              uint8
	Param2              uint8
	NumberOfBlocks      uint8
	RecordLength        uint32
	Blocks              []MeasurementBlock
	// Nonce is the responder's (GPU's) nonce. It is signed but not
	// compared with anything.
	Nonce        [NonceSize]byte
	OpaqueLength uint16
	Opaque       Opaque
	// Signature is the raw ECDSA P-384 signature r‖s (big-endian, 48+48).
	Signature []byte
}

// Report is a parsed NVIDIA GPU attestation report: the SPDM request and
// response transcript. Every field comes from the signed part, except the
// signature itself; bytes after the signature are counted, never parsed.
type Report struct {
	Request  Request
	Response Response
	// SignedLength is the offset of the signature, computed from the
	// structure: the signature covers raw[:SignedLength].
	SignedLength int
	// Trailing is the number of bytes after the signature. They are not
	// authenticated.
	Trailing int

	raw []byte
}

// Signed returns the signed bytes: the request and the response up to the
// signature.
func (r *Report) Signed() []byte { return r.raw[:r.SignedLength] }

// Raw returns the whole report as given, trailing bytes included.
func (r *Report) Raw() []byte { return r.raw }

// Measurement returns the value of SPDM block index (1-based), or nil.
func (r *Report) Measurement(index int) []byte {
	if index < 1 || index > len(r.Response.Blocks) {
		return nil
	}
	return r.Response.Blocks[index-1].Value
}

// reader is the bounded little-endian reader of the quote's fields.
type reader = lebytes.Reader

// ParseReport parses an attestation report (raw bytes, as NVML returns
// them). Offsets are computed from the structure: the signature sits right
// after the opaque data, and its offset never depends on the report's total
// length. Bytes after the signature are counted in Trailing and not parsed.
// The returned Report keeps a copy of data.
func ParseReport(data []byte) (*Report, error) {
	if len(data) > MaxReportSize {
		return nil, fmt.Errorf("report is %d bytes; an NVIDIA GPU report is at most %d", len(data), MaxReportSize)
	}
	raw := bytes.Clone(data)
	r := &reader{B: raw}
	rep := &Report{raw: raw}

	q := &rep.Request
	q.SPDMVersion = r.U8("request SPDMVersion")
	q.RequestResponseCode = r.U8("request code")
	q.Param1 = r.U8("request Param1")
	q.Param2 = r.U8("request Param2")
	copy(q.Nonce[:], r.Take(NonceSize, "requester nonce"))
	q.SlotIDParam = r.U8("request SlotIDParam")
	if r.Err != nil {
		return nil, fmt.Errorf("GET_MEASUREMENTS request: %v", r.Err)
	}
	if q.SPDMVersion != spdmVersion11 {
		return nil, fmt.Errorf("request SPDM version is 0x%02x; only SPDM 1.1 (0x11) is supported", q.SPDMVersion)
	}
	if q.RequestResponseCode != codeGetMeasurements {
		return nil, fmt.Errorf("request code is 0x%02x, not GET_MEASUREMENTS (0xe0): this is not an NVIDIA attestation report", q.RequestResponseCode)
	}
	if q.Param1&requestParam1SigBit == 0 {
		return nil, errors.New("request did not ask for a signature (Param1 bit 0 clear): the report is unsigned")
	}
	if q.Param2 != requestAllMeasuremts {
		return nil, fmt.Errorf("request Param2 is 0x%02x; only reports of all measurements (0xff) are supported", q.Param2)
	}

	p := &rep.Response
	p.SPDMVersion = r.U8("response SPDMVersion")
	p.RequestResponseCode = r.U8("response code")
	p.Param1 = r.U8("response Param1")
	p.Param2 = r.U8("response Param2")
	p.NumberOfBlocks = r.U8("NumberOfBlocks")
	p.RecordLength = r.U24("MeasurementRecordLength")
	if r.Err != nil {
		return nil, fmt.Errorf("MEASUREMENTS response: %v", r.Err)
	}
	if p.SPDMVersion != spdmVersion11 {
		return nil, fmt.Errorf("response SPDM version is 0x%02x; only SPDM 1.1 (0x11) is supported", p.SPDMVersion)
	}
	if p.RequestResponseCode != codeMeasurements {
		return nil, fmt.Errorf("response code is 0x%02x, not MEASUREMENTS (0x60)", p.RequestResponseCode)
	}
	if p.NumberOfBlocks == 0 {
		return nil, errors.New("response has no measurement blocks")
	}
	record := r.Take(int(p.RecordLength), "measurement record")
	if r.Err != nil {
		return nil, fmt.Errorf("MEASUREMENTS response: %v", r.Err)
	}
	blocks, err := parseBlocks(record, int(p.NumberOfBlocks))
	if err != nil {
		return nil, fmt.Errorf("measurement record: %v", err)
	}
	p.Blocks = blocks
	copy(p.Nonce[:], r.Take(NonceSize, "responder nonce"))
	p.OpaqueLength = r.U16("OpaqueLength")
	opaque := r.Take(int(p.OpaqueLength), "opaque data")
	if r.Err != nil {
		return nil, fmt.Errorf("MEASUREMENTS response: %v", r.Err)
	}
	if p.Opaque, err = ParseOpaque(opaque); err != nil {
		return nil, fmt.Errorf("opaque data: %v", err)
	}
	rep.SignedLength = r.Off
	p.Signature = r.Take(SignatureSize, "signature")
	if r.Err != nil {
		return nil, fmt.Errorf("MEASUREMENTS response: %v", r.Err)
	}
	rep.Trailing = len(raw) - r.Off
	return rep, nil
}

func parseBlocks(record []byte, n int) ([]MeasurementBlock, error) {
	r := &reader{B: record}
	blocks := make([]MeasurementBlock, 0, n)
	for i := range n {
		b := MeasurementBlock{
			Index:         r.U8("block index"),
			Specification: r.U8("measurement specification"),
		}
		size := int(r.U16("measurement size"))
		m := r.Take(size, "measurement")
		if r.Err != nil {
			return nil, fmt.Errorf("block %d: %v", i+1, r.Err)
		}
		if int(b.Index) != i+1 {
			return nil, fmt.Errorf("block %d has index %d; indexes must run 1, 2, 3, …", i+1, b.Index)
		}
		if b.Specification != measurementSpecDMTF {
			return nil, fmt.Errorf("block %d: measurement specification 0x%02x is not DMTF (0x01)", b.Index, b.Specification)
		}
		if len(m) < dmtfHeaderSize {
			return nil, fmt.Errorf("block %d: measurement is %d bytes, shorter than its 3-byte DMTF header", b.Index, len(m))
		}
		b.ValueType = m[0]
		vsize := int(binary.LittleEndian.Uint16(m[1:3]))
		if vsize != len(m)-dmtfHeaderSize {
			return nil, fmt.Errorf("block %d: DMTF value size %d does not match the measurement size %d", b.Index, vsize, size)
		}
		if b.ValueType&0x80 != 0 {
			return nil, fmt.Errorf("block %d: value is a raw bit stream (type 0x%02x); NVIDIA reports carry SHA-384 digests", b.Index, b.ValueType)
		}
		if vsize != DigestSize {
			return nil, fmt.Errorf("block %d: value is %d bytes; a SHA-384 digest is %d", b.Index, vsize, DigestSize)
		}
		b.Value = m[dmtfHeaderSize:]
		blocks = append(blocks, b)
	}
	if r.Off != len(record) {
		return nil, fmt.Errorf("%d bytes left after %d blocks: MeasurementRecordLength does not match the blocks", len(record)-r.Off, n)
	}
	return blocks, nil
}

// DecodeReportInput accepts a report as hex text (as NVML dumps are
// shared: one line of hex, whitespace allowed, optional 0x) or as raw bytes,
// and returns the raw bytes.
func DecodeReportInput(data []byte) ([]byte, error) {
	s := strings.TrimSpace(string(data))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	isHex := len(s) > 0
	for _, c := range []byte(s) {
		if !isHexDigit(c) && c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			isHex = false
			break
		}
	}
	if !isHex {
		if len(data) > MaxReportSize {
			return nil, fmt.Errorf("report is %d bytes; an NVIDIA GPU report is at most %d", len(data), MaxReportSize)
		}
		return data, nil
	}
	s = strings.Join(strings.Fields(s), "")
	if len(s) > 2*MaxReportSize {
		return nil, fmt.Errorf("report is %d hex digits; an NVIDIA GPU report is at most %d bytes", len(s), MaxReportSize)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("report looks like hex text but does not decode: %v", err)
	}
	return b, nil
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
