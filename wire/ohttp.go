package wire

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sworn-dev/sworn/internal/verifycache"
)

// The HPKE info and export labels of RFC 9458 §4.3 and §4.4 and of
// draft-ietf-ohai-chunked-ohttp-08 §6.
const (
	labelRequest         = "message/bhttp request"
	labelResponse        = "message/bhttp response"
	labelChunkedRequest  = "message/bhttp chunked request"
	labelChunkedResponse = "message/bhttp chunked response"
)

// MaxMessage bounds an encapsulated request or response that is not
// chunked (and each chunk of a chunked one is bounded by MaxChunk).
const MaxMessage = 16 << 20

// Errors a gateway distinguishes. Each is wrapped with the details.
var (
	// ErrUnknownKey: the request names a key id or KEM this gateway does
	// not hold (RFC 9458 §5.2: answer 422 or 400).
	ErrUnknownKey = errors.New("the request is encrypted to a key this node does not hold")
	// ErrSuite: the request's KDF/AEAD is not offered by the key.
	ErrSuite = errors.New("the request's symmetric suite is not offered by the key")
	// ErrDecrypt: a ciphertext does not open (tampered, truncated, or for
	// another key).
	ErrDecrypt = errors.New("the message does not decrypt: it was altered, truncated or encrypted to another key")
	// ErrMalformed: the framing is wrong.
	ErrMalformed = errors.New("the message is malformed")
	// ErrReplay: the request was seen before inside the replay window.
	ErrReplay = errors.New("the request was already received: a replay")
)

// Header is the header of an encapsulated request (RFC 9458 §4.3):
// key_id(8) kem_id(16) kdf_id(16) aead_id(16).
type Header struct {
	KeyID uint8
	KEM   uint16
	Suite Suite
}

const headerSize = 7

func (h Header) marshal() []byte {
	b := []byte{h.KeyID}
	b = binary.BigEndian.AppendUint16(b, h.KEM)
	b = binary.BigEndian.AppendUint16(b, h.Suite.KDF)
	return binary.BigEndian.AppendUint16(b, h.Suite.AEAD)
}

func parseHeader(b []byte) (Header, error) {
	if len(b) < headerSize {
		return Header{}, fmt.Errorf("%w: %d bytes; an encapsulated request starts with a 7-byte header", ErrMalformed, len(b))
	}
	return Header{KeyID: b[0], KEM: binary.BigEndian.Uint16(b[1:]), Suite: Suite{binary.BigEndian.Uint16(b[3:]), binary.BigEndian.Uint16(b[5:])}}, nil
}

// ParseHeader decodes the header of an encapsulated request, and the
// length of its encapsulated key, without decrypting anything (for sworn
// inspect and for routing).
func ParseHeader(encapsulated []byte) (h Header, encSize int, err error) {
	h, err = parseHeader(encapsulated)
	if err != nil {
		return h, 0, err
	}
	k, err := kemByID(h.KEM)
	if err != nil {
		return h, 0, fmt.Errorf("%w: %v", ErrUnknownKey, err)
	}
	return h, k.encSize, nil
}

func info(label string, hdr []byte) []byte {
	b := append([]byte(label), 0)
	return append(b, hdr...)
}

// ClientContext is what a client keeps of a request to open its response.
type ClientContext struct {
	enc, secret []byte
	si          suiteInfo
}

// EncapsulateRequest encrypts a Binary HTTP request to a key configuration
// with the given suite, and returns the message/ohttp-req body and the
// context that opens the response.
func EncapsulateRequest(c KeyConfig, s Suite, request []byte) ([]byte, *ClientContext, error) {
	hdr, enc, sender, si, err := setupSender(c, s, labelRequest)
	if err != nil {
		return nil, nil, err
	}
	ct, err := sender.Seal(nil, request)
	if err != nil {
		return nil, nil, err
	}
	secret, err := sender.Export(labelResponse, si.secretN)
	if err != nil {
		return nil, nil, err
	}
	out := make([]byte, 0, len(hdr)+len(enc)+len(ct))
	out = append(append(append(out, hdr...), enc...), ct...)
	return out, &ClientContext{enc: enc, secret: secret, si: si}, nil
}

func setupSender(c KeyConfig, s Suite, label string) (hdr, enc []byte, sender *hpke.Sender, si suiteInfo, err error) {
	if !c.Supports(s) {
		return nil, nil, nil, si, fmt.Errorf("%w: key %d offers %v, not %s", ErrSuite, c.ID, c.Suites, s)
	}
	k, err := kemByID(c.KEM)
	if err != nil {
		return nil, nil, nil, si, err
	}
	if si, err = suiteByID(s); err != nil {
		return nil, nil, nil, si, err
	}
	pk, err := parsePublicKey(c.KEM, c.PublicKey, k.kem)
	if err != nil {
		return nil, nil, nil, si, fmt.Errorf("key %d: %v", c.ID, err)
	}
	hdr = Header{KeyID: c.ID, KEM: c.KEM, Suite: s}.marshal()
	enc, sender, err = hpke.NewSender(pk, si.kdf, si.aead, info(label, hdr))
	return hdr, enc, sender, si, err
}

// publicKeys keeps the node keys parsed, by KEM and bytes: parsing an
// X-Wing key expands its ML-KEM matrix, which a client sending many
// requests to one node need not repeat for each.
var publicKeys verifycache.Parsed[hpke.PublicKey]

func parsePublicKey(kem uint16, pub []byte, k hpke.KEM) (hpke.PublicKey, error) {
	pk, err := publicKeys.Get(append(binary.BigEndian.AppendUint16(nil, kem), pub...), func([]byte) (*hpke.PublicKey, error) {
		pk, err := k.NewPublicKey(pub)
		return &pk, err
	})
	if err != nil {
		return nil, err
	}
	return *pk, nil
}

// OpenResponse decrypts a message/ohttp-res body.
func (c *ClientContext) OpenResponse(encapsulated []byte) ([]byte, error) {
	if len(encapsulated) > MaxMessage {
		return nil, fmt.Errorf("%w: response of %d bytes exceeds %d", ErrMalformed, len(encapsulated), MaxMessage)
	}
	if len(encapsulated) < c.si.secretN {
		return nil, fmt.Errorf("%w: response shorter than its %d-byte nonce", ErrMalformed, c.si.secretN)
	}
	aead, nonce, err := responseAEAD(c.si, c.secret, c.enc, encapsulated[:c.si.secretN])
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nonce, encapsulated[c.si.secretN:], nil)
	if err != nil {
		return nil, fmt.Errorf("response: %w", ErrDecrypt)
	}
	return pt, nil
}

// responseAEAD derives the response key and nonce (RFC 9458 §4.4):
// prk = Extract(enc ‖ response_nonce, secret); key = Expand(prk, "key", Nk);
// nonce = Expand(prk, "nonce", Nn).
func responseAEAD(si suiteInfo, secret, enc, responseNonce []byte) (cipher.AEAD, []byte, error) {
	salt := append(bytes.Clone(enc), responseNonce...)
	prk, err := hkdf.Extract(si.hash, secret, salt)
	if err != nil {
		return nil, nil, err
	}
	key, err := hkdf.Expand(si.hash, prk, "key", si.nk)
	if err != nil {
		return nil, nil, err
	}
	nonce, err := hkdf.Expand(si.hash, prk, "nonce", si.nn)
	if err != nil {
		return nil, nil, err
	}
	aead, err := newAEAD(si, key)
	return aead, nonce, err
}

// GatewayContext is what a gateway keeps of a request to seal its response.
type GatewayContext struct {
	// Header is the request's header: which key and suite it used.
	Header Header
	// Key is the key that decrypted the request.
	Key    *PrivateKey
	enc    []byte
	secret []byte
	si     suiteInfo
}

// Enc returns the request's encapsulated key (replay filters key on it).
func (g *GatewayContext) Enc() []byte { return bytes.Clone(g.enc) }

// DecapsulateRequest decrypts a message/ohttp-req body encrypted to one of
// keys.
func DecapsulateRequest(keys []*PrivateKey, encapsulated []byte) ([]byte, *GatewayContext, error) {
	if len(encapsulated) > MaxMessage {
		return nil, nil, fmt.Errorf("%w: request of %d bytes exceeds %d", ErrMalformed, len(encapsulated), MaxMessage)
	}
	g, recipient, rest, err := setupRecipient(keys, encapsulated, labelRequest, labelResponse)
	if err != nil {
		return nil, nil, err
	}
	pt, err := recipient.Open(nil, rest)
	if err != nil {
		return nil, nil, fmt.Errorf("request: %w", ErrDecrypt)
	}
	return pt, g, nil
}

func setupRecipient(keys []*PrivateKey, b []byte, label, responseLabel string) (*GatewayContext, *hpke.Recipient, []byte, error) {
	h, encSize, err := ParseHeader(b)
	if err != nil {
		return nil, nil, nil, err
	}
	var key *PrivateKey
	for _, k := range keys {
		if k.config.ID == h.KeyID && k.config.KEM == h.KEM {
			key = k
			break
		}
	}
	if key == nil {
		return nil, nil, nil, fmt.Errorf("%w (key id %d, %s)", ErrUnknownKey, h.KeyID, KEMName(h.KEM))
	}
	if !key.config.Supports(h.Suite) {
		return nil, nil, nil, fmt.Errorf("%w: key %d offers %v, not %s", ErrSuite, h.KeyID, key.config.Suites, h.Suite)
	}
	si, err := suiteByID(h.Suite)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrSuite, err)
	}
	if len(b) < headerSize+encSize {
		return nil, nil, nil, fmt.Errorf("%w: truncated encapsulated key (%s needs %d bytes)", ErrMalformed, KEMName(h.KEM), encSize)
	}
	enc := bytes.Clone(b[headerSize : headerSize+encSize])
	recipient, err := hpke.NewRecipient(enc, key.key, si.kdf, si.aead, info(label, b[:headerSize]))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("request: %w", ErrDecrypt)
	}
	secret, err := recipient.Export(responseLabel, si.secretN)
	if err != nil {
		return nil, nil, nil, err
	}
	return &GatewayContext{Header: h, Key: key, enc: enc, secret: secret, si: si}, recipient, b[headerSize+encSize:], nil
}

// SealResponse encrypts a Binary HTTP response: the message/ohttp-res body.
func (g *GatewayContext) SealResponse(response []byte) ([]byte, error) {
	nonce := make([]byte, g.si.secretN)
	rand.Read(nonce)
	return g.sealResponse(response, nonce)
}

func (g *GatewayContext) sealResponse(response, responseNonce []byte) ([]byte, error) {
	aead, nonce, err := responseAEAD(g.si, g.secret, g.enc, responseNonce)
	if err != nil {
		return nil, err
	}
	return aead.Seal(bytes.Clone(responseNonce), nonce, response, nil), nil
}
