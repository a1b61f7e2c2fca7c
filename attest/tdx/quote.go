package tdx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/sworn-dev/sworn/internal/lebytes"
	"github.com/sworn-dev/sworn/internal/verifycache"
)

// Layout of a TDX quote (Intel TDX DCAP Quote Generation Library and Quote
// Verification Library, "Quote Format", versions 4 and 5).
const (
	headerSize     = 48
	body10Size     = 584 // TD Quote Body for TDX 1.0
	body15Size     = 648 // TD Quote Body for TDX 1.5 (adds TEE_TCB_SVN_2, MRSERVICETD)
	v5DescSize     = 6   // v5: body type (2) and body size (4) before the body
	qeReportSize   = 384 // SGX enclave report body
	sigSize        = 64  // raw ECDSA P-256 r ‖ s
	attestKeySize  = 64  // raw P-256 point x ‖ y
	certTypePCK    = 5   // PCK certificate chain, PEM
	certTypeQE     = 6   // QE report certification data
	attKeyECDSA256 = 2   // ECDSA-256-with-P-256 curve
	teeTypeTDX     = 0x81
	bodyTypeTD10   = 2 // v5 body type: TD report for TDX 1.0
	bodyTypeTD15   = 3 // v5 body type: TD report for TDX 1.5
)

// Size bounds of the pieces of TDX evidence.
const (
	// MaxQuoteSize bounds a quote: a header, a body and a PCK chain of
	// three PEM certificates fit in 6 KiB; GCP pads its quotes to 8000.
	MaxQuoteSize = 32 << 10
	// MaxCertChainSize bounds the PEM PCK chain inside a quote.
	MaxCertChainSize = 16 << 10
	// MaxQEAuthDataSize bounds the QE authentication data.
	MaxQEAuthDataSize = 1 << 10
)

// Body is the TD quote body: the TD's measurements and attributes as the
// TDX module reported them.
type Body struct {
	// TEETCBSVN is the TDX module's TCB SVN (byte 0 its SVN, byte 1 its
	// major version), matched against the TCB info's TDX components.
	TEETCBSVN [16]byte
	// MRSEAM and MRSIGNERSEAM measure the TDX module and its signer
	// (zero for Intel's).
	MRSEAM       [48]byte
	MRSIGNERSEAM [48]byte
	// SEAMAttributes are the TDX module's attributes.
	SEAMAttributes [8]byte
	// TDAttributes are the TD's attributes (see AttrDebug and the others).
	TDAttributes [8]byte
	// XFAM is the TD's extended feature mask.
	XFAM [8]byte
	// MRTD measures the TD's initial contents (its firmware).
	MRTD [48]byte
	// MRCONFIGID, MROWNER and MROWNERCONFIG are set by the host at TD
	// creation, as the TD's owner asked.
	MRCONFIGID    [48]byte
	MROWNER       [48]byte
	MROWNERCONFIG [48]byte
	// RTMR are the runtime measurement registers 0 to 3.
	RTMR [4][48]byte
	// ReportData is REPORTDATA: sworn's binding.
	ReportData [64]byte
	// TEETCBSVN2 and MRSERVICETD are set in a TDX 1.5 body only.
	TEETCBSVN2  [16]byte
	MRSERVICETD [48]byte
}

// QEReport is the SGX report of the Quoting Enclave, which certifies the
// quote's attestation key.
type QEReport struct {
	// CPUSVN is the platform's CPU SVN as the enclave saw it.
	CPUSVN [16]byte
	// MiscSelect and Attributes are the enclave's, matched under the QE
	// identity's masks.
	MiscSelect uint32
	Attributes [16]byte
	// MRENCLAVE and MRSIGNER measure the enclave and its signer (Intel).
	MRENCLAVE [32]byte
	MRSIGNER  [32]byte
	// ISVProdID and ISVSVN are the enclave's product ID and SVN.
	ISVProdID uint16
	ISVSVN    uint16
	// ReportData is SHA-256(attestation key ‖ QE authentication data) ‖ 0.
	ReportData [64]byte
}

// Quote is a parsed TDX quote, version 4 or 5. Everything after parsing is
// the same for both versions.
type Quote struct {
	// Raw is the whole quote.
	Raw []byte
	// Version is 4 or 5.
	Version uint16
	// BodyType is the v5 body type (2: TDX 1.0, 3: TDX 1.5); 2 for v4.
	BodyType uint16
	// QESVN and PCESVN are from the header.
	QESVN, PCESVN uint16
	// QEVendorID is from the header (Intel's QE: 939a7233f79c4ca9940a0db3957f0607).
	QEVendorID [16]byte
	// Body is the TD quote body.
	Body Body
	// Signed is the part of Raw the attestation key signs: the header and
	// the body (with, in v5, the body descriptor).
	Signed []byte
	// Signature is the quote signature (r ‖ s) by AttestationKey.
	Signature [sigSize]byte
	// AttestationKey is the raw P-256 attestation public key (x ‖ y).
	AttestationKey [attestKeySize]byte
	// QEReportRaw is the 384-byte QE report, signed by the PCK key.
	QEReportRaw []byte
	// QEReport is QEReportRaw parsed.
	QEReport QEReport
	// QEReportSignature is the PCK key's signature over QEReportRaw.
	QEReportSignature [sigSize]byte
	// QEAuthData is the QE authentication data, hashed into the QE
	// report's REPORTDATA with the attestation key.
	QEAuthData []byte
	// PCKChain is the PEM PCK certificate chain (leaf first).
	PCKChain []byte
	// Trailing is the number of bytes after the signature data, which
	// nothing signs and nothing reads.
	Trailing int
}

// intelQEVendorID is the QE vendor ID of Intel's Quoting Enclave.
var intelQEVendorID = [16]byte{0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07}

// reader is the bounded little-endian reader of the quote's fields.
type reader = lebytes.Reader

// ParseQuote parses a TDX quote of version 4 or 5 strictly: an ECDSA
// P-256 attestation key, TEE type TDX, QE report certification data with a
// PEM PCK chain inside, every length consistent. Bytes after the
// signature data (padding) are counted in Quote.Trailing and ignored.
// Version 4 quotes are also parsed by go-tdx-guest's abi package, and both
// parses must agree. The Quote aliases raw.
func ParseQuote(raw []byte) (*Quote, error) { return parseQuote(raw, nil) }

// frames remembers the frames (see Quote.frame) of version 4 quotes that
// go-tdx-guest parsed and agreed on: by the frame's tail, the head that
// went with it.
type frames = verifycache.Parsed[frameHead]

// parseQuote is ParseQuote; with seen, a version 4 quote whose frame is in
// seen is not parsed by go-tdx-guest again.
func parseQuote(raw []byte, seen *frames) (*Quote, error) {
	if len(raw) > MaxQuoteSize {
		return nil, fmt.Errorf("quote is %d bytes; the limit is %d", len(raw), MaxQuoteSize)
	}
	r := &reader{B: raw}
	q := &Quote{Raw: raw}
	q.Version = r.U16("header")
	akType := r.U16("header")
	teeType := r.U32("header")
	q.QESVN = r.U16("header")
	q.PCESVN = r.U16("header")
	copy(q.QEVendorID[:], r.Take(16, "header"))
	r.Take(20, "header") // user data
	if r.Err != nil {
		return nil, fmt.Errorf("quote: %w", r.Err)
	}
	switch q.Version {
	case 4, 5:
	default:
		return nil, fmt.Errorf("quote version %d is not supported (sworn reads TDX quotes of version 4 and 5)", q.Version)
	}
	if akType != attKeyECDSA256 {
		return nil, fmt.Errorf("quote attestation key type is %d; only 2 (ECDSA-256 with P-256) is supported", akType)
	}
	if teeType != teeTypeTDX {
		return nil, fmt.Errorf("quote TEE type is 0x%x, not 0x81 (TDX): is it an SGX quote?", teeType)
	}
	bodySize := body10Size
	q.BodyType = bodyTypeTD10
	if q.Version == 5 {
		q.BodyType = r.U16("body descriptor")
		size := r.U32("body descriptor")
		switch {
		case r.Err != nil:
			return nil, fmt.Errorf("quote: %w", r.Err)
		case q.BodyType == bodyTypeTD10 && size == body10Size:
		case q.BodyType == bodyTypeTD15 && size == body15Size:
			bodySize = body15Size
		default:
			return nil, fmt.Errorf("quote v5 body type %d of %d bytes is not supported (want type 2 of %d bytes or type 3 of %d bytes: a TD report; type 1 is an SGX enclave report)", q.BodyType, size, body10Size, body15Size)
		}
	}
	body := r.Take(bodySize, "TD quote body")
	if r.Err != nil {
		return nil, fmt.Errorf("quote: %w", r.Err)
	}
	parseBody(&q.Body, body)
	q.Signed = raw[:r.Off]

	sigLen := r.U32("signature data length")
	if r.Err != nil {
		return nil, fmt.Errorf("quote: %w", r.Err)
	}
	if int64(sigLen) > int64(len(raw)-r.Off) {
		return nil, fmt.Errorf("quote signature data length %d runs past the end of the %d-byte quote", sigLen, len(raw))
	}
	sig := &reader{B: raw[r.Off : r.Off+int(sigLen)]}
	// Bytes after the signature data are signed by nothing and read by
	// nothing (GCP pads with zeros; go-tdx-guest's sample appends text);
	// they are counted, and otherwise ignored, as Intel's QVL does.
	q.Trailing = len(raw) - r.Off - int(sigLen)
	if err := parseSignatureData(q, sig); err != nil {
		return nil, err
	}
	if q.Version == 4 {
		if err := q.crossCheck(seen); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// A version 4 quote's frame is the quote without its TD body and its
// quote signature, the fields that differ from one quote of a TD to the
// next: the frame's head is the header and the signature data length,
// its tail everything after the signature (the attestation key, the
// certification data and any padding). go-tdx-guest reads the body and
// the signature at fixed offsets and checks only their sizes, so whether
// it parses a quote, and what it reads from every other field, depends on
// the frame alone: a quote whose frame go-tdx-guest agreed on needs no
// second cross-parse (TestFrame).
type frameHead [headerSize + 4]byte

// frame returns the quote's frame, as head and tail.
func (q *Quote) frame() (head frameHead, tail []byte) {
	copy(head[:headerSize], q.Raw)
	sig := len(q.Signed) + 4 // after the signature data length
	copy(head[headerSize:], q.Raw[len(q.Signed):sig])
	return head, q.Raw[sig+sigSize:]
}

// crossCheck cross-parses a version 4 quote with go-tdx-guest, unless seen
// holds its frame.
func (q *Quote) crossCheck(seen *frames) error {
	if seen == nil {
		return crossCheckV4(q)
	}
	head, tail := q.frame()
	agreed, err := seen.Get(tail, func([]byte) (*frameHead, error) { return &head, crossCheckV4(q) })
	if err == nil && *agreed != head {
		// The same tail under another head: cross-parse this one too.
		err = crossCheckV4(q)
	}
	return err
}

func parseBody(b *Body, d []byte) {
	r := &reader{B: d}
	copy(b.TEETCBSVN[:], r.Take(16, ""))
	copy(b.MRSEAM[:], r.Take(48, ""))
	copy(b.MRSIGNERSEAM[:], r.Take(48, ""))
	copy(b.SEAMAttributes[:], r.Take(8, ""))
	copy(b.TDAttributes[:], r.Take(8, ""))
	copy(b.XFAM[:], r.Take(8, ""))
	copy(b.MRTD[:], r.Take(48, ""))
	copy(b.MRCONFIGID[:], r.Take(48, ""))
	copy(b.MROWNER[:], r.Take(48, ""))
	copy(b.MROWNERCONFIG[:], r.Take(48, ""))
	for i := range b.RTMR {
		copy(b.RTMR[i][:], r.Take(48, ""))
	}
	copy(b.ReportData[:], r.Take(64, ""))
	if len(d) == body15Size {
		copy(b.TEETCBSVN2[:], r.Take(16, ""))
		copy(b.MRSERVICETD[:], r.Take(48, ""))
	}
}

func parseSignatureData(q *Quote, r *reader) error {
	copy(q.Signature[:], r.Take(sigSize, "quote signature"))
	copy(q.AttestationKey[:], r.Take(attestKeySize, "attestation key"))
	certType := r.U16("certification data")
	certSize := r.U32("certification data")
	if r.Err != nil {
		return fmt.Errorf("quote signature data: %w", r.Err)
	}
	if certType != certTypeQE {
		return fmt.Errorf("quote certification data type is %d; want 6 (QE report certification data)", certType)
	}
	cd := &reader{B: r.Take(int(min(certSize, uint32(MaxQuoteSize))), "certification data")}
	if r.Err != nil {
		return fmt.Errorf("quote signature data: %w", r.Err)
	}
	if r.Off != len(r.B) {
		return fmt.Errorf("quote signature data has %d bytes after the certification data", len(r.B)-r.Off)
	}
	q.QEReportRaw = cd.Take(qeReportSize, "QE report")
	copy(q.QEReportSignature[:], cd.Take(sigSize, "QE report signature"))
	authSize := cd.U16("QE authentication data")
	if cd.Err == nil && int(authSize) > MaxQEAuthDataSize {
		return fmt.Errorf("QE authentication data is %d bytes; the limit is %d", authSize, MaxQEAuthDataSize)
	}
	q.QEAuthData = cd.Take(int(authSize), "QE authentication data")
	pckType := cd.U16("PCK certification data")
	pckSize := cd.U32("PCK certification data")
	if cd.Err != nil {
		return fmt.Errorf("QE report certification data: %w", cd.Err)
	}
	if pckType != certTypePCK {
		return fmt.Errorf("QE certification data type is %d; want 5 (PCK certificate chain): fetch the PCK chain from Intel PCS and use a quote that embeds it", pckType)
	}
	if pckSize > MaxCertChainSize {
		return fmt.Errorf("PCK certificate chain is %d bytes; the limit is %d", pckSize, MaxCertChainSize)
	}
	q.PCKChain = cd.Take(int(pckSize), "PCK certificate chain")
	if cd.Err != nil {
		return fmt.Errorf("QE report certification data: %w", cd.Err)
	}
	if cd.Off != len(cd.B) {
		return fmt.Errorf("QE report certification data has %d bytes after the PCK chain", len(cd.B)-cd.Off)
	}
	// Some quote generators pad the PEM with NULs.
	q.PCKChain = bytes.TrimRight(q.PCKChain, "\x00")
	parseQEReport(&q.QEReport, q.QEReportRaw)
	return nil
}

func parseQEReport(e *QEReport, d []byte) {
	r := &reader{B: d}
	copy(e.CPUSVN[:], r.Take(16, ""))
	e.MiscSelect = r.U32("")
	r.Take(28, "")
	copy(e.Attributes[:], r.Take(16, ""))
	copy(e.MRENCLAVE[:], r.Take(32, ""))
	r.Take(32, "")
	copy(e.MRSIGNER[:], r.Take(32, ""))
	r.Take(96, "")
	e.ISVProdID = r.U16("")
	e.ISVSVN = r.U16("")
	r.Take(60, "")
	copy(e.ReportData[:], r.Take(64, ""))
}

// crossCheckV4 parses a version 4 quote with go-tdx-guest too, and checks
// that it reads the same body and signature data.
func crossCheckV4(q *Quote) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("quote is malformed (go-tdx-guest: %v)", r)
		}
	}()
	p, err := abi.QuoteToProto(q.Raw)
	if err != nil {
		return fmt.Errorf("quote v4 is malformed: %v", err)
	}
	v4, ok := p.(*pb.QuoteV4)
	if !ok {
		return errors.New("quote v4 is malformed: go-tdx-guest read another version")
	}
	if err := abi.CheckQuoteV4(v4); err != nil {
		return fmt.Errorf("quote v4 is malformed: %v", err)
	}
	b := v4.GetTdQuoteBody()
	sd := v4.GetSignedData()
	qe := sd.GetCertificationData().GetQeReportCertificationData()
	same := bytes.Equal(b.GetMrTd(), q.Body.MRTD[:]) && bytes.Equal(b.GetReportData(), q.Body.ReportData[:]) &&
		bytes.Equal(b.GetTdAttributes(), q.Body.TDAttributes[:]) && bytes.Equal(b.GetTeeTcbSvn(), q.Body.TEETCBSVN[:]) &&
		bytes.Equal(sd.GetSignature(), q.Signature[:]) && bytes.Equal(sd.GetEcdsaAttestationKey(), q.AttestationKey[:]) &&
		bytes.Equal(qe.GetQeReportSignature(), q.QEReportSignature[:])
	if !same {
		return errors.New("quote v4 is ambiguous: go-tdx-guest and sworn read different fields from it")
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TD attribute bits (TDX module ABI, TDATTRIBUTES, little-endian).
const (
	AttrDebug         = uint64(1) << 0
	AttrSEPTVEDisable = uint64(1) << 28
	AttrMigratable    = uint64(1) << 29
	AttrPKS           = uint64(1) << 30
	AttrKL            = uint64(1) << 31
	AttrPerfmon       = uint64(1) << 63
)

// Attributes returns the TD attributes as a number.
func (b *Body) Attributes() uint64 { return binary.LittleEndian.Uint64(b.TDAttributes[:]) }

// XFAMValue returns XFAM as a number.
func (b *Body) XFAMValue() uint64 { return binary.LittleEndian.Uint64(b.XFAM[:]) }
