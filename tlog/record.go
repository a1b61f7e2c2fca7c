package tlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Schema is the schema identifier of every record this package reads.
const Schema = "sworn.dev/record/v1"

// MaxRecordSize bounds a record: a log entry must fit in a tlog-tiles entry
// bundle (16-bit length prefix).
const MaxRecordSize = 1<<16 - 1

// signaturePrefix separates record signatures from any other use of a
// publisher key.
const signaturePrefix = "sworn.dev/record-signature/v1\n"

// RecordType says what a record is.
type RecordType string

// The record types.
const (
	TypeRelease    RecordType = "release"
	TypeRevocation RecordType = "revocation"
	TypeKeyRelease RecordType = "key_release"
)

// Record is one log entry: a release, a revocation or a key-release event,
// signed by a publisher. Its leaf bytes are its canonical JSON encoding
// (see Canonical); exactly one of Release, Revocation and KeyRelease is set,
// matching Type.
type Record struct {
	Schema     string      `json:"schema"`
	Type       RecordType  `json:"type"`
	Release    *Release    `json:"release,omitempty"`
	Revocation *Revocation `json:"revocation,omitempty"`
	KeyRelease *KeyRelease `json:"key_release,omitempty"`
	// Publisher is the key ID of the signing publisher key: "<name>+<hash>"
	// as in its signed-note verifier key.
	Publisher string `json:"publisher"`
	// Signature is the publisher's Ed25519 signature over the signed bytes
	// (see SignedBytes), base64 in JSON. Empty in an unsigned record.
	Signature []byte `json:"signature,omitempty"`
}

// Release is the expected state of a node release: what a node running it
// must measure. Empty lists are not checked.
type Release struct {
	// ID names the release line, e.g. "sworn-node".
	ID string `json:"id"`
	// Version is the version within that line; ID and Version are unique
	// in a log.
	Version string `json:"version"`
	// Created is when the release was made.
	Created time.Time `json:"created"`
	// NotAfter is when the release expires: later nodes running it are
	// contraindicated.
	NotAfter time.Time `json:"not_after"`
	// Components are the digests of the boot and node components, by
	// name: firmware, kernel, initrd, cmdline, uki, node.
	Components []Component `json:"components,omitempty"`
	// Containers are container image digests, by name.
	Containers []Component `json:"containers,omitempty"`
	// TEE holds the expected TEE registers.
	TEE TEE `json:"tee"`
	// PCRs are the expected TPM PCR values.
	PCRs []PCR `json:"pcrs,omitempty"`
	// GPU lists the allowed GPU driver and VBIOS versions.
	GPU GPU `json:"gpu"`
	// Models are the model weight digests this release may serve.
	Models []Component `json:"models,omitempty"`
	// Provenance refers to the build provenance (e.g. a Sigstore bundle).
	Provenance *Provenance `json:"provenance,omitempty"`
}

// Component is a named digest, "sha256:<hex>" (or sha384, sha512).
type Component struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// TEE holds expected CPU TEE registers. Each list allows any of its values.
type TEE struct {
	// SNPMeasurements are allowed SEV-SNP launch measurements (48 bytes).
	SNPMeasurements []HexBytes `json:"snp_measurements,omitempty"`
	// TDX are allowed TDX register sets.
	TDX []TDX `json:"tdx,omitempty"`
}

// TDX is an expected set of TDX measurement registers (48 bytes each). An
// omitted RTMR is not checked.
type TDX struct {
	MRTD  HexBytes   `json:"mrtd"`
	RTMRs []HexBytes `json:"rtmrs,omitempty"`
}

// PCR is an expected TPM PCR value.
type PCR struct {
	Bank   string   `json:"bank"`
	Index  int      `json:"index"`
	Digest HexBytes `json:"digest"`
}

// GPU lists allowed NVIDIA driver and VBIOS versions, and how many GPUs
// the release's machine shape has.
type GPU struct {
	// Count is the number of GPUs a node of this release has: a bundle
	// with another number of GPU entries does not match. Nil: not named.
	Count          *int     `json:"count,omitempty"`
	DriverVersions []string `json:"driver_versions,omitempty"`
	VBIOSVersions  []string `json:"vbios_versions,omitempty"`
}

// Provenance refers to a build provenance document by location and digest.
type Provenance struct {
	URI    string `json:"uri"`
	Digest string `json:"digest"`
}

// Revocation withdraws a release: nodes running it are contraindicated.
type Revocation struct {
	ReleaseID string    `json:"release_id"`
	Version   string    `json:"version"`
	Reason    string    `json:"reason"`
	Created   time.Time `json:"created"`
}

// KeyRelease records that a key broker released a model key to a node.
type KeyRelease struct {
	Model        string    `json:"model"`
	BundleDigest string    `json:"bundle_digest"`
	NodeKey      HexBytes  `json:"node_key"`
	Broker       string    `json:"broker"`
	Created      time.Time `json:"created"`
	// Measurement is the node's CPU TEE launch measurement, Release the
	// node's release ("id@version") and its log index, Nonce the broker's
	// challenge the node's bundle answered.
	Measurement  HexBytes `json:"measurement,omitempty"`
	Release      string   `json:"release,omitempty"`
	ReleaseIndex uint64   `json:"release_index,omitempty"`
	Nonce        HexBytes `json:"nonce,omitempty"`
}

// HexBytes is a byte string written as lowercase hex.
type HexBytes []byte

// MarshalText encodes lowercase hex.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText decodes lowercase hex; upper case is refused so that every
// value has one encoding.
func (h *HexBytes) UnmarshalText(b []byte) error {
	if bytes.ContainsAny(b, "ABCDEF") {
		return fmt.Errorf("hex %q must be lowercase", b)
	}
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("invalid hex %q", b)
	}
	*h = v
	return nil
}

// Key returns "id@version", the unique name of a release.
func (r *Release) Key() string { return r.ID + "@" + r.Version }

// Canonical returns the record's canonical JSON encoding: the log leaf.
func (r *Record) Canonical() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("record is %d bytes encoded; the limit is %d", len(b), MaxRecordSize)
	}
	return b, nil
}

// SignedBytes returns the bytes the publisher signs: a domain separator and
// the canonical encoding of the record without its signature.
func (r *Record) SignedBytes() ([]byte, error) {
	c := *r
	c.Signature = nil
	b, err := c.Canonical()
	if err != nil {
		return nil, err
	}
	return append([]byte(signaturePrefix), b...), nil
}

// Sign sets Publisher to the signer's key ID and signs the record.
func (r *Record) Sign(s note.Signer) error {
	r.Publisher = fmt.Sprintf("%s+%08x", s.Name(), s.KeyHash())
	msg, err := r.SignedBytes()
	if err != nil {
		return err
	}
	sig, err := s.Sign(msg)
	if err != nil {
		return fmt.Errorf("sign record: %v", err)
	}
	r.Signature = sig
	return nil
}

// ErrUnknownPublisher is returned by VerifySignature when no allowed key
// has the record's publisher key ID.
var ErrUnknownPublisher = errors.New("record is signed by a publisher key that is not allowed")

// VerifySignature checks the record's signature with the allowed publisher
// keys.
func (r *Record) VerifySignature(publishers []note.Verifier) (note.Verifier, error) {
	return r.verifySigned(nil, publishers)
}

// verifySigned is VerifySignature with the signed bytes already at hand
// (nil: encode them).
func (r *Record) verifySigned(msg []byte, publishers []note.Verifier) (note.Verifier, error) {
	if len(r.Signature) == 0 {
		return nil, errors.New("record is not signed")
	}
	for _, v := range publishers {
		if !isKeyID(r.Publisher, v) {
			continue
		}
		if msg == nil {
			var err error
			if msg, err = r.SignedBytes(); err != nil {
				return nil, err
			}
		}
		if !v.Verify(msg, r.Signature) {
			return nil, fmt.Errorf("record signature by publisher %s does not verify: the record was altered or signed with another key", r.Publisher)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownPublisher, r.Publisher)
}

// isKeyID reports whether id is v's key ID: fmt.Sprintf("%s+%08x",
// v.Name(), v.KeyHash()), without the formatting.
func isKeyID(id string, v note.Verifier) bool {
	name := v.Name()
	if len(id) != len(name)+9 || id[:len(name)] != name || id[len(name)] != '+' {
		return false
	}
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], v.KeyHash())
	var x [8]byte
	hex.Encode(x[:], h[:])
	return id[len(name)+1:] == string(x[:])
}

// ParseRecord decodes a record strictly: bounded size, no unknown or
// duplicate fields, no trailing data, all fields valid. Any JSON layout is
// accepted; use ParseLeaf for log entries, which must be canonical.
func ParseRecord(data []byte) (*Record, error) {
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("record is %d bytes; the limit is %d", len(data), MaxRecordSize)
	}
	if err := checkJSON(data); err != nil {
		return nil, fmt.Errorf("record: %v", err)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("record: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("record: trailing data after the JSON object")
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("record: %v", err)
	}
	return &r, nil
}

// ParseLeaf decodes a log entry: a signed record in canonical encoding.
//
// It accepts exactly what ParseRecord followed by the canonical-encoding
// check accepts. A canonical leaf is json.Marshal's output for the decoded
// record, and such output always passes checkJSON (its keys are the
// record's lowercase field names, once each, nested a few levels deep), so
// a leaf that decodes strictly, re-encodes to the same bytes and validates
// is accepted without the token walk; anything else goes through the full
// strict path, which gives the precise reason for refusing it.
func ParseLeaf(data []byte) (*Record, error) {
	if r, ok := parseCanonicalLeaf(data); ok {
		return r, nil
	}
	return parseLeafStrict(data)
}

// parseCanonicalLeaf is ParseLeaf's fast path: ok only when data is a
// valid, signed record in canonical encoding.
func parseCanonicalLeaf(data []byte) (*Record, bool) {
	if len(data) > MaxRecordSize || len(data) == 0 || data[0] != '{' {
		return nil, false
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.InputOffset() != int64(len(data)) {
		return nil, false
	}
	if len(r.Signature) == 0 {
		return nil, false
	}
	c, err := r.Canonical()
	if err != nil || !bytes.Equal(c, data) {
		return nil, false
	}
	if r.Validate() != nil {
		return nil, false
	}
	return &r, true
}

// parseLeafStrict is ParseLeaf by the book: strict parsing (checkJSON and
// all), then the canonical-encoding check.
func parseLeafStrict(data []byte) (*Record, error) {
	r, err := ParseRecord(data)
	if err != nil {
		return nil, err
	}
	c, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(c, data) {
		return nil, errors.New("record is not in canonical encoding (compact JSON, fields in schema order, lowercase hex)")
	}
	if len(r.Signature) == 0 {
		return nil, errors.New("record is not signed")
	}
	return r, nil
}

// SignedLeaf is a log entry parsed by ParseSignedLeaf: its record and the
// bytes the record's signature covers.
type SignedLeaf struct {
	// Record is the parsed record. Do not modify it: VerifySignature
	// checks the bytes it was parsed from.
	Record *Record
	signed []byte
}

// ParseSignedLeaf parses a log entry as ParseLeaf does and keeps the bytes
// its signature covers, cut from the canonical leaf rather than encoded a
// second time: the canonical encoding of the record without its signature
// is the leaf with its last field, the signature, left out.
func ParseSignedLeaf(data []byte) (*SignedLeaf, error) {
	r, err := ParseLeaf(data)
	if err != nil {
		return nil, err
	}
	return &SignedLeaf{Record: r, signed: signedBytesOfLeaf(r, data)}, nil
}

// signedBytesOfLeaf returns r.SignedBytes() for a record r whose canonical
// encoding is leaf.
func signedBytesOfLeaf(r *Record, leaf []byte) []byte {
	var suffix []byte
	suffix = append(suffix, `,"signature":"`...)
	suffix = base64.StdEncoding.AppendEncode(suffix, r.Signature)
	suffix = append(suffix, `"}`...)
	if len(r.Signature) == 0 || !bytes.HasSuffix(leaf, suffix) {
		b, err := r.SignedBytes()
		if err != nil {
			return nil
		}
		return b
	}
	body := leaf[:len(leaf)-len(suffix)]
	msg := make([]byte, 0, len(signaturePrefix)+len(body)+1)
	msg = append(msg, signaturePrefix...)
	msg = append(msg, body...)
	return append(msg, '}')
}

// VerifySignature checks the record's signature with the allowed publisher
// keys, as Record.VerifySignature does.
func (l *SignedLeaf) VerifySignature(publishers []note.Verifier) (note.Verifier, error) {
	if l.signed == nil {
		return l.Record.VerifySignature(publishers)
	}
	return l.Record.verifySigned(l.signed, publishers)
}

var (
	keyRE     = regexp.MustCompile(`^[a-z0-9_]+$`)
	digestRE  = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$`)
	tokenRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+:/-]{0,127}$`)
	pubKeyIDs = regexp.MustCompile(`^[^\s+]+\+[0-9a-f]{8}$`)
)

// knownComponents are the component names a release may list.
var knownComponents = []string{"firmware", "kernel", "initrd", "cmdline", "uki", "node"}

// checkJSON walks the JSON tokens: objects must not repeat a key, keys must
// be lowercase field names, and nesting is bounded.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj   bool
		keys  map[string]bool
		isKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.isKey {
			k, ok := tok.(string)
			if !ok { // closing delimiter
				if tok != json.Delim('}') {
					return errors.New("malformed object")
				}
				stack = stack[:len(stack)-1]
				continue
			}
			if !keyRE.MatchString(k) {
				return fmt.Errorf("unknown field %q", k)
			}
			if top.keys[k] {
				return fmt.Errorf("duplicate field %q", k)
			}
			top.keys[k] = true
			top.isKey = false
			continue
		}
		if top != nil && top.obj {
			top.isKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, isKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 16 {
			return errors.New("nested too deeply")
		}
	}
}

// Validate checks that the record is well formed.
func (r *Record) Validate() error {
	if r.Schema != Schema {
		return fmt.Errorf("schema is %q; this sworn reads %q", r.Schema, Schema)
	}
	set := 0
	for _, p := range []bool{r.Release != nil, r.Revocation != nil, r.KeyRelease != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return errors.New("a record holds exactly one of release, revocation, key_release")
	}
	switch r.Type {
	case TypeRelease:
		if r.Release == nil {
			return errors.New(`type is "release" but there is no release object`)
		}
		if err := r.Release.validate(); err != nil {
			return fmt.Errorf("release: %v", err)
		}
	case TypeRevocation:
		if r.Revocation == nil {
			return errors.New(`type is "revocation" but there is no revocation object`)
		}
		v := r.Revocation
		if err := checkToken("revocation.release_id", v.ReleaseID); err != nil {
			return err
		}
		if err := checkToken("revocation.version", v.Version); err != nil {
			return err
		}
		if len(v.Reason) > 1024 {
			return errors.New("revocation.reason is longer than 1024 bytes")
		}
		if v.Created.IsZero() {
			return errors.New("revocation.created is missing")
		}
	case TypeKeyRelease:
		if r.KeyRelease == nil {
			return errors.New(`type is "key_release" but there is no key_release object`)
		}
		k := r.KeyRelease
		if !digestRE.MatchString(k.Model) || !digestRE.MatchString(k.BundleDigest) {
			return errors.New("key_release.model and key_release.bundle_digest must be digests like sha256:<64 hex>")
		}
		if len(k.NodeKey) == 0 || len(k.NodeKey) > 4096 {
			return errors.New("key_release.node_key must be 1 to 4096 bytes")
		}
		if err := checkToken("key_release.broker", k.Broker); err != nil {
			return err
		}
		if k.Created.IsZero() {
			return errors.New("key_release.created is missing")
		}
	default:
		return fmt.Errorf("type %q is unknown (use release, revocation or key_release)", r.Type)
	}
	if r.Publisher != "" && !pubKeyIDs.MatchString(r.Publisher) {
		return fmt.Errorf("publisher %q is not a key ID of the form <name>+<8 hex digits>", r.Publisher)
	}
	if len(r.Signature) > 0 && r.Publisher == "" {
		return errors.New("record has a signature but no publisher")
	}
	if len(r.Signature) > 0 && len(r.Signature) != 64 {
		return fmt.Errorf("signature is %d bytes; an Ed25519 signature is 64", len(r.Signature))
	}
	return nil
}

func checkToken(what, s string) error {
	if !tokenRE.MatchString(s) {
		return fmt.Errorf("%s %q must be 1-128 characters of letters, digits and ._+:/- starting with a letter or digit", what, s)
	}
	return nil
}

func (r *Release) validate() error {
	if err := checkToken("id", r.ID); err != nil {
		return err
	}
	if err := checkToken("version", r.Version); err != nil {
		return err
	}
	if r.Created.IsZero() || r.NotAfter.IsZero() {
		return errors.New("created and not_after are required")
	}
	if !r.NotAfter.After(r.Created) {
		return errors.New("not_after must be later than created")
	}
	names := map[string]bool{}
	for _, c := range r.Components {
		if !slices.Contains(knownComponents, c.Name) {
			return fmt.Errorf("component %q is unknown (known: %s)", c.Name, strings.Join(knownComponents, ", "))
		}
		if names[c.Name] {
			return fmt.Errorf("component %q is listed twice", c.Name)
		}
		names[c.Name] = true
		if !digestRE.MatchString(c.Digest) {
			return fmt.Errorf("component %s: digest %q must be sha256:, sha384: or sha512: and lowercase hex of the right length", c.Name, c.Digest)
		}
	}
	for _, list := range []struct {
		what string
		cs   []Component
	}{{"container", r.Containers}, {"model", r.Models}} {
		for _, c := range list.cs {
			if err := checkToken(list.what+" name", c.Name); err != nil {
				return err
			}
			if !digestRE.MatchString(c.Digest) {
				return fmt.Errorf("%s %s: digest %q must be sha256:, sha384: or sha512: and lowercase hex", list.what, c.Name, c.Digest)
			}
		}
	}
	for i, m := range r.TEE.SNPMeasurements {
		if len(m) != 48 {
			return fmt.Errorf("tee.snp_measurements[%d] is %d bytes; a launch measurement is 48", i, len(m))
		}
	}
	for i, t := range r.TEE.TDX {
		if len(t.MRTD) != 48 {
			return fmt.Errorf("tee.tdx[%d].mrtd is %d bytes; it must be 48", i, len(t.MRTD))
		}
		if len(t.RTMRs) > 4 {
			return fmt.Errorf("tee.tdx[%d] lists %d RTMRs; there are 4", i, len(t.RTMRs))
		}
		for j, v := range t.RTMRs {
			if len(v) != 0 && len(v) != 48 {
				return fmt.Errorf("tee.tdx[%d].rtmrs[%d] is %d bytes; it must be 48 (or empty: not checked)", i, j, len(v))
			}
		}
	}
	for i, p := range r.PCRs {
		want := map[string]int{"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}[p.Bank]
		if want == 0 {
			return fmt.Errorf("pcrs[%d].bank %q is unknown (sha1, sha256, sha384, sha512)", i, p.Bank)
		}
		if p.Index < 0 || p.Index > 23 {
			return fmt.Errorf("pcrs[%d].index %d is not 0..23", i, p.Index)
		}
		if len(p.Digest) != want {
			return fmt.Errorf("pcrs[%d].digest is %d bytes; a %s PCR is %d", i, len(p.Digest), p.Bank, want)
		}
	}
	if c := r.GPU.Count; c != nil && (*c < 0 || *c > MaxGPUs) {
		return fmt.Errorf("gpu.count is %d; it must be 0 to %d", *c, MaxGPUs)
	}
	for _, v := range append(slices.Clone(r.GPU.DriverVersions), r.GPU.VBIOSVersions...) {
		if err := checkToken("gpu version", v); err != nil {
			return err
		}
	}
	if p := r.Provenance; p != nil {
		if p.URI == "" || len(p.URI) > 2048 || !digestRE.MatchString(p.Digest) {
			return errors.New("provenance needs a uri (at most 2048 bytes) and a digest like sha256:<64 hex>")
		}
	}
	return nil
}

// MaxGPUs bounds a release's GPU count.
const MaxGPUs = 64

// Template returns an example release record, unsigned, valid at now.
func Template(now time.Time) *Record {
	now = now.UTC().Truncate(time.Second)
	d := func(s string) string { return "sha256:" + strings.Repeat(s, 64) }
	eight := 8
	m := make(HexBytes, 48)
	for i := range m {
		m[i] = 0xa5
	}
	return &Record{
		Schema: Schema,
		Type:   TypeRelease,
		Release: &Release{
			ID:       "sworn-node",
			Version:  "1.0.0",
			Created:  now,
			NotAfter: now.AddDate(0, 6, 0),
			// Only what a node's evidence measures: every pinned value must
			// be matched by a claim (the UKI from the TPM event log, the
			// node binary from PCR 15).
			Components: []Component{{"uki", d("5")}, {"node", d("6")}},
			TEE:        TEE{SNPMeasurements: []HexBytes{m}},
			PCRs:       []PCR{{Bank: "sha256", Index: 4, Digest: make(HexBytes, 32)}},
			GPU:        GPU{Count: &eight, DriverVersions: []string{"570.133.20"}, VBIOSVersions: []string{"96.00.9f.00.04"}},
			Models:     []Component{{"llama-3.1-8b-instruct", d("8")}},
			Provenance: &Provenance{URI: "https://example.com/provenance/sworn-node-1.0.0.sigstore.json", Digest: d("9")},
		},
	}
}
