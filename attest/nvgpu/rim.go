package nvgpu

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// RIM limits.
const (
	// MaxRIMSize bounds a RIM document (NVIDIA's are about 20 KiB).
	MaxRIMSize = 1 << 20
	// MaxRIMEntries bounds the measurement entries of a RIM.
	MaxRIMEntries = 256
	// MaxAlternatives bounds the alternative hashes of one entry.
	MaxAlternatives = 16
	maxXMLDepth     = 16
)

// XML namespaces and algorithms of NVIDIA RIMs.
const (
	nsSWID      = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsHash384   = "http://www.w3.org/2001/04/xmlenc#sha384"
	algC14N11   = "http://www.w3.org/2006/12/xml-c14n11"
	algECDSA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
	algSHA384   = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	algEnvSig   = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
)

// RIMEntry is one reference measurement of a RIM.
type RIMEntry struct {
	// Index is the RIM index; it is compared with SPDM block Index+1.
	Index int
	// Active says whether the entry must be compared (active="True").
	Active bool
	Name   string
	Size   int
	// Hashes are the acceptable values (Hash0 … Hash{alternatives-1}).
	Hashes [][]byte
}

// RIM is a parsed NVIDIA Reference Integrity Manifest (SWID tag with an
// enveloped XML signature). Its fields come from the signed document;
// VerifyRIM checks that signature.
type RIM struct {
	TagID             string
	Product           string
	ColloquialVersion string
	// FirmwareManufacturerID is Meta/@FirmwareManufacturerId (oemid).
	FirmwareManufacturerID string
	Entries                []RIMEntry
	// Certs is the signer chain from KeyInfo, leaf first.
	Certs []*x509.Certificate

	root        *etree.Element // the document element
	sig         *etree.Element // its Signature child
	signedInfo  *etree.Element
	digestValue []byte
	sigValue    []byte
	raw         []byte
}

// Raw returns the document as given.
func (r *RIM) Raw() []byte { return r.raw }

// ParseRIM parses a RIM: well-formed XML with no DTD, a SoftwareIdentity
// root with exactly one enveloped ds:Signature child (inclusive C14N 1.1,
// ECDSA-SHA384, one Reference to the whole document with SHA-384), the
// signer chain in KeyInfo, one Meta and one Payload of Resource entries.
func ParseRIM(data []byte) (*RIM, error) {
	if len(data) > MaxRIMSize {
		return nil, fmt.Errorf("RIM is %d bytes; the limit is %d", len(data), MaxRIMSize)
	}
	doc := etree.NewDocument()
	doc.ReadSettings.PreserveCData = true
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("RIM is not well-formed XML: %v", err)
	}
	for _, t := range doc.Child {
		if _, ok := t.(*etree.Directive); ok {
			return nil, errors.New("RIM has a DTD or other <! directive; RIMs must not have one")
		}
	}
	root := doc.Root()
	if root == nil {
		return nil, errors.New("RIM has no document element")
	}
	if err := checkDepth(root, 0); err != nil {
		return nil, err
	}
	if root.Tag != "SoftwareIdentity" || root.NamespaceURI() != nsSWID {
		return nil, fmt.Errorf("RIM document element is <%s> in %q, not a SWID SoftwareIdentity", root.FullTag(), root.NamespaceURI())
	}
	r := &RIM{root: root, raw: bytes.Clone(data), TagID: root.SelectAttrValue("tagId", "")}

	var metas, payloads, sigs []*etree.Element
	for _, c := range root.ChildElements() {
		switch {
		case c.NamespaceURI() == nsSWID && c.Tag == "Meta":
			metas = append(metas, c)
		case c.NamespaceURI() == nsSWID && c.Tag == "Payload":
			payloads = append(payloads, c)
		case c.NamespaceURI() == nsDSig && c.Tag == "Signature":
			sigs = append(sigs, c)
		}
	}
	if len(metas) != 1 || len(payloads) != 1 || len(sigs) != 1 {
		return nil, fmt.Errorf("RIM has %d Meta, %d Payload and %d Signature elements; it needs exactly one of each", len(metas), len(payloads), len(sigs))
	}
	for _, a := range metas[0].Attr {
		switch a.Key {
		case "colloquialVersion":
			r.ColloquialVersion = strings.TrimSpace(a.Value)
		case "product":
			r.Product = a.Value
		case "FirmwareManufacturerId":
			r.FirmwareManufacturerID = a.Value
		}
	}
	if r.ColloquialVersion == "" {
		return nil, errors.New("RIM Meta has no colloquialVersion")
	}
	if err := r.parsePayload(payloads[0]); err != nil {
		return nil, err
	}
	if err := r.parseSignature(sigs[0]); err != nil {
		return nil, fmt.Errorf("RIM signature element: %v", err)
	}
	return r, nil
}

func checkDepth(el *etree.Element, d int) error {
	if d > maxXMLDepth {
		return fmt.Errorf("RIM nests elements deeper than %d", maxXMLDepth)
	}
	for _, c := range el.ChildElements() {
		if err := checkDepth(c, d+1); err != nil {
			return err
		}
	}
	return nil
}

func (r *RIM) parsePayload(p *etree.Element) error {
	seen := map[int]bool{}
	for _, c := range p.ChildElements() {
		if c.NamespaceURI() != nsSWID || c.Tag != "Resource" {
			return fmt.Errorf("RIM Payload holds <%s>; only Resource entries are allowed", c.FullTag())
		}
		if len(r.Entries) == MaxRIMEntries {
			return fmt.Errorf("RIM has more than %d entries", MaxRIMEntries)
		}
		var e RIMEntry
		var err error
		if e.Index, err = strconv.Atoi(c.SelectAttrValue("index", "")); err != nil || e.Index < 0 || e.Index > 255 {
			return fmt.Errorf("RIM Resource has index %q; it must be 0 to 255", c.SelectAttrValue("index", ""))
		}
		if seen[e.Index] {
			return fmt.Errorf("RIM index %d appears twice", e.Index)
		}
		seen[e.Index] = true
		switch v := c.SelectAttrValue("active", ""); v {
		case "True":
			e.Active = true
		case "False":
		default:
			return fmt.Errorf("RIM index %d has active=%q; it must be True or False", e.Index, v)
		}
		e.Name = c.SelectAttrValue("name", "")
		if e.Size, err = strconv.Atoi(c.SelectAttrValue("size", "")); err != nil {
			return fmt.Errorf("RIM index %d has size %q, not a number", e.Index, c.SelectAttrValue("size", ""))
		}
		n, err := strconv.Atoi(c.SelectAttrValue("alternatives", ""))
		if err != nil || n < 1 || n > MaxAlternatives {
			return fmt.Errorf("RIM index %d has alternatives=%q; it must be 1 to %d", e.Index, c.SelectAttrValue("alternatives", ""), MaxAlternatives)
		}
		hashes := map[string]string{}
		for _, a := range c.Attr {
			if a.NamespaceURI() == nsHash384 {
				hashes[a.Key] = a.Value
			}
		}
		if len(hashes) != n {
			return fmt.Errorf("RIM index %d declares %d alternatives but has %d SHA-384 hash attributes", e.Index, n, len(hashes))
		}
		for i := range n {
			h, ok := hashes["Hash"+strconv.Itoa(i)]
			if !ok {
				return fmt.Errorf("RIM index %d has no Hash%d", e.Index, i)
			}
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != DigestSize {
				return fmt.Errorf("RIM index %d Hash%d is not %d bytes of hex", e.Index, i, DigestSize)
			}
			e.Hashes = append(e.Hashes, b)
		}
		r.Entries = append(r.Entries, e)
	}
	return nil
}

// child returns the only child element with the given local name in the
// XML-DSig namespace.
func child(el *etree.Element, tag string) (*etree.Element, error) {
	var found *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == nsDSig {
			if found != nil {
				return nil, fmt.Errorf("<%s> has two <%s> children", el.Tag, tag)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("<%s> has no <%s>", el.Tag, tag)
	}
	return found, nil
}

func algorithm(el *etree.Element, tag, want string) error {
	c, err := child(el, tag)
	if err != nil {
		return err
	}
	if got := c.SelectAttrValue("Algorithm", ""); got != want {
		return fmt.Errorf("%s is %q; only %q is accepted", tag, got, want)
	}
	return nil
}

func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
}

func (r *RIM) parseSignature(sig *etree.Element) error {
	r.sig = sig
	si, err := child(sig, "SignedInfo")
	if err != nil {
		return err
	}
	r.signedInfo = si
	if err := algorithm(si, "CanonicalizationMethod", algC14N11); err != nil {
		return err
	}
	if err := algorithm(si, "SignatureMethod", algECDSA384); err != nil {
		return err
	}
	ref, err := child(si, "Reference")
	if err != nil {
		return err
	}
	if uri := ref.SelectAttr("URI"); uri == nil || uri.Value != "" {
		return errors.New(`the Reference must have URI="" (the whole document)`)
	}
	tr, err := child(ref, "Transforms")
	if err != nil {
		return err
	}
	var algs []string
	for _, c := range tr.ChildElements() {
		if c.Tag != "Transform" || c.NamespaceURI() != nsDSig || len(c.ChildElements()) != 0 {
			return fmt.Errorf("unexpected <%s> in Transforms", c.FullTag())
		}
		algs = append(algs, c.SelectAttrValue("Algorithm", ""))
	}
	if len(algs) != 2 || algs[0] != algEnvSig || algs[1] != algC14N11 {
		return fmt.Errorf("transforms are %q; only enveloped-signature then C14N 1.1 are accepted", algs)
	}
	if err := algorithm(ref, "DigestMethod", algSHA384); err != nil {
		return err
	}
	dv, err := child(ref, "DigestValue")
	if err != nil {
		return err
	}
	if r.digestValue, err = decodeB64(dv.Text()); err != nil || len(r.digestValue) != 48 {
		return errors.New("DigestValue is not 48 bytes of base64")
	}
	sv, err := child(sig, "SignatureValue")
	if err != nil {
		return err
	}
	if r.sigValue, err = decodeB64(sv.Text()); err != nil || len(r.sigValue) != SignatureSize {
		return fmt.Errorf("SignatureValue is not %d bytes of base64 (raw r‖s)", SignatureSize)
	}
	ki, err := child(sig, "KeyInfo")
	if err != nil {
		return err
	}
	xd, err := child(ki, "X509Data")
	if err != nil {
		return err
	}
	var ders [][]byte
	for _, c := range xd.ChildElements() {
		if c.Tag != "X509Certificate" || c.NamespaceURI() != nsDSig {
			continue
		}
		d, err := decodeB64(c.Text())
		if err != nil {
			return fmt.Errorf("X509Certificate %d is not base64: %v", len(ders), err)
		}
		ders = append(ders, d)
	}
	if r.Certs, err = ParseDERChain(ders); err != nil {
		return fmt.Errorf("KeyInfo: %v", err)
	}
	return nil
}

// canonicalDocument returns C14N 1.1 of the document without its Signature
// (the enveloped-signature transform).
func (r *RIM) canonicalDocument() ([]byte, error) {
	cp := r.root.Copy()
	var removed bool
	for _, c := range cp.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == nsDSig {
			cp.RemoveChild(c)
			removed = true
			break
		}
	}
	if !removed {
		return nil, errors.New("signature element not found")
	}
	return dsig.MakeC14N11Canonicalizer().Canonicalize(cp)
}

// canonicalSignedInfo returns C14N 1.1 of SignedInfo as a document subset:
// it carries every namespace declaration in scope.
func (r *RIM) canonicalSignedInfo() ([]byte, error) {
	ctx, err := etreeutils.NSBuildParentContext(r.signedInfo)
	if err != nil {
		return nil, err
	}
	d, err := etreeutils.NSDetatch(ctx, r.signedInfo)
	if err != nil {
		return nil, err
	}
	return dsig.MakeC14N11Canonicalizer().Canonicalize(d)
}

// CheckSignature verifies the RIM's XML signature: the SHA-384 digest of
// the canonical document without its signature must equal DigestValue, and
// the ECDSA P-384 signature (raw r‖s) over the canonical SignedInfo must
// verify with the KeyInfo leaf's key. It does not check the chain.
func (r *RIM) CheckSignature() error {
	doc, err := r.canonicalDocument()
	if err != nil {
		return fmt.Errorf("canonicalizing the RIM: %v", err)
	}
	d := sha512.Sum384(doc)
	if subtle.ConstantTimeCompare(d[:], r.digestValue) != 1 {
		return errors.New("RIM content does not match its signed digest: the document was edited after signing")
	}
	si, err := r.canonicalSignedInfo()
	if err != nil {
		return fmt.Errorf("canonicalizing SignedInfo: %v", err)
	}
	pub, ok := r.Certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return fmt.Errorf("RIM signer %q does not hold a P-384 key", r.Certs[0].Subject.CommonName)
	}
	if !verifyRawP384(pub, si, r.sigValue) {
		return fmt.Errorf("RIM signature does not verify with the key of signer %q", r.Certs[0].Subject.CommonName)
	}
	return nil
}

// VerifyRIM checks a RIM's XML signature and its signer chain to the pinned
// RIM root at the time at. It returns the chain's earliest expiry.
func VerifyRIM(r *RIM, pin SPKIHash, at time.Time) (time.Time, error) {
	return (*Cache)(nil).checkRIM(r, pin, at)
}

// checkRIM is VerifyRIM with the signer chain verified through the cache.
func (c *Cache) checkRIM(r *RIM, pin SPKIHash, at time.Time) (time.Time, error) {
	if err := r.CheckSignature(); err != nil {
		return time.Time{}, err
	}
	exp, err := c.verifyChain(r.Certs, pin, at)
	if err != nil {
		return time.Time{}, fmt.Errorf("RIM signer chain: %v", err)
	}
	return exp, nil
}

// DriverRIMID returns the id of the driver RIM that matches a report:
// NV_GPU_DRIVER_GH100_<driver> (Hopper) or NV_GPU_CC_DRIVER_<CHIP_INFO>_<driver>
// (Blackwell; GB100 when CHIP_INFO is absent).
func DriverRIMID(o Opaque, arch Arch) string {
	if arch == Blackwell {
		chip := o.ChipInfo()
		if chip == "" {
			chip = "GB100"
		}
		return "NV_GPU_CC_DRIVER_" + strings.ToUpper(chip) + "_" + o.DriverVersion()
	}
	return "NV_GPU_DRIVER_GH100_" + o.DriverVersion()
}

// VBIOSRIMID returns the id of the VBIOS RIM that matches a report:
// NV_GPU_VBIOS_<PROJECT>_<PROJECT_SKU>_<CHIP_SKU>_<VBIOS, no dots>.
func VBIOSRIMID(o Opaque) string {
	up := func(t OpaqueType) string { return strings.ToUpper(o.String(t)) }
	return fmt.Sprintf("NV_GPU_VBIOS_%s_%s_%s_%s", up(OpaqueProject), up(OpaqueProjectSKU), up(OpaqueChipSKU),
		strings.ReplaceAll(o.VBIOSVersion(), ".", ""))
}

// Mismatch is one reference measurement that the report does not meet.
type Mismatch struct {
	Source  string // "driver" or "vbios"
	Index   int    // RIM index; the SPDM block is Index+1
	Golden  [][]byte
	Runtime []byte
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s RIM index %d (report block %d): measured %x, expected one of %d value(s)", m.Source, m.Index, m.Index+1, m.Runtime, len(m.Golden))
}

// Comparison is the outcome of CompareMeasurements.
type Comparison struct {
	Compared   int
	Skipped    []int // indexes skipped (NVDEC0 disabled)
	Mismatches []Mismatch
}

// CompareMeasurements matches the active entries of the driver and VBIOS
// RIMs (either may be nil) against the report: RIM index i against SPDM
// block i+1, any alternative hash matching, index 35 skipped when NVDEC0 is
// disabled. An index active in both RIMs is an error, as is an active index
// the report does not have.
func CompareMeasurements(rep *Report, driver, vbios *RIM) (Comparison, error) {
	var c Comparison
	active := map[int]string{}
	type src struct {
		name string
		rim  *RIM
	}
	for _, s := range []src{{"driver", driver}, {"vbios", vbios}} {
		if s.rim == nil {
			continue
		}
		for _, e := range s.rim.Entries {
			if !e.Active {
				continue
			}
			if other, ok := active[e.Index]; ok {
				return c, fmt.Errorf("index %d is active in both the %s and the %s RIM", e.Index, other, s.name)
			}
			active[e.Index] = s.name
			if e.Index == 35 && rep.Response.Opaque.NVDEC0Disabled() {
				c.Skipped = append(c.Skipped, e.Index)
				continue
			}
			if e.Size != DigestSize {
				return c, fmt.Errorf("%s RIM index %d has size %d; only %d-byte SHA-384 values are compared", s.name, e.Index, e.Size, DigestSize)
			}
			m := rep.Measurement(e.Index + 1)
			if m == nil {
				return c, fmt.Errorf("%s RIM index %d has no block %d in the report", s.name, e.Index, e.Index+1)
			}
			c.Compared++
			ok := false
			for _, h := range e.Hashes {
				if bytes.Equal(h, m) {
					ok = true
					break
				}
			}
			if !ok {
				c.Mismatches = append(c.Mismatches, Mismatch{Source: s.name, Index: e.Index, Golden: e.Hashes, Runtime: m})
			}
		}
	}
	return c, nil
}
