package attest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/fxamacker/cbor/v2"

	"github.com/sworn-dev/sworn/wire"
)

// BundleVersion is the only bundle format version this package reads and writes.
const BundleVersion = 1

// Size bounds of a bundle. A bundle holds reports, certificate chains, CRLs,
// event logs and RIMs; a few MiB is ample, and anything larger is refused
// before it is parsed.
const (
	MaxBundleSize  = 16 << 20
	MaxEntrySize   = 8 << 20
	MaxEntries     = 64
	MaxReleaseSize = 256 << 10
	maxDeviceName  = 16
	maxCBORNesting = 16
)

// The evidence kinds a bundle may carry.
const (
	KindSNP   = "snp"
	KindTDX   = "tdx"
	KindTPM   = "tpm"
	KindNVGPU = "nvgpu"
)

// knownKinds lists the kinds in appraisal order: CPU TEEs first, because the
// TPM and GPU appraisals use their claims.
var knownKinds = []string{KindSNP, KindTDX, KindTPM, KindNVGPU}

var deviceNameRE = regexp.MustCompile(`^[a-z]+[0-9]+$`)

// devicePrefix is the device name prefix of each kind: rules, ordering and
// cross-device checks rely on the name saying what the device is.
var devicePrefix = map[string]string{KindSNP: "cpu", KindTDX: "cpu", KindTPM: "tpm", KindNVGPU: "gpu"}

// Bundle is the evidence a node staples together so that anyone can verify
// it offline: the node's public keys, the freshness they are bound with, and
// one entry per piece of evidence. It is encoded as deterministic CBOR
// (RFC 8949 §4.2); see docs/bundle.md.
type Bundle struct {
	Version   uint      `cbor:"1,keyasint"`
	Keys      NodeKeys  `cbor:"2,keyasint"`
	Freshness Freshness `cbor:"3,keyasint"`
	Evidence  []Entry   `cbor:"4,keyasint"`
	// Release is the stapled proof that the node's software is a release
	// published in the release log: a C2SP tlog-proof carrying the signed
	// release record (see docs/tlog.md).
	Release []byte `cbor:"5,keyasint,omitempty"`
}

// NodeKeys are the public halves of a node's per-boot keys.
type NodeKeys struct {
	// ReceiptKey is the Ed25519 public key that signs receipts.
	ReceiptKey []byte `cbor:"3,keyasint"`
	// RequestKeys is the node's whole OHTTP key configuration list, as
	// served at /.well-known/ohttp-keys (application/ohttp-keys, RFC 9458
	// §3.2): every key the node decrypts requests with (by default an
	// X-Wing hybrid key and a classical X25519 key), so that the binding
	// attests each of them.
	RequestKeys []byte `cbor:"4,keyasint"`
}

// Entry is one piece of evidence: its kind, the device it describes
// ("cpu0", "tpm0", "gpu0", …) and the kind-specific body.
type Entry struct {
	Kind   string `cbor:"1,keyasint"`
	Device string `cbor:"2,keyasint"`
	Body   []byte `cbor:"3,keyasint"`
}

// Binding returns the binding of the bundle's keys and freshness.
func (b *Bundle) Binding() Binding {
	return ComputeBinding(b.Keys.RequestKeys, b.Keys.ReceiptKey, b.Freshness.Bytes())
}

// Configs decodes the request key configuration list.
func (k NodeKeys) Configs() ([]wire.KeyConfig, error) { return wire.ParseKeyConfigs(k.RequestKeys) }

// Digest returns SHA-256 of the bundle's encoding.
func (b *Bundle) Digest() ([32]byte, error) {
	enc, err := b.Marshal()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(enc), nil
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
	// headMode reads only a bundle's version, ignoring the other fields.
	headMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   maxCBORNesting,
		MaxArrayElements:  1024,
		MaxMapPairs:       256,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	headMode, err = cbor.DecOptions{MaxNestedLevels: maxCBORNesting}.DecMode()
	if err != nil {
		panic(err)
	}
}

// MarshalCBOR encodes v as deterministic CBOR with sworn's encoding options.
// Evidence kinds use it for their entry bodies.
func MarshalCBOR(v any) ([]byte, error) { return encMode.Marshal(v) }

// UnmarshalCBOR decodes data into v strictly: duplicate keys, unknown
// fields, indefinite lengths, trailing bytes and excessive nesting are errors.
func UnmarshalCBOR(data []byte, v any) error {
	rest, err := decMode.UnmarshalFirst(data, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d bytes after the CBOR item", len(rest))
	}
	return nil
}

// Bytes is a byte string field of an entry body that decodes without a
// copy: after UnmarshalCBOR it aliases the decoded input, which must not
// change while the value is in use. Evidence kinds use it for their large
// fields (a quote, stapled collateral), which a verifier reads but does
// not keep. It encodes as any []byte does.
type Bytes []byte

// UnmarshalCBOR sets b to the content of data, a CBOR byte string of
// definite length, without copying it.
func (b *Bytes) UnmarshalCBOR(data []byte) error {
	if len(data) == 0 || data[0]>>5 != 2 {
		return errors.New("not a CBOR byte string")
	}
	n, head := uint64(data[0]&0x1f), 1
	if n >= 24 {
		if n > 27 {
			return errors.New("not a definite-length CBOR byte string")
		}
		head += 1 << (n - 24)
		if len(data) < head {
			return errors.New("truncated CBOR byte string head")
		}
		n = 0
		for _, c := range data[1:head] {
			n = n<<8 | uint64(c)
		}
	}
	if n != uint64(len(data)-head) {
		return fmt.Errorf("CBOR byte string announces %d bytes, %d there", n, len(data)-head)
	}
	*b = data[head:len(data):len(data)]
	return nil
}

// Marshal validates the bundle and encodes it.
func (b *Bundle) Marshal() ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return MarshalCBOR(b)
}

// ErrNotBundle is returned (wrapped) by ParseBundle when the input is not a
// CBOR-encoded sworn bundle at all.
var ErrNotBundle = errors.New("not a sworn bundle")

// ParseBundle decodes and validates a bundle.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("bundle is %d bytes; the limit is %d", len(data), MaxBundleSize)
	}
	if len(data) == 0 || data[0]&0xe0 != 0xa0 { // a CBOR map
		return nil, fmt.Errorf("%w: it does not start with a CBOR map", ErrNotBundle)
	}
	// Check the version before the full decode, so a future format gets a
	// clear error rather than "unknown field".
	var head struct {
		Version uint `cbor:"1,keyasint"`
	}
	if _, err := headMode.UnmarshalFirst(data, &head); err != nil {
		return nil, fmt.Errorf("bundle is truncated or malformed: %v", err)
	}
	if head.Version != BundleVersion {
		return nil, fmt.Errorf("bundle format version %d is not supported (this sworn reads version %d); upgrade sworn", head.Version, BundleVersion)
	}
	var b Bundle
	if err := UnmarshalCBOR(data, &b); err != nil {
		return nil, fmt.Errorf("bundle is malformed: %v", err)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	// Only the deterministic encoding is accepted, so that a bundle's
	// digest is the digest of the bytes received.
	if enc, err := MarshalCBOR(&b); err != nil || !bytes.Equal(enc, data) {
		return nil, errors.New("bundle is not in deterministic CBOR encoding (RFC 8949 §4.2); re-encode it")
	}
	return &b, nil
}

// Validate checks the bundle's structure (not its evidence).
func (b *Bundle) Validate() error {
	if b.Version != BundleVersion {
		return fmt.Errorf("bundle format version %d is not supported (this sworn reads version %d)", b.Version, BundleVersion)
	}
	if err := b.Keys.Validate(); err != nil {
		return err
	}
	if err := b.Freshness.Validate(); err != nil {
		return fmt.Errorf("bundle freshness: %v", err)
	}
	if len(b.Evidence) == 0 {
		return errors.New("bundle has no evidence")
	}
	if len(b.Evidence) > MaxEntries {
		return fmt.Errorf("bundle has %d evidence entries; the limit is %d", len(b.Evidence), MaxEntries)
	}
	if len(b.Release) > MaxReleaseSize {
		return fmt.Errorf("bundle release proof is %d bytes; the limit is %d", len(b.Release), MaxReleaseSize)
	}
	seen := map[string]bool{}
	for i, e := range b.Evidence {
		if !slices.Contains(knownKinds, e.Kind) {
			return fmt.Errorf("evidence entry %d has unknown kind %q (known: %v); upgrade sworn or remove the entry", i, e.Kind, knownKinds)
		}
		if len(e.Device) > maxDeviceName || !deviceNameRE.MatchString(e.Device) {
			return fmt.Errorf("evidence entry %d has invalid device name %q (want e.g. cpu0, tpm0, gpu3)", i, e.Device)
		}
		if p := devicePrefix[e.Kind]; !strings.HasPrefix(e.Device, p) || !unicode.IsDigit(rune(e.Device[len(p)])) {
			return fmt.Errorf("evidence entry %d is %s evidence named %q; %s devices are named %s0, %s1, …", i, e.Kind, e.Device, e.Kind, p, p)
		}
		if seen[e.Device] {
			return fmt.Errorf("evidence entry %d repeats device %q", i, e.Device)
		}
		seen[e.Device] = true
		if len(e.Body) == 0 || len(e.Body) > MaxEntrySize {
			return fmt.Errorf("evidence entry %d (%s) body is %d bytes; it must be 1 to %d", i, e.Device, len(e.Body), MaxEntrySize)
		}
	}
	return nil
}

// Validate checks that the keys are well-formed public keys.
func (k NodeKeys) Validate() error {
	if _, err := k.Configs(); err != nil {
		return fmt.Errorf("request keys: %v", err)
	}
	if len(k.ReceiptKey) != ed25519.PublicKeySize {
		return fmt.Errorf("receipt key is %d bytes, want a %d-byte Ed25519 public key", len(k.ReceiptKey), ed25519.PublicKeySize)
	}
	return nil
}
