package tdx

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tdx-guest/pcs"

	"github.com/sworn-dev/sworn/attest/tpm"
)

// The simulated platform is a TDX 1.0 machine under sworn's own simulated
// Intel SGX Root CA, PCK Platform CA and TCB signing key. Every key is
// derived from a fixed label (and, for a platform, its seed), and every
// signature is deterministic (RFC 6979), so the same seed and time give the
// same bytes. The private keys are public by construction: simulated
// evidence proves nothing, and results that trust it are marked SIMULATED.

// SimMRTD is the MRTD of sworn's simulated TD firmware.
var SimMRTD = func() [48]byte { return sha512.Sum384([]byte("sworn simulated TDX firmware v1")) }()

// SimFMSPC is the FMSPC of the simulated platform.
const SimFMSPC = "00906ed50000"

// SimTEETCBSVN is the TEE_TCB_SVN the simulated TDX module reports (module
// SVN 3, major version 0).
var SimTEETCBSVN = [16]byte{3, 0, 5}

// SimAttributes are the simulated TD's attributes: SEPT_VE_DISABLE.
const SimAttributes = AttrSEPTVEDisable

var simValidity = struct{ from, to time.Time }{
	time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
}

// simKey derives a P-256 key from a label.
func simKey(label string) *ecdsa.PrivateKey {
	for i := 0; ; i++ {
		d := sha256.Sum256([]byte(fmt.Sprintf("sworn simulated TDX key %d: %s", i, label)))
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:]); err == nil {
			return k
		}
	}
}

type simCA struct {
	rootKey, caKey, tcbKey *ecdsa.PrivateKey
	root, ca, tcb          *x509.Certificate
	roots                  *Roots
}

func simName(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, OrganizationalUnit: []string{"SIMULATED"}, Organization: []string{"sworn"}}
}

var simulatedCA = sync.OnceValue(func() *simCA {
	ca := &simCA{rootKey: simKey("Intel SGX Root CA"), caKey: simKey("Intel SGX PCK Platform CA"), tcbKey: simKey("Intel SGX TCB Signing")}
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: simName("Intel SGX Root CA (SIMULATED)"),
		NotBefore: simValidity.from, NotAfter: simValidity.to, SubjectKeyId: []byte("sworn-sim-root"),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 1, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca.root = mustCert(root, root, &ca.rootKey.PublicKey, ca.rootKey)
	ca.ca = mustCert(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: simName("Intel SGX PCK Platform CA (SIMULATED)"),
		NotBefore: simValidity.from, NotAfter: simValidity.to, SubjectKeyId: []byte("sworn-sim-pck-ca"),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, ca.root, &ca.caKey.PublicKey, ca.rootKey)
	ca.tcb = mustCert(&x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: simName("Intel SGX TCB Signing (SIMULATED)"),
		NotBefore: simValidity.from, NotAfter: simValidity.to,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca.root, &ca.tcbKey.PublicKey, ca.rootKey)
	ca.roots = &Roots{Simulated: true, spki: map[[32]byte]bool{sha256.Sum256(ca.root.RawSubjectPublicKeyInfo): true}}
	return ca
})

func mustCert(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) *x509.Certificate {
	der, err := x509.CreateCertificate(nil, tmpl, parent, pub, priv)
	if err != nil {
		panic("tdx: simulated certificate: " + err.Error())
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic("tdx: simulated certificate: " + err.Error())
	}
	return c
}

// SimulatedRoots returns sworn's simulated Intel root.
func SimulatedRoots() *Roots { return simulatedCA().roots }

// simCPUSVN and simPCESVN are the TCB of every simulated platform.
var simCPUSVN = [16]byte{7, 7, 2, 2, 3, 1, 0, 5}

const simPCESVN = 13

// SimPlatform is a simulated TDX platform: a PCK key and certificate for
// its FMSPC and TCB, and a Quoting Enclave attestation key.
type SimPlatform struct {
	// PCK is the platform's PCK certificate.
	PCK *x509.Certificate
	// CPUSVN and PCESVN are the TCB the PCK certificate is for.
	CPUSVN [16]byte
	PCESVN uint16

	pckKey, akKey *ecdsa.PrivateKey
}

// NewSimPlatform returns the simulated platform of a seed.
func NewSimPlatform(seed uint64) *SimPlatform {
	p := &SimPlatform{CPUSVN: simCPUSVN, PCESVN: simPCESVN}
	p.pckKey = simKey(fmt.Sprintf("PCK %d", seed))
	p.akKey = simKey(fmt.Sprintf("QE attestation key %d", seed))
	ext, err := simSGXExtension(seed, p.CPUSVN, p.PCESVN)
	if err != nil {
		panic("tdx: simulated PCK extension: " + err.Error())
	}
	ca := simulatedCA()
	p.PCK = mustCert(&x509.Certificate{
		SerialNumber: new(big.Int).SetUint64(1000 + seed), Subject: simName("Intel SGX PCK Certificate (SIMULATED)"),
		NotBefore: simValidity.from, NotAfter: simValidity.to, SubjectKeyId: []byte(fmt.Sprintf("sworn-sim-pck-%d", seed)),
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		CRLDistributionPoints: []string{"https://sworn.invalid/sim/pckcrl"},
		ExtraExtensions:       []pkix.Extension{{Id: pcs.OidSgxExtension, Value: ext}},
	}, ca.ca, &p.pckKey.PublicKey, ca.caKey)
	return p
}

type oidValue struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

func oidEntry(id asn1.ObjectIdentifier, v any) (oidValue, error) {
	der, err := asn1.Marshal(v)
	return oidValue{id, asn1.RawValue{FullBytes: der}}, err
}

// simSGXExtension encodes the SGX extension of a PCK certificate (Intel
// SGX PCK Certificate and CRL Profile): PPID, TCB, PCE-ID, FMSPC, SGX type.
func simSGXExtension(seed uint64, cpusvn [16]byte, pcesvn uint16) ([]byte, error) {
	var tcb []oidValue
	for i := range 16 {
		e, err := oidEntry(append(slicesClone(pcs.OidTCB), i+1), int(cpusvn[i]))
		if err != nil {
			return nil, err
		}
		tcb = append(tcb, e)
	}
	e, _ := oidEntry(pcs.OidPCESvn, int(pcesvn))
	tcb = append(tcb, e)
	e, _ = oidEntry(pcs.OidCPUSvn, cpusvn[:])
	tcb = append(tcb, e)
	fmspc, _ := hex.DecodeString(SimFMSPC)
	ppid := sha256.Sum256([]byte(fmt.Sprintf("sworn simulated PPID %d", seed)))
	var entries []oidValue
	for _, x := range []struct {
		id asn1.ObjectIdentifier
		v  any
	}{{pcs.OidPPID, ppid[:16]}, {pcs.OidTCB, tcb}, {pcs.OidPCEID, []byte{0, 0}}, {pcs.OidFMSPC, fmspc}, {append(slicesClone(pcs.OidSgxExtension), 5), asn1.Enumerated(0)}} {
		e, err := oidEntry(x.id, x.v)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return asn1.Marshal(entries)
}

func slicesClone(o asn1.ObjectIdentifier) asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier{}, o...)
}

// SimQuoteOptions are the TD's registers in a simulated quote. Zero values
// take the simulated defaults (SimMRTD, SimAttributes, SimTEETCBSVN).
type SimQuoteOptions struct {
	ReportData [64]byte
	MRTD       *[48]byte
	RTMR       [4][48]byte
	// Attributes, when non-nil, replaces SimAttributes.
	Attributes *uint64
	TEETCBSVN  *[16]byte
}

// simMRSIGNERQE is the simulated Quoting Enclave's MRSIGNER.
var simMRSIGNERQE = sha256.Sum256([]byte("sworn simulated TD QE signer"))

// simQEAttributes are the simulated QE's SGX attributes (INIT, MODE64BIT).
var simQEAttributes = [16]byte{0x11}

const (
	simQEProdID = 2
	simQESVN    = 4
)

// Quote returns a version 4 TDX quote of the simulated platform.
func (p *SimPlatform) Quote(o SimQuoteOptions) ([]byte, error) {
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint16(hdr[0:], 4)
	binary.LittleEndian.PutUint16(hdr[2:], attKeyECDSA256)
	binary.LittleEndian.PutUint32(hdr[4:], teeTypeTDX)
	binary.LittleEndian.PutUint16(hdr[8:], simQESVN)
	binary.LittleEndian.PutUint16(hdr[10:], p.PCESVN)
	copy(hdr[12:], intelQEVendorID[:])

	mrtd, svn, attr := SimMRTD, SimTEETCBSVN, SimAttributes
	if o.MRTD != nil {
		mrtd = *o.MRTD
	}
	if o.TEETCBSVN != nil {
		svn = *o.TEETCBSVN
	}
	if o.Attributes != nil {
		attr = *o.Attributes
	}
	var body bytes.Buffer
	body.Write(svn[:])
	seam := sha512.Sum384([]byte("sworn simulated TDX module"))
	body.Write(seam[:])
	body.Write(make([]byte, 48)) // MRSIGNERSEAM: Intel's is zero
	body.Write(make([]byte, 8))  // SEAMATTRIBUTES
	binary.Write(&body, binary.LittleEndian, attr)
	binary.Write(&body, binary.LittleEndian, uint64(0x06e7)) // XFAM: x87, SSE, AVX, AVX-512, PK
	body.Write(mrtd[:])
	body.Write(make([]byte, 3*48)) // MRCONFIGID, MROWNER, MROWNERCONFIG
	for _, r := range o.RTMR {
		body.Write(r[:])
	}
	body.Write(o.ReportData[:])
	signed := append(hdr[:], body.Bytes()...)

	sig, err := rawSign(p.akKey, signed)
	if err != nil {
		return nil, err
	}
	ak := p.akKey.PublicKey.X.FillBytes(make([]byte, 32))
	ak = append(ak, p.akKey.PublicKey.Y.FillBytes(make([]byte, 32))...)
	authData := []byte("sworn simulated QE auth data....")

	var qe [qeReportSize]byte
	copy(qe[0:], p.CPUSVN[:])
	copy(qe[48:], simQEAttributes[:])
	mrenclave := sha256.Sum256([]byte("sworn simulated TD QE"))
	copy(qe[64:], mrenclave[:])
	copy(qe[128:], simMRSIGNERQE[:])
	binary.LittleEndian.PutUint16(qe[256:], simQEProdID)
	binary.LittleEndian.PutUint16(qe[258:], simQESVN)
	h := sha256.New()
	h.Write(ak)
	h.Write(authData)
	copy(qe[320:], h.Sum(nil))
	qeSig, err := rawSign(p.pckKey, qe[:])
	if err != nil {
		return nil, err
	}
	ca := simulatedCA()
	var chain []byte
	for _, c := range []*x509.Certificate{p.PCK, ca.ca, ca.root} {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}

	var qeCert bytes.Buffer
	qeCert.Write(qe[:])
	qeCert.Write(qeSig)
	binary.Write(&qeCert, binary.LittleEndian, uint16(len(authData)))
	qeCert.Write(authData)
	binary.Write(&qeCert, binary.LittleEndian, uint16(certTypePCK))
	binary.Write(&qeCert, binary.LittleEndian, uint32(len(chain)))
	qeCert.Write(chain)

	var sd bytes.Buffer
	sd.Write(sig)
	sd.Write(ak)
	binary.Write(&sd, binary.LittleEndian, uint16(certTypeQE))
	binary.Write(&sd, binary.LittleEndian, uint32(qeCert.Len()))
	sd.Write(qeCert.Bytes())

	out := append([]byte{}, signed...)
	out = binary.LittleEndian.AppendUint32(out, uint32(sd.Len()))
	return append(out, sd.Bytes()...), nil
}

// rawSign signs SHA-256(msg) deterministically (RFC 6979) and returns r ‖ s.
func rawSign(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	der, err := k.Sign(nil, d[:], crypto.SHA256) // nil: RFC 6979, deterministic
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	return append(sig.R.FillBytes(make([]byte, 32)), sig.S.FillBytes(make([]byte, 32))...), nil
}

// SimCollateralOptions shape simulated collateral.
type SimCollateralOptions struct {
	// Status is the TCB status of the level the simulated platform meets
	// (default UpToDate); Advisories are its advisory IDs.
	Status     string
	Advisories []string
	// QEStatus is the Quoting Enclave's TCB status (default UpToDate).
	QEStatus string
	// FMSPC overrides the TCB info's FMSPC (default SimFMSPC).
	FMSPC string
	// Revoked lists certificates the CRLs revoke.
	Revoked []*x509.Certificate
	// ValidFor is how long the collateral is valid from issue (default 30 days).
	ValidFor time.Duration
}

// SimCollateral returns collateral for simulated platforms, issued at
// issued, signed under the simulated root.
func SimCollateral(issued time.Time, o SimCollateralOptions) ([]byte, error) {
	if o.Status == "" {
		o.Status = "UpToDate"
	}
	if o.QEStatus == "" {
		o.QEStatus = "UpToDate"
	}
	if o.FMSPC == "" {
		o.FMSPC = SimFMSPC
	}
	if o.ValidFor == 0 {
		o.ValidFor = 30 * 24 * time.Hour
	}
	if o.Advisories == nil {
		o.Advisories = []string{}
	}
	ca := simulatedCA()
	issued = issued.UTC().Truncate(time.Second)
	next := issued.Add(o.ValidFor)
	comps := func(svn []byte) []map[string]any {
		out := make([]map[string]any, 16)
		for i := range out {
			out[i] = map[string]any{"svn": svn[i]}
		}
		return out
	}
	date := issued.Add(-24 * time.Hour).Format(time.RFC3339)
	tcbInfo := map[string]any{
		"id": "TDX", "version": 3, "issueDate": issued.Format(time.RFC3339), "nextUpdate": next.Format(time.RFC3339),
		"fmspc": strings.ToUpper(o.FMSPC), "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17,
		"tdxModule": map[string]any{"mrsigner": strings.Repeat("00", 48), "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF"},
		"tcbLevels": []map[string]any{
			{"tcb": map[string]any{"sgxtcbcomponents": comps(simCPUSVN[:]), "pcesvn": simPCESVN, "tdxtcbcomponents": comps(SimTEETCBSVN[:])},
				"tcbDate": date, "tcbStatus": o.Status, "advisoryIDs": o.Advisories},
			{"tcb": map[string]any{"sgxtcbcomponents": comps(make([]byte, 16)), "pcesvn": 0, "tdxtcbcomponents": comps(make([]byte, 16))},
				"tcbDate": "2020-01-01T00:00:00Z", "tcbStatus": "OutOfDate", "advisoryIDs": []string{"INTEL-SA-SIM"}},
		},
	}
	qeIdentity := map[string]any{
		"id": "TD_QE", "version": 2, "issueDate": issued.Format(time.RFC3339), "nextUpdate": next.Format(time.RFC3339),
		"tcbEvaluationDataNumber": 17, "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
		"attributes": hex.EncodeToString(simQEAttributes[:]), "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
		"mrsigner": strings.ToUpper(hex.EncodeToString(simMRSIGNERQE[:])), "isvprodid": simQEProdID,
		"tcbLevels": []map[string]any{
			{"tcb": map[string]any{"isvsvn": simQESVN}, "tcbDate": date, "tcbStatus": o.QEStatus},
			{"tcb": map[string]any{"isvsvn": 0}, "tcbDate": "2020-01-01T00:00:00Z", "tcbStatus": "OutOfDate"},
		},
	}
	ti, err := json.Marshal(tcbInfo)
	if err != nil {
		return nil, err
	}
	qi, err := json.Marshal(qeIdentity)
	if err != nil {
		return nil, err
	}
	tiSig, err := rawSign(ca.tcbKey, ti)
	if err != nil {
		return nil, err
	}
	qiSig, err := rawSign(ca.tcbKey, qi)
	if err != nil {
		return nil, err
	}
	pckCRL, err := simCRL(ca.ca, ca.caKey, issued, next, o.Revoked)
	if err != nil {
		return nil, err
	}
	rootCRL, err := simCRL(ca.root, ca.rootKey, issued, next, o.Revoked)
	if err != nil {
		return nil, err
	}
	pemOf := func(cs ...*x509.Certificate) string {
		var b []byte
		for _, c := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return string(b)
	}
	c := &Collateral{
		PCKCRLIssuerChain: pemOf(ca.ca, ca.root), RootCACRL: hex.EncodeToString(rootCRL), PCKCRL: hex.EncodeToString(pckCRL),
		TCBInfoIssuerChain: pemOf(ca.tcb, ca.root), TCBInfo: string(ti), TCBInfoSignature: hex.EncodeToString(tiSig),
		QEIdentityIssuerChain: pemOf(ca.tcb, ca.root), QEIdentity: string(qi), QEIdentitySignature: hex.EncodeToString(qiSig),
	}
	return c.Marshal()
}

func simCRL(issuer *x509.Certificate, key *ecdsa.PrivateKey, this, next time.Time, revoked []*x509.Certificate) ([]byte, error) {
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		if bytes.Equal(c.RawIssuer, issuer.RawSubject) {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: this})
		}
	}
	return x509.CreateRevocationList(nil, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: this, NextUpdate: next, RevokedCertificateEntries: entries,
	}, issuer, key)
}

// SimUKISections are the sections of the simulated TD's UKI, in the order
// systemd-stub measures them into RTMR2.
var SimUKISections = []string{".linux", ".osrel", ".cmdline", ".initrd"}

// SimCCEL returns the CCEL event log of the simulated TD's boot (TCG
// crypto-agile, SHA-384, CC MR indices: 1 = RTMR0 … 4 = RTMR3): the
// firmware into RTMR0, then a UKI's sections into RTMR2 as systemd-stub
// measures them; and the RTMRs it replays to.
func SimCCEL() ([]byte, [4][48]byte, error) {
	const (
		evPostCode = 0x00000001
		evIPL      = 0x0000000d
	)
	l := tpm.NewLogBuilder(tpm.SHA384)
	l.Measure(1, evPostCode, []byte("sworn simulated TD firmware"), []byte("sworn simulated TD firmware v1"))
	for _, name := range SimUKISections {
		var data []byte
		for _, r := range name + "\x00" {
			data = binary.LittleEndian.AppendUint16(data, uint16(r))
		}
		nameDigest := sha512.Sum384([]byte(name + "\x00"))
		l.Add(3, evIPL, data, map[tpm.Alg][]byte{tpm.SHA384: nameDigest[:]})
		l.Measure(3, evIPL, data, []byte("sworn simulated UKI section "+name))
	}
	log := l.Bytes()
	mrs, err := tpm.ComputePCRs(log, tpm.SHA384)
	if err != nil {
		return nil, [4][48]byte{}, err
	}
	var rtmr [4][48]byte
	for i := range rtmr {
		copy(rtmr[i][:], mrs[i+1])
	}
	return log, rtmr, nil
}

// SimEvidence returns evidence of the simulated platform: a quote with the
// given REPORTDATA and registers, whose RTMRs (unless o sets them) are
// those of the stapled simulated CCEL, and collateral issued a day before
// at.
func (p *SimPlatform) SimEvidence(o SimQuoteOptions, at time.Time) (*Evidence, error) {
	log, rtmr, err := SimCCEL()
	if err != nil {
		return nil, err
	}
	if o.RTMR == ([4][48]byte{}) {
		o.RTMR = rtmr
	}
	q, err := p.Quote(o)
	if err != nil {
		return nil, err
	}
	c, err := SimCollateral(at.Add(-24*time.Hour), SimCollateralOptions{})
	if err != nil {
		return nil, err
	}
	return &Evidence{Quote: q, Collateral: c, CCEL: log}, nil
}
