package snp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
)

// The simulated platform is a Milan-like chip under sworn's own simulated
// ARK and ASK. Every key is derived from a fixed label (and, for a chip, its
// seed), and every signature is deterministic (RFC 6979), so the same seed
// and time always give the same bytes. The private keys are public by
// construction: simulated evidence proves nothing, and results that trust
// it are marked SIMULATED.
const simProduct = "Milan"

// SimMeasurement is the launch measurement of sworn's simulated guest image.
var SimMeasurement = func() [48]byte { return sha512.Sum384([]byte("sworn simulated launch image v1")) }()

// SimTCB is the TCB the simulated chip reports (bootloader 4, tee 0, snp 22,
// microcode 213 in Milan layout).
const SimTCB = uint64(213)<<56 | uint64(22)<<48 | 4

// SimPolicy is the simulated guest's policy: ABI 0.0, no debug, no
// migration agent, no SMT (bit 17 is reserved and must be one).
const SimPolicy = uint64(1) << 17

var simValidity = struct{ from, to time.Time }{
	time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
}

// simKey derives a P-384 key from a label.
func simKey(label string) *ecdsa.PrivateKey {
	for i := 0; ; i++ {
		d := sha512.Sum384([]byte(fmt.Sprintf("sworn simulated key %d: %s", i, label)))
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), d[:]); err == nil {
			return k
		}
	}
}

type simCA struct {
	arkKey, askKey, asvkKey *ecdsa.PrivateKey
	roots                   *Roots
	pr                      *productRoots
}

var simulatedCA = sync.OnceValue(func() *simCA {
	ca := &simCA{arkKey: simKey("ARK-Milan"), askKey: simKey("ASK-Milan"), asvkKey: simKey("ASVK-Milan")}
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, OrganizationalUnit: []string{"SIMULATED"}, Organization: []string{"sworn"}}
	}
	ca.pr = &productRoots{}
	ark := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: name("ARK-Milan (SIMULATED)"),
		NotBefore: simValidity.from, NotAfter: simValidity.to,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca.pr.ark = mustCert(ark, ark, &ca.arkKey.PublicKey, ca.arkKey)
	ask := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: name("SEV-Milan (SIMULATED)"),
		NotBefore: simValidity.from, NotAfter: simValidity.to,
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, MaxPathLen: 0,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca.pr.ask = mustCert(ask, ca.pr.ark, &ca.askKey.PublicKey, ca.arkKey)
	asvk := *ask
	asvk.SerialNumber, asvk.Subject = big.NewInt(3), name("SEV-VLEK-Milan (SIMULATED)")
	ca.pr.asvk = mustCert(&asvk, ca.pr.ark, &ca.asvkKey.PublicKey, ca.arkKey)
	ca.roots = &Roots{Simulated: true, lines: map[string]*productRoots{simProduct: ca.pr}}
	return ca
})

func mustCert(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) *x509.Certificate {
	der, err := x509.CreateCertificate(nil, tmpl, parent, pub, priv)
	if err != nil {
		panic("snp: simulated certificate: " + err.Error())
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic("snp: simulated certificate: " + err.Error())
	}
	return c
}

// SimulatedRoots returns sworn's simulated AMD roots.
func SimulatedRoots() *Roots { return simulatedCA().roots }

// SimChip is a simulated SEV-SNP chip with its endorsement key: a VCEK,
// or for a chip made by NewSimVLEKChip a cloud provider's VLEK.
type SimChip struct {
	ID   [64]byte
	TCB  uint64
	key  *ecdsa.PrivateKey
	VCEK *x509.Certificate // the VCEK or VLEK certificate
	vlek bool
}

// NewSimChip returns the simulated chip of the given seed, with a VCEK
// certified by the simulated ASK for tcb.
func NewSimChip(seed uint64, tcb uint64) *SimChip { return newSimChip(seed, tcb, false) }

// NewSimVLEKChip returns the simulated chip of the given seed signing with
// a VLEK certified by the simulated ASVK for tcb, as a cloud provider's
// hosts do.
func NewSimVLEKChip(seed uint64, tcb uint64) *SimChip { return newSimChip(seed, tcb, true) }

func newSimChip(seed uint64, tcb uint64, vlek bool) *SimChip {
	ca := simulatedCA()
	c := &SimChip{TCB: tcb, vlek: vlek}
	c.ID = sha512.Sum512(binary.BigEndian.AppendUint64([]byte("sworn simulated chip id"), seed))
	c.key = simKey(fmt.Sprintf("VCEK chip %x tcb %x vlek %v", c.ID[:8], tcb, vlek))
	u8 := func(v uint8) []byte { b, _ := asn1.Marshal(int(v)); return b }
	parts := kds.DecomposeTCBVersion(kds.TCBVersion(tcb))
	ia5, _ := asn1.MarshalWithParams("Milan-B0", "ia5")
	hwid, _ := asn1.Marshal(c.ID[:])
	exts := []pkix.Extension{
		{Id: kds.OidStructVersion, Value: u8(1)},
		{Id: kds.OidProductName1, Value: ia5},
		{Id: kds.OidBlSpl, Value: u8(parts.BlSpl)},
		{Id: kds.OidTeeSpl, Value: u8(parts.TeeSpl)},
		{Id: kds.OidSpl4, Value: u8(parts.Spl4)},
		{Id: kds.OidSpl5, Value: u8(parts.Spl5)},
		{Id: kds.OidSpl6, Value: u8(parts.Spl6)},
		{Id: kds.OidSpl7, Value: u8(parts.Spl7)},
		{Id: kds.OidSnpSpl, Value: u8(parts.SnpSpl)},
		{Id: kds.OidUcodeSpl, Value: u8(parts.UcodeSpl)},
	}
	cn, issuer, issuerKey := "SEV-VCEK", ca.pr.ask, ca.askKey
	if vlek {
		csp, _ := asn1.MarshalWithParams("sworn simulated cloud", "ia5")
		exts = append(exts, pkix.Extension{Id: kds.OidCspID, Value: csp})
		cn, issuer, issuerKey = "SEV-VLEK", ca.pr.asvk, ca.asvkKey
	} else {
		exts = append(exts, pkix.Extension{Id: kds.OidHwid, Value: hwid})
	}
	serial := new(big.Int).SetBytes(c.ID[:8])
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: cn, OrganizationalUnit: []string{"SIMULATED"}, Organization: []string{"sworn"}},
		NotBefore:    simValidity.from, NotAfter: simValidity.to,
		ExtraExtensions: exts,
	}
	c.VCEK = mustCert(tmpl, issuer, &c.key.PublicKey, issuerKey)
	return c
}

// SimReportOptions are the guest-chosen and launch-time fields of a
// simulated report.
type SimReportOptions struct {
	ReportData  [64]byte
	Measurement [48]byte
	HostData    [32]byte
	Policy      uint64 // 0 means SimPolicy
	VMPL        uint32
}

// Report returns a signed, version-3 SEV-SNP report in the hardware's
// binary format.
func (c *SimChip) Report(o SimReportOptions) ([]byte, error) {
	if o.Policy == 0 {
		o.Policy = SimPolicy
	}
	z := func(n int) []byte { return make([]byte, n) }
	r := &spb.Report{
		Version: 3, GuestSvn: 1, Policy: o.Policy, FamilyId: z(16), ImageId: z(16), Vmpl: o.VMPL,
		SignatureAlgo: abi.SignEcdsaP384Sha384, CurrentTcb: c.TCB, PlatformInfo: 1 << 1,
		ReportData: o.ReportData[:], Measurement: o.Measurement[:], HostData: o.HostData[:],
		IdKeyDigest: z(48), AuthorKeyDigest: z(48), ReportId: z(32), ReportIdMa: z(32),
		ReportedTcb: c.TCB, ChipId: c.ID[:], CommittedTcb: c.TCB, LaunchTcb: c.TCB,
		CurrentMajor: 1, CurrentMinor: 55, CurrentBuild: 21, CommittedMajor: 1, CommittedMinor: 55, CommittedBuild: 21,
		Cpuid1EaxFms: abi.MaskedCpuid1EaxFromSevProduct(&spb.SevProduct{Name: spb.SevProduct_SEV_PRODUCT_MILAN}),
		Signature:    z(abi.SignatureSize),
	}
	if c.vlek {
		r.SignerInfo = abi.ComposeSignerInfo(abi.SignerInfo{SigningKey: abi.VlekReportSigner})
	}
	raw, err := abi.ReportToAbiBytes(r)
	if err != nil {
		return nil, fmt.Errorf("simulated report: %v", err)
	}
	digest := sha512.Sum384(abi.SignedComponent(raw))
	der, err := c.key.Sign(nil, digest[:], crypto.SHA384) // nil: RFC 6979, deterministic
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	if err := abi.SetSignature(sig.R, sig.S, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// HCLReport returns an Azure-style HCL report: a signed report whose
// REPORT_DATA is SHA-256(runtimeData) followed by zeros, wrapped with the
// runtime data (see NewRuntimeData). o.ReportData is ignored.
func (c *SimChip) HCLReport(o SimReportOptions, runtimeData []byte) ([]byte, error) {
	if len(runtimeData) == 0 || len(runtimeData) > MaxHCLRuntimeData {
		return nil, fmt.Errorf("runtime data is %d bytes; it must be 1 to %d", len(runtimeData), MaxHCLRuntimeData)
	}
	sum := sha256.Sum256(runtimeData)
	o.ReportData = [64]byte{}
	copy(o.ReportData[:], sum[:])
	raw, err := c.Report(o)
	if err != nil {
		return nil, err
	}
	return wrapHCL(raw, runtimeData), nil
}

// SimCRL returns a CRL issued by the simulated ARK, valid from thisUpdate
// for validFor, listing the given certificates as revoked.
func SimCRL(thisUpdate time.Time, validFor time.Duration, revoked ...*x509.Certificate) ([]byte, error) {
	ca := simulatedCA()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate})
	}
	return x509.CreateRevocationList(nil, &x509.RevocationList{
		Number: big.NewInt(thisUpdate.Unix()), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(validFor),
		RevokedCertificateEntries: entries,
	}, ca.pr.ark, ca.arkKey)
}

// SimEvidence returns the evidence a simulated node staples: the report,
// the VCEK, ASK and ARK, and a fresh CRL.
func (c *SimChip) SimEvidence(o SimReportOptions, at time.Time) (*Evidence, error) {
	raw, err := c.Report(o)
	if err != nil {
		return nil, err
	}
	return c.withCollateral(raw, at)
}

// SimSVSMEvidence is SimEvidence for an SVSM's attestation of its vTPM:
// REPORT_DATA = SHA-512(nonce ‖ manifest) (o.ReportData is ignored) and
// the manifest (the vTPM EK's TPMT_PUBLIC) in the evidence. o.VMPL should
// be 0, as the SVSM's is; tests set others.
func (c *SimChip) SimSVSMEvidence(o SimReportOptions, nonce, manifest []byte, at time.Time) (*Evidence, error) {
	o.ReportData = SVSMReportData(nonce, manifest)
	e, err := c.SimEvidence(o, at)
	if err != nil {
		return nil, err
	}
	e.SVSMManifest = manifest
	return e, nil
}

// SimHCLEvidence is SimEvidence with an HCL report (see HCLReport).
func (c *SimChip) SimHCLEvidence(o SimReportOptions, runtimeData []byte, at time.Time) (*Evidence, error) {
	raw, err := c.HCLReport(o, runtimeData)
	if err != nil {
		return nil, err
	}
	return c.withCollateral(raw, at)
}

func (c *SimChip) withCollateral(raw []byte, at time.Time) (*Evidence, error) {
	crl, err := SimCRL(at.Add(-time.Hour), 7*24*time.Hour)
	if err != nil {
		return nil, err
	}
	ca := simulatedCA()
	ica := ca.pr.ask
	if c.vlek {
		ica = ca.pr.asvk
	}
	return &Evidence{Report: raw, Certs: [][]byte{c.VCEK.Raw, ica.Raw, ca.pr.ark.Raw}, CRLs: [][]byte{crl}}, nil
}
