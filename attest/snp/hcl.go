package snp

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-sev-guest/abi"
)

// Azure CVM HCL report layout (the paravisor's report at vTPM NV index
// 0x01400001): a 32-byte header, the hardware report in a 1184-byte slot,
// a 20-byte IGVM request header, then the runtime data.
const (
	hclMagic        = "HCLA"
	hclHeaderSize   = 32
	hclReportOffset = hclHeaderSize
	hclIGVMOffset   = hclReportOffset + abi.ReportSize
	hclIGVMSize     = 20
	hclDataOffset   = hclIGVMOffset + hclIGVMSize
	// MaxHCLRuntimeData bounds the runtime data of an HCL report.
	MaxHCLRuntimeData = 16 << 10

	hclReportTypeSNP = 2
	hclReportTypeTDX = 4
	hclHashSHA256    = 1
)

// HCLReport is an Azure confidential VM's HCL report: an SEV-SNP report whose
// REPORT_DATA[0:32] is SHA-256 of the runtime data, and REPORT_DATA[32:64]
// is zero. The runtime data carries the vTPM's attestation key.
type HCLReport struct {
	Version uint32
	// Report is the 1184-byte SEV-SNP report, or for an Azure TDX VM's HCL
	// report (see ParseTDXHCLReport) the 1024-byte TDREPORT.
	Report      []byte
	RuntimeData []byte // the runtime-data JSON, exactly as hashed
	Runtime     RuntimeData
}

// RuntimeData is the decoded runtime-data JSON of an HCL report.
type RuntimeData struct {
	Keys            []JWK          `json:"keys"`
	VMConfiguration map[string]any `json:"vm-configuration"`
	UserData        string         `json:"user-data"`
}

// JWK is a JSON Web Key (RFC 7517) as the HCL writes it: RSA (n, e), or
// for sworn's simulated paravisor an EC key (crv, x, y).
type JWK struct {
	KID    string   `json:"kid"`
	KeyOps []string `json:"key_ops,omitempty"`
	KTY    string   `json:"kty"`
	E      string   `json:"e,omitempty"`
	N      string   `json:"n,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
}

// IsHCLReport reports whether data starts like an Azure HCL report.
func IsHCLReport(data []byte) bool { return len(data) >= 4 && string(data[:4]) == hclMagic }

// ParseHCLReport parses an Azure HCL report. It checks the layout only; the
// binding of the runtime data to the report is checked by [HCLReport.CheckBinding].
func ParseHCLReport(data []byte) (*HCLReport, error) { return parseHCL(data, hclReportTypeSNP) }

// TDReportSize is the size of a TDX TDREPORT (TDREPORT_STRUCT).
const TDReportSize = 1024

// ParseTDXHCLReport parses the HCL report of an Azure TDX confidential VM:
// the same layout, with report type 4 and a 1024-byte TDREPORT at the
// start of the hardware report's slot. The TDREPORT is MACed, not signed:
// only the TD quote that carries the same REPORTDATA vouches for it.
func ParseTDXHCLReport(data []byte) (*HCLReport, error) { return parseHCL(data, hclReportTypeTDX) }

func parseHCL(data []byte, want uint32) (*HCLReport, error) {
	if len(data) < hclDataOffset {
		return nil, fmt.Errorf("HCL report is %d bytes; it needs at least %d", len(data), hclDataOffset)
	}
	if !IsHCLReport(data) {
		return nil, errors.New("HCL report does not start with \"HCLA\"")
	}
	h := &HCLReport{Version: binary.LittleEndian.Uint32(data[4:8])}
	reportType := binary.LittleEndian.Uint32(data[hclIGVMOffset+8:])
	hashType := binary.LittleEndian.Uint32(data[hclIGVMOffset+12:])
	size := binary.LittleEndian.Uint32(data[hclIGVMOffset+16:])
	switch {
	case reportType == want:
	case reportType == hclReportTypeTDX:
		return nil, errors.New("HCL report holds a TDX report, not SEV-SNP; verify it as TDX evidence")
	case reportType == hclReportTypeSNP:
		return nil, errors.New("HCL report holds an SEV-SNP report, not a TDX TDREPORT; verify it as SEV-SNP evidence")
	default:
		return nil, fmt.Errorf("HCL report type %d is unknown (want %d)", reportType, want)
	}
	if hashType != hclHashSHA256 {
		return nil, fmt.Errorf("HCL report hash type %d is not supported (want 1, SHA-256)", hashType)
	}
	if size == 0 || size > MaxHCLRuntimeData || int(size) > len(data)-hclDataOffset {
		return nil, fmt.Errorf("HCL runtime data size %d does not fit the %d-byte report (limit %d)", size, len(data), MaxHCLRuntimeData)
	}
	h.Report = data[hclReportOffset:hclIGVMOffset]
	if reportType == hclReportTypeTDX {
		h.Report = h.Report[:TDReportSize]
	}
	h.RuntimeData = data[hclDataOffset : hclDataOffset+int(size)]
	dec := json.NewDecoder(bytes.NewReader(h.RuntimeData))
	if err := dec.Decode(&h.Runtime); err != nil {
		return nil, fmt.Errorf("HCL runtime data is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("HCL runtime data has bytes after its JSON object")
	}
	return h, nil
}

// CheckBinding checks that the report's REPORT_DATA is SHA-256 of the
// runtime data followed by 32 zero bytes.
func (h *HCLReport) CheckBinding(reportData []byte) error {
	sum := sha256.Sum256(h.RuntimeData)
	if !bytes.Equal(reportData[:32], sum[:]) {
		return fmt.Errorf("REPORT_DATA[0:32] is %s but SHA-256 of the HCL runtime data is %s: the runtime data was altered or belongs to another report",
			hex.EncodeToString(reportData[:32]), hex.EncodeToString(sum[:]))
	}
	if !bytes.Equal(reportData[32:64], make([]byte, 32)) {
		return errors.New("REPORT_DATA[32:64] is not zero, as an HCL report requires")
	}
	return nil
}

// UserData returns the runtime data's user-data field decoded from hex:
// the 64 bytes the guest asked the paravisor to include.
func (h *HCLReport) UserData() ([]byte, error) {
	b, err := hex.DecodeString(h.Runtime.UserData)
	if err != nil {
		return nil, fmt.Errorf("HCL runtime user-data is not hex: %v", err)
	}
	return b, nil
}

// AKPublic returns the vTPM attestation key (kid "HCLAkPub") from the
// runtime data: an *rsa.PublicKey (Azure) or an *ecdsa.PublicKey.
func (h *HCLReport) AKPublic() (crypto.PublicKey, error) {
	var found *JWK
	for i, k := range h.Runtime.Keys {
		if k.KID == "HCLAkPub" {
			if found != nil {
				return nil, errors.New("HCL runtime data has two HCLAkPub keys")
			}
			found = &h.Runtime.Keys[i]
		}
	}
	if found == nil {
		return nil, errors.New("HCL runtime data has no HCLAkPub key")
	}
	switch found.KTY {
	case "RSA":
		return found.rsa()
	case "EC":
		return found.ec()
	default:
		return nil, fmt.Errorf("HCLAkPub has key type %q, want RSA or EC", found.KTY)
	}
}

func (found *JWK) ec() (*ecdsa.PublicKey, error) {
	var curve ecdh.Curve
	switch found.Crv {
	case "P-256":
		curve = ecdh.P256()
	case "P-384":
		curve = ecdh.P384()
	default:
		return nil, fmt.Errorf("HCLAkPub has curve %q, want P-256 or P-384", found.Crv)
	}
	x, errX := base64.RawURLEncoding.DecodeString(found.X)
	y, errY := base64.RawURLEncoding.DecodeString(found.Y)
	if errX != nil || errY != nil || len(x) != len(y) || len(x) > 66 {
		return nil, errors.New("HCLAkPub EC coordinates are malformed")
	}
	if _, err := curve.NewPublicKey(append(append([]byte{4}, x...), y...)); err != nil {
		return nil, fmt.Errorf("HCLAkPub is not a point on %s: %v", found.Crv, err)
	}
	c := elliptic.P256()
	if found.Crv == "P-384" {
		c = elliptic.P384()
	}
	return &ecdsa.PublicKey{Curve: c, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, nil
}

func (found *JWK) rsa() (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(found.N)
	if err != nil {
		return nil, fmt.Errorf("HCLAkPub modulus: %v", err)
	}
	e, err := base64.RawURLEncoding.DecodeString(found.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("HCLAkPub exponent is malformed")
	}
	if len(n) < 256 || len(n) > 512 {
		return nil, fmt.Errorf("HCLAkPub modulus is %d bits; want 2048 to 4096", len(n)*8)
	}
	exp := new(big.Int).SetBytes(e)
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
}

// PEMPublicKey encodes a public key as a PEM PKIX block.
func PEMPublicKey(pub any) (string, error) { return pemPublicKey(pub) }

// pemPublicKey encodes a public key as a PEM PKIX block.
func pemPublicKey(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// NewRuntimeData returns HCL runtime data as sworn's simulated paravisor
// writes it: the vTPM AK as an "HCLAkPub" JWK (RSA or EC P-256/P-384), the
// VM configuration, and userData (hex) as "user-data".
func NewRuntimeData(ak crypto.PublicKey, userData []byte) ([]byte, error) {
	jwk := JWK{KID: "HCLAkPub", KeyOps: []string{"sign"}}
	switch k := ak.(type) {
	case *rsa.PublicKey:
		jwk.KTY, jwk.N = "RSA", base64.RawURLEncoding.EncodeToString(k.N.Bytes())
		jwk.E = base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		size := (len(raw) - 1) / 2
		jwk.KTY, jwk.Crv = "EC", k.Curve.Params().Name
		jwk.X = base64.RawURLEncoding.EncodeToString(raw[1 : 1+size])
		jwk.Y = base64.RawURLEncoding.EncodeToString(raw[1+size:])
	default:
		return nil, fmt.Errorf("unsupported AK type %T", ak)
	}
	return json.Marshal(RuntimeData{
		Keys:            []JWK{jwk},
		VMConfiguration: map[string]any{"console-enabled": false, "secure-boot": true, "tpm-enabled": true},
		UserData:        hex.EncodeToString(userData),
	})
}

// wrapHCL wraps an SEV-SNP report and its runtime data in the HCL layout.
func wrapHCL(report, runtimeData []byte) []byte {
	out := make([]byte, hclDataOffset, hclDataOffset+len(runtimeData))
	copy(out, hclMagic)
	binary.LittleEndian.PutUint32(out[4:], 2)
	binary.LittleEndian.PutUint32(out[8:], uint32(hclDataOffset+len(runtimeData)))
	binary.LittleEndian.PutUint32(out[12:], 2) // request type
	copy(out[hclReportOffset:], report)
	igvm := out[hclIGVMOffset:]
	binary.LittleEndian.PutUint32(igvm[0:], uint32(hclIGVMSize+len(runtimeData)))
	binary.LittleEndian.PutUint32(igvm[4:], 1)
	binary.LittleEndian.PutUint32(igvm[8:], hclReportTypeSNP)
	binary.LittleEndian.PutUint32(igvm[12:], hclHashSHA256)
	binary.LittleEndian.PutUint32(igvm[16:], uint32(len(runtimeData)))
	return append(out, runtimeData...)
}
