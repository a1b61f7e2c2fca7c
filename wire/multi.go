package wire

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// Media types of sworn's multi-candidate extension (docs/protocol.md).
const (
	MediaTypeMultiReq = "message/sworn-multi-req"
	MediaTypeMultiRes = "message/sworn-multi-res"
)

// MaxCandidates bounds the candidates of a multi-candidate request.
const MaxCandidates = 8

const (
	multiVersion       = 0x01
	labelMultiRequest  = "sworn multi request"
	labelMultiResponse = "sworn multi response"
	keyHashSize        = 8
)

// KeyHash is the first 8 bytes of a configuration's Digest: how a
// multi-candidate request names each candidate.
func (c KeyConfig) KeyHash() [keyHashSize]byte {
	d := c.Digest()
	return [keyHashSize]byte(d[:keyHashSize])
}

// MultiClientContext is what a client keeps of a multi-candidate request
// to open its response.
type MultiClientContext struct {
	si         suiteInfo
	secret     []byte
	headerHash []byte
}

// EncapsulateMulti encrypts one Binary HTTP request to up to MaxCandidates
// key configurations: a fresh content key seals the request once and is
// wrapped to each candidate with HPKE, so whichever candidate the relay
// hands the message to can open it (docs/protocol.md, "Multi-candidate
// requests"). Every candidate must offer the suite.
func EncapsulateMulti(cands []KeyConfig, s Suite, request []byte) ([]byte, *MultiClientContext, error) {
	if len(cands) == 0 || len(cands) > MaxCandidates {
		return nil, nil, fmt.Errorf("a multi-candidate request has 1 to %d candidates, not %d", MaxCandidates, len(cands))
	}
	si, err := suiteByID(s)
	if err != nil {
		return nil, nil, err
	}
	ck := make([]byte, si.nk)
	rand.Read(ck)
	hdr := multiPrefix(s, len(cands))
	seen := map[[keyHashSize]byte]bool{}
	for _, c := range cands {
		if !c.Supports(s) {
			return nil, nil, fmt.Errorf("%w: candidate key %d offers %v, not %s", ErrSuite, c.ID, c.Suites, s)
		}
		kh := c.KeyHash()
		if seen[kh] {
			return nil, nil, fmt.Errorf("candidate key %x is listed twice", kh)
		}
		seen[kh] = true
		k, err := kemByID(c.KEM)
		if err != nil {
			return nil, nil, err
		}
		pk, err := k.kem.NewPublicKey(c.PublicKey)
		if err != nil {
			return nil, nil, fmt.Errorf("candidate key %d: %v", c.ID, err)
		}
		id := candidateID(kh, c.ID, c.KEM)
		enc, sender, err := hpke.NewSender(pk, si.kdf, si.aead, multiInfo(s, id))
		if err != nil {
			return nil, nil, err
		}
		wrapped, err := sender.Seal(nil, ck)
		if err != nil {
			return nil, nil, err
		}
		hdr = append(append(append(hdr, id...), enc...), wrapped...)
	}
	aead, err := newAEAD(si, ck)
	if err != nil {
		return nil, nil, err
	}
	out := aead.Seal(bytes.Clone(hdr), make([]byte, si.nn), request, hdr)
	ctx, err := multiContext(si, ck, hdr)
	if err != nil {
		return nil, nil, err
	}
	return out, &MultiClientContext{si: si, secret: ctx.secret, headerHash: ctx.headerHash}, nil
}

// OpenResponse returns a reader of the multi-candidate response's
// plaintext (chunked framing; ErrTruncated if it ends early).
func (c *MultiClientContext) OpenResponse(r io.Reader) io.Reader {
	return openChunkedResponse(c.si, c.secret, c.headerHash, r)
}

func multiPrefix(s Suite, n int) []byte {
	b := []byte{multiVersion}
	b = binary.BigEndian.AppendUint16(b, s.KDF)
	b = binary.BigEndian.AppendUint16(b, s.AEAD)
	return append(b, byte(n))
}

func candidateID(kh [keyHashSize]byte, id uint8, kem uint16) []byte {
	b := append(kh[:], id)
	return binary.BigEndian.AppendUint16(b, kem)
}

func multiInfo(s Suite, id []byte) []byte {
	b := append([]byte(labelMultiRequest), 0)
	b = append(b, multiPrefix(s, 0)[:5]...)
	return append(b, id...)
}

// multiContext derives the response secret from the content key and the
// request header, so that only holders of the content key can respond.
func multiContext(si suiteInfo, ck, hdr []byte) (*MultiGatewayContext, error) {
	hh := sha256.Sum256(hdr)
	prk, err := hkdf.Extract(si.hash, ck, hh[:])
	if err != nil {
		return nil, err
	}
	secret, err := hkdf.Expand(si.hash, prk, labelMultiResponse, si.secretN)
	if err != nil {
		return nil, err
	}
	return &MultiGatewayContext{si: si, secret: secret, headerHash: hh[:]}, nil
}

// MultiGatewayContext is what a gateway keeps of a multi-candidate request
// to seal its response.
type MultiGatewayContext struct {
	// Suite is the request's symmetric suite; KEM the candidate's KEM.
	Suite      Suite
	KEM        uint16
	Candidates int
	// Key is the key whose candidate entry opened the request.
	Key        *PrivateKey
	si         suiteInfo
	secret     []byte
	headerHash []byte
}

// ReplayID identifies the request for replay filtering: SHA-256 of its
// header, which holds every candidate's encapsulated key.
func (g *MultiGatewayContext) ReplayID() []byte { return bytes.Clone(g.headerHash) }

// NewResponseWriter starts the response (message/sworn-multi-res).
func (g *MultiGatewayContext) NewResponseWriter(w io.Writer) (*ChunkedResponseWriter, error) {
	nonce := make([]byte, g.si.secretN)
	rand.Read(nonce)
	return g.newResponseWriter(w, nonce)
}

func (g *MultiGatewayContext) newResponseWriter(w io.Writer, nonce []byte) (*ChunkedResponseWriter, error) {
	return newChunkedResponseWriter(g.si, g.secret, g.headerHash, nonce, w)
}

// OpenMulti decrypts a multi-candidate request addressed, among others, to
// one of keys.
func OpenMulti(keys []*PrivateKey, b []byte) ([]byte, *MultiGatewayContext, error) {
	if len(b) > MaxMessage {
		return nil, nil, fmt.Errorf("%w: request of %d bytes exceeds %d", ErrMalformed, len(b), MaxMessage)
	}
	if len(b) < 6 || b[0] != multiVersion {
		return nil, nil, fmt.Errorf("%w: not a version-1 multi-candidate request", ErrMalformed)
	}
	s := Suite{binary.BigEndian.Uint16(b[1:]), binary.BigEndian.Uint16(b[3:])}
	si, err := suiteByID(s)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSuite, err)
	}
	n := int(b[5])
	if n == 0 || n > MaxCandidates {
		return nil, nil, fmt.Errorf("%w: %d candidates (1 to %d)", ErrMalformed, n, MaxCandidates)
	}
	off := 6
	var ck []byte
	var kem uint16
	var used *PrivateKey
	for range n {
		if len(b) < off+keyHashSize+3 {
			return nil, nil, fmt.Errorf("%w: truncated candidate", ErrMalformed)
		}
		id := b[off : off+keyHashSize+3]
		cand := Header{KeyID: id[keyHashSize], KEM: binary.BigEndian.Uint16(id[keyHashSize+1:])}
		k, err := kemByID(cand.KEM)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: candidate: %v", ErrMalformed, err)
		}
		end := off + len(id) + k.encSize + si.nk + tagSize
		if len(b) < end {
			return nil, nil, fmt.Errorf("%w: truncated candidate", ErrMalformed)
		}
		if ck == nil {
			for _, key := range keys {
				kh := key.config.KeyHash()
				if key.config.ID != cand.KeyID || key.config.KEM != cand.KEM || !bytes.Equal(kh[:], id[:keyHashSize]) {
					continue
				}
				if !key.config.Supports(s) {
					return nil, nil, fmt.Errorf("%w: key %d offers %v, not %s", ErrSuite, key.config.ID, key.config.Suites, s)
				}
				enc := b[off+len(id) : off+len(id)+k.encSize]
				r, err := hpke.NewRecipient(enc, key.key, si.kdf, si.aead, multiInfo(s, id))
				if err == nil {
					ck, err = r.Open(nil, b[off+len(id)+k.encSize:end])
				}
				if err != nil {
					return nil, nil, fmt.Errorf("candidate entry: %w", ErrDecrypt)
				}
				kem, used = cand.KEM, key
				break
			}
		}
		off = end
	}
	if ck == nil {
		return nil, nil, fmt.Errorf("%w: none of the %d candidates is this node", ErrUnknownKey, n)
	}
	hdr := b[:off]
	aead, err := newAEAD(si, ck)
	if err != nil {
		return nil, nil, err
	}
	pt, err := aead.Open(nil, make([]byte, si.nn), b[off:], hdr)
	if err != nil {
		return nil, nil, fmt.Errorf("request content: %w", ErrDecrypt)
	}
	g, err := multiContext(si, ck, hdr)
	if err != nil {
		return nil, nil, err
	}
	g.Suite, g.KEM, g.Candidates, g.Key = s, kem, n, used
	return pt, g, nil
}

// MaxMultiHeader bounds the header of a multi-candidate request (the
// bytes before its sealed content): MaxCandidates entries with the largest
// encapsulated key and content key sworn supports.
const MaxMultiHeader = 6 + MaxCandidates*(keyHashSize+3+1120+32+tagSize)

// MultiCandidates returns the key hashes a multi-candidate request names,
// in order, without decrypting anything (for a relay's routing). b is the
// request or a prefix of it that holds the whole header (MaxMultiHeader
// bytes suffice); a header that is truncated, of another version, or names
// an unknown KEM or suite is ErrMalformed or ErrSuite.
func MultiCandidates(b []byte) ([][keyHashSize]byte, error) {
	if len(b) < 6 || b[0] != multiVersion {
		return nil, fmt.Errorf("%w: not a version-1 multi-candidate request", ErrMalformed)
	}
	si, err := suiteByID(Suite{binary.BigEndian.Uint16(b[1:]), binary.BigEndian.Uint16(b[3:])})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSuite, err)
	}
	n := int(b[5])
	if n == 0 || n > MaxCandidates {
		return nil, fmt.Errorf("%w: %d candidates (1 to %d)", ErrMalformed, n, MaxCandidates)
	}
	out := make([][keyHashSize]byte, 0, n)
	off := 6
	for range n {
		if len(b) < off+keyHashSize+3 {
			return nil, fmt.Errorf("%w: truncated candidate", ErrMalformed)
		}
		k, err := kemByID(binary.BigEndian.Uint16(b[off+keyHashSize+1:]))
		if err != nil {
			return nil, fmt.Errorf("%w: candidate: %v", ErrMalformed, err)
		}
		out = append(out, [keyHashSize]byte(b[off:off+keyHashSize]))
		off += keyHashSize + 3 + k.encSize + si.nk + tagSize
		if len(b) < off {
			return nil, fmt.Errorf("%w: truncated candidate", ErrMalformed)
		}
	}
	return out, nil
}
