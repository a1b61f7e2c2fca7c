package nvgpu

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

	"github.com/sworn-dev/sworn/attest"
)

// The versions a simulated GPU reports.
const (
	SimDriverVersion = "580.95.05"
	SimVBIOSVersion  = "96.00.9F.00.01"
)

var (
	simNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	simDeviceEnd = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	simRIMEnd    = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
	// Hopper driver RIM indexes 7 and 21–40; VBIOS 0–12 except 7.
	simDriverIdx = append([]int{7}, seq(21, 40)...)
	simVBIOSIdx  = append(seq(0, 6), seq(8, 12)...)
)

func seq(a, b int) []int {
	var s []int
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

// simKey derives a P-384 key from a label: deterministic, for simulation only.
func simKey(label string, parts ...[]byte) *ecdsa.PrivateKey {
	for ctr := 0; ; ctr++ {
		h := sha512.New384()
		h.Write([]byte("sworn-sim-nvgpu-key\x00" + label + "\x00" + strconv.Itoa(ctr)))
		for _, p := range parts {
			h.Write(p)
		}
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), h.Sum(nil)); err == nil {
			return k
		}
	}
}

func simDigest(label string, parts ...[]byte) []byte {
	h := sha512.New384()
	h.Write([]byte("sworn-sim-nvgpu\x00" + label))
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// detSigner signs with RFC 6979 deterministic ECDSA, ignoring the given
// randomness.
type detSigner struct{ k *ecdsa.PrivateKey }

func (d detSigner) Public() crypto.PublicKey { return d.k.Public() }
func (d detSigner) Sign(_ io.Reader, digest []byte, o crypto.SignerOpts) ([]byte, error) {
	return d.k.Sign(nil, digest, o)
}

type simCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func simCert(cn string, key *ecdsa.PrivateKey, parent *simCA, isCA bool, end time.Time, exts []pkix.Extension) (*simCA, error) {
	serial := new(big.Int).SetBytes(simDigest("serial", []byte(cn), key.PublicKey.X.Bytes())[:16])
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"sworn SIMULATED NVIDIA"}},
		NotBefore:             simNotBefore,
		NotAfter:              end,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		ExtraExtensions:       exts,
		SignatureAlgorithm:    x509.ECDSAWithSHA384,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	issuer, ikey := tmpl, key
	if parent != nil {
		issuer, ikey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(nil, tmpl, issuer, &key.PublicKey, detSigner{ikey})
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &simCA{cert: c, key: key}, nil
}

// simPKI holds the fixed simulated roots and intermediates.
type simPKI struct {
	devRoot, devIdentity, devICA *simCA
	rimRoot, rimCA, rimL3, rimL4 *simCA
	driverRIM, vbiosRIM          []byte
}

var (
	simOnce sync.Once
	simPKIv *simPKI
	simErr  error
)

func loadSimPKI() (*simPKI, error) {
	simOnce.Do(func() { simPKIv, simErr = buildSimPKI() })
	return simPKIv, simErr
}

func buildSimPKI() (*simPKI, error) {
	p := &simPKI{}
	var err error
	mk := func(cn string, parent *simCA, isCA bool, end time.Time) *simCA {
		if err != nil {
			return nil
		}
		var c *simCA
		c, err = simCert(cn, simKey(cn), parent, isCA, end, nil)
		return c
	}
	p.devRoot = mk("SIMULATED NVIDIA Device Identity CA", nil, true, simDeviceEnd)
	p.devIdentity = mk("SIMULATED NVIDIA GH100 Identity", p.devRoot, true, simDeviceEnd)
	p.devICA = mk("SIMULATED NVIDIA GH100 Provisioner ICA 1", p.devIdentity, true, simDeviceEnd)
	p.rimRoot = mk("SIMULATED NVIDIA CoRIM signing Root CA", nil, true, simRIMEnd)
	p.rimCA = mk("SIMULATED NVIDIA Reference Value GH100 CA", p.rimRoot, true, simRIMEnd)
	p.rimL3 = mk("SIMULATED NVIDIA Reference Value L3 GH100 001", p.rimCA, true, simRIMEnd)
	p.rimL4 = mk("SIMULATED HCC RIM L4 Signer", p.rimL3, false, simRIMEnd)
	if err != nil {
		return nil, fmt.Errorf("simulated GPU PKI: %v", err)
	}
	rimChain := []*x509.Certificate{p.rimL4.cert, p.rimL3.cert, p.rimCA.cert, p.rimRoot.cert}
	if p.driverRIM, err = simRIM(SimDriverVersion, simDriverIdx, p.rimL4.key, rimChain); err != nil {
		return nil, err
	}
	if p.vbiosRIM, err = simRIM(SimVBIOSVersion, simVBIOSIdx, p.rimL4.key, rimChain); err != nil {
		return nil, err
	}
	return p, nil
}

// SimulatedRoots returns the pinned roots of sworn's simulated GPUs. They
// are fixed (independent of any seed), so a policy with
// roots.nvidia: simulated verifies every simulated GPU.
func SimulatedRoots() Roots {
	p, err := loadSimPKI()
	if err != nil {
		// Cannot happen with the standard library; fail closed with a
		// root no chain can have.
		return Roots{Simulated: true}
	}
	return Roots{Device: SPKIOf(p.devRoot.cert), RIM: SPKIOf(p.rimRoot.cert), Simulated: true}
}

// simMeasurement is the value of SPDM block index on every simulated GPU.
func simMeasurement(index int) []byte {
	if index == 1 { // RIM index 0: all zero, as on real Hopper GPUs
		return make([]byte, DigestSize)
	}
	return simDigest("measurement", []byte{byte(index)})
}

// simRIM builds and signs a RIM whose active indexes carry the simulated
// measurements.
func simRIM(version string, active []int, key *ecdsa.PrivateKey, chain []*x509.Certificate) ([]byte, error) {
	doc := etree.NewDocument()
	root := doc.CreateElement("SoftwareIdentity")
	root.CreateAttr("xmlns", nsSWID)
	root.CreateAttr("xmlns:ns0", nsSWID)
	root.CreateAttr("xmlns:ns2", nsHash384)
	root.CreateAttr("name", "GH100")
	root.CreateAttr("tagId", hex.EncodeToString(simDigest("tag", []byte(version))))
	root.CreateAttr("version", "1.0")
	root.CreateAttr("tagVersion", "0")
	ent := root.CreateElement("ns0:Entity")
	ent.CreateAttr("name", "sworn SIMULATED NVIDIA")
	ent.CreateAttr("role", "softwareCreator tagCreator")
	meta := root.CreateElement("ns0:Meta")
	meta.CreateAttr("xmlns:ns1", "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/")
	meta.CreateAttr("colloquialVersion", version)
	meta.CreateAttr("product", "GH100")
	meta.CreateAttr("ns1:FirmwareManufacturerId", "5703")
	pl := root.CreateElement("ns0:Payload")
	isActive := map[int]bool{}
	for _, i := range active {
		isActive[i] = true
	}
	for i := range 64 {
		r := pl.CreateElement("ns0:Resource")
		r.CreateAttr("type", "Measurement")
		r.CreateAttr("index", strconv.Itoa(i))
		r.CreateAttr("active", map[bool]string{true: "True", false: "False"}[isActive[i]])
		r.CreateAttr("alternatives", "1")
		v := make([]byte, DigestSize)
		if isActive[i] {
			v = simMeasurement(i + 1)
		}
		r.CreateAttr("ns2:Hash0", hex.EncodeToString(v))
		r.CreateAttr("name", "Measurement_"+strconv.Itoa(i))
		r.CreateAttr("size", "48")
	}
	c14n := dsig.MakeC14N11Canonicalizer()
	canon, err := c14n.Canonicalize(root)
	if err != nil {
		return nil, err
	}
	digest := sha512.Sum384(canon)

	sig := root.CreateElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", nsDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", algC14N11)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", algECDSA384)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "")
	tr := ref.CreateElement("ds:Transforms")
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", algEnvSig)
	tr.CreateElement("ds:Transform").CreateAttr("Algorithm", algC14N11)
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", algSHA384)
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(digest[:]))

	ctx, err := etreeutils.NSBuildParentContext(si)
	if err != nil {
		return nil, err
	}
	det, err := etreeutils.NSDetatch(ctx, si)
	if err != nil {
		return nil, err
	}
	siCanon, err := c14n.Canonicalize(det)
	if err != nil {
		return nil, err
	}
	raw, err := signRawP384(key, siCanon)
	if err != nil {
		return nil, err
	}
	sig.CreateElement("ds:SignatureValue").SetText(base64.StdEncoding.EncodeToString(raw))
	xd := sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data")
	for _, c := range chain {
		xd.CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(c.Raw))
	}
	return doc.WriteToBytes()
}

// signRawP384 signs SHA-384(msg) deterministically and returns raw r‖s.
func signRawP384(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	d := sha512.Sum384(msg)
	der, err := key.Sign(nil, d[:], crypto.SHA384)
	if err != nil {
		return nil, err
	}
	in := cryptobyte.String(der)
	var seqs cryptobyte.String
	ri, si := new(big.Int), new(big.Int)
	if !in.ReadASN1(&seqs, cbasn1.SEQUENCE) || !seqs.ReadASN1Integer(ri) || !seqs.ReadASN1Integer(si) {
		return nil, fmt.Errorf("bad ECDSA signature encoding")
	}
	return append(ri.FillBytes(make([]byte, 48)), si.FillBytes(make([]byte, 48))...), nil
}

// hopperFWIDExt builds the RIoT composite-device-ID FWID extension.
func hopperFWIDExt(pub *ecdsa.PublicKey, fwid []byte) (pkix.Extension, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return pkix.Extension{}, err
	}
	v, err := asn1.Marshal(struct {
		Version int
		SPKI    asn1.RawValue
		FWID    struct {
			Alg    asn1.ObjectIdentifier
			Digest []byte
		}
	}{
		Version: 1,
		SPKI:    asn1.RawValue{FullBytes: spki},
		FWID: struct {
			Alg    asn1.ObjectIdentifier
			Digest []byte
		}{oidSHA384, fwid},
	})
	return pkix.Extension{Id: oidHopperFWID, Value: v}, err
}

// Simulator makes simulated Hopper GPUs: reports in NVIDIA's exact wire
// format signed by a simulated device chain (with the FWID extension),
// simulated driver and VBIOS RIMs with real XML signatures under a
// simulated RIM root, and OCSP responses. Everything is deterministic
// from the seed; only the roots (SimulatedRoots) are trusted, and only by
// a policy that says roots.nvidia: simulated.
type Simulator struct {
	seed []byte
	// Trailing, when set, appends bytes after each report's signature (for
	// tests of the trailing-bytes policy).
	Trailing []byte
}

// NewSimulator returns a simulator whose per-GPU keys and values derive
// from seed.
func NewSimulator(seed []byte) *Simulator { return &Simulator{seed: bytes.Clone(seed)} }

// Evidence returns the evidence of simulated GPU index answering nonce,
// with OCSP responses valid at the time at (thisUpdate an hour before,
// nextUpdate a week after).
func (s *Simulator) Evidence(index uint32, nonce [NonceSize]byte, at time.Time) (*Evidence, error) {
	p, err := loadSimPKI()
	if err != nil {
		return nil, err
	}
	idx := binary.BigEndian.AppendUint32(nil, index)
	brom, err := simCert("GH100 A01 GSP BROM", simKey("brom", s.seed, idx), p.devICA, true, simDeviceEnd, nil)
	if err != nil {
		return nil, err
	}
	leafKey := simKey("fmc-lf", s.seed, idx)
	fwid := simDigest("fwid", s.seed, idx)
	ext, err := hopperFWIDExt(&leafKey.PublicKey, fwid)
	if err != nil {
		return nil, err
	}
	leaf, err := simCert("GH100 A01 GSP FMC LF", leafKey, brom, false, simDeviceEnd, []pkix.Extension{ext})
	if err != nil {
		return nil, err
	}
	report, err := s.report(leafKey, nonce, fwid, idx)
	if err != nil {
		return nil, err
	}
	ev := &Evidence{
		Report: report,
		Certs:  [][]byte{leaf.cert.Raw, brom.cert.Raw, p.devICA.cert.Raw, p.devIdentity.cert.Raw, p.devRoot.cert.Raw},
		RIMs:   [][]byte{p.driverRIM, p.vbiosRIM},
	}
	pairs := [][2]*simCA{{brom, p.devICA}, {p.devICA, p.devIdentity}, {p.devIdentity, p.devRoot},
		{p.rimL4, p.rimL3}, {p.rimL3, p.rimCA}, {p.rimCA, p.rimRoot}}
	for _, pr := range pairs {
		r, err := ocsp.CreateResponse(pr[1].cert, pr[1].cert, ocsp.Response{
			Status:       ocsp.Good,
			SerialNumber: pr[0].cert.SerialNumber,
			ThisUpdate:   at.Add(-time.Hour).UTC().Truncate(time.Second),
			NextUpdate:   at.Add(7 * 24 * time.Hour).UTC().Truncate(time.Second),
		}, detSigner{pr[1].key})
		if err != nil {
			return nil, err
		}
		ev.OCSP = append(ev.OCSP, r)
	}
	return ev, nil
}

func (s *Simulator) report(key *ecdsa.PrivateKey, nonce [NonceSize]byte, fwid, idx []byte) ([]byte, error) {
	b := []byte{spdmVersion11, codeGetMeasurements, requestParam1SigBit, requestAllMeasuremts}
	b = append(b, nonce[:]...)
	b = append(b, 0) // slot
	b = append(b, spdmVersion11, codeMeasurements, 0, 0, 64)
	l1 := 64 * (blockHeaderSize + dmtfHeaderSize + DigestSize)
	b = append(b, byte(l1), byte(l1>>8), byte(l1>>16))
	for i := 1; i <= 64; i++ {
		b = append(b, byte(i), measurementSpecDMTF)
		b = binary.LittleEndian.AppendUint16(b, dmtfHeaderSize+DigestSize)
		b = append(b, 0x01)
		b = binary.LittleEndian.AppendUint16(b, DigestSize)
		b = append(b, simMeasurement(i)...)
	}
	b = append(b, simDigest("responder-nonce", s.seed, idx, nonce[:])[:NonceSize]...)
	var op []byte
	tlv := func(t OpaqueType, v []byte) {
		op = binary.LittleEndian.AppendUint16(op, uint16(t))
		op = binary.LittleEndian.AppendUint16(op, uint16(len(v)))
		op = append(op, v...)
	}
	tlv(OpaqueVBIOSVersion, []byte{0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0})
	tlv(OpaqueBoardID, []byte{0xb1, 0x03, 0, 0})
	tlv(OpaqueChipSKU, []byte("882\x00\x00\x00\x00\x00\x00"))
	tlv(OpaqueChipSKUMod, []byte("0\x00\x00\x00\x00"))
	tlv(OpaqueProject, []byte("1010\x00"))
	tlv(OpaqueProjectSKU, []byte("0200\x00"))
	tlv(OpaqueProjectSKUMod, []byte{0, 0})
	tlv(OpaqueDriverVersion, []byte(SimDriverVersion+"\x00"))
	tlv(OpaqueGPUInfo, []byte{0x80, 0x01, 0, 0, 0, 0, 0, 0})
	tlv(OpaqueMSRSCNT, make([]byte, opaqueMSRSCNTSize))
	tlv(OpaqueCPRInfo, []byte{0x00, 0xc0, 0x01, 0x00})
	tlv(OpaqueNVDEC0Status, []byte{nvdec0Disabled})
	tlv(OpaqueFWID, fwid)
	tlv(OpaqueProtectedPCIeStatus, []byte{0x55})
	tlv(OpaqueOpaqueDataVersion, []byte{1, 0})
	tlv(OpaqueFeatureFlag, []byte{0, 0})
	b = binary.LittleEndian.AppendUint16(b, uint16(len(op)))
	b = append(b, op...)
	sig, err := signRawP384(key, b)
	if err != nil {
		return nil, err
	}
	b = append(b, sig...)
	return append(b, s.Trailing...), nil
}

// Entries returns n GPU entries, gpu0 … gpu{n-1}, each answering the nonce
// derived from binding (Nonce(binding, i)), with OCSP responses valid at
// the time at. sworn sim boot --gpus N uses it.
func (s *Simulator) Entries(binding attest.Binding, n int, at time.Time) ([]attest.Entry, error) {
	if n < 0 || n > 64 {
		return nil, fmt.Errorf("%d simulated GPUs; 0 to 64 are supported", n)
	}
	var out []attest.Entry
	for i := range n {
		ev, err := s.Evidence(uint32(i), Nonce(binding, uint32(i)), at)
		if err != nil {
			return nil, fmt.Errorf("simulated gpu%d: %v", i, err)
		}
		body, err := ev.Marshal()
		if err != nil {
			return nil, err
		}
		out = append(out, attest.Entry{Kind: attest.KindNVGPU, Device: "gpu" + strconv.Itoa(i), Body: body})
	}
	return out, nil
}
