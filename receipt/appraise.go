package receipt

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/tlog"
)

// The steps of a receipt's appraisal, in the result's "receipt" section.
const (
	StepParse     = "receipt.parse"
	StepSignature = "receipt.signature"
	StepTime      = "receipt.time"
	StepBundle    = "receipt.bundle"
	StepRelease   = "receipt.release"
	StepModel     = "receipt.model"
	StepRequest   = "receipt.request"
	StepResponse  = "receipt.response"
)

// MaxClockSkew is how far a receipt's time may lie after the verification
// time: node clocks and the verifier's are not exactly in step.
const MaxClockSkew = 5 * time.Minute

// Exchange is what the client saw, to compare with a receipt's digests.
type Exchange struct {
	// Request is the binary HTTP request message the client encrypted
	// (the OHTTP plaintext); nil: not checked.
	Request []byte
	// Response is the answer the client received; nil: not checked.
	Response *Response
}

// Response is an answer as the client received it.
type Response struct {
	// Status is the HTTP status.
	Status int
	// Content is the response body (for a streamed answer, every chunk's
	// content in order).
	Content []byte
	// Digest, when set, is the response digest computed as the content
	// streamed in (a ResponseHasher's Sum), so that a client need not keep
	// a long answer; Content is then not used.
	Digest *[32]byte
}

// Appraise verifies a receipt with the node's bundle. It parses the
// receipt, checks its signature under the bundle's receipt key and that it
// names this bundle, appraises the bundle at the receipt's time with opts
// (opts.At is the verification time: the receipt may not be later), checks
// the receipt's release against the bundle's stapled proof and its model
// against the release, and, when ex gives them, the request and response
// digests. Every problem is a step in the result's "receipt" section; the
// verdict fails closed.
func Appraise(ctx context.Context, data []byte, b *attest.Bundle, opts attest.Options, ex *Exchange) *attest.Result {
	s := &attest.Section{Kind: "receipt"}
	r, err := Parse(data)
	if err == nil && b == nil {
		err = fmt.Errorf("no bundle was given to verify the receipt with")
	}
	if err != nil {
		res := &attest.Result{At: opts.At.UTC(), Devices: map[string]*attest.Section{}, Receipt: s}
		s.Add(StepParse, attest.Fail, "%v", err)
		res.Finish()
		return res
	}
	p := &r.Payload
	now := opts.At
	opts.At = p.At()
	res := attest.Appraise(ctx, b, opts)
	res.Receipt = s
	check(s, &res.Ledger, r, b, now, ex)
	res.Finish()
	return res
}

// Check verifies a receipt against a bundle its caller has already
// appraised (a client that verified the node moments before): the receipt
// steps of Appraise without appraising the bundle again. now is the
// verification time; ledger may be nil.
func Check(data []byte, b *attest.Bundle, now time.Time, ex *Exchange, ledger *attest.Ledger) *attest.Section {
	s := &attest.Section{Kind: "receipt"}
	r, err := Parse(data)
	if err == nil && b == nil {
		err = fmt.Errorf("no bundle was given to verify the receipt with")
	}
	if err != nil {
		s.Add(StepParse, attest.Fail, "%v", err)
		s.Finish()
		return s
	}
	return r.Check(b, now, ex, ledger)
}

// Check is the package's Check for a receipt already parsed.
func (r *Receipt) Check(b *attest.Bundle, now time.Time, ex *Exchange, ledger *attest.Ledger) *attest.Section {
	s := &attest.Section{Kind: "receipt"}
	if b == nil {
		s.Add(StepParse, attest.Fail, "no bundle was given to verify the receipt with")
		s.Finish()
		return s
	}
	if ledger == nil {
		ledger = &attest.Ledger{}
	}
	check(s, ledger, r, b, now, ex)
	s.Finish()
	return s
}

// check adds the receipt steps to s.
func check(s *attest.Section, l *attest.Ledger, r *Receipt, b *attest.Bundle, now time.Time, ex *Exchange) {
	p := &r.Payload
	s.Add(StepParse, attest.Pass, "COSE_Sign1 receipt, version %d, by node key %x, signed %s", p.Version, r.KeyID[:8], attest.FormatAt(p.At()))

	if err := r.Verify(b.Keys.ReceiptKey); err != nil {
		s.Add(StepSignature, attest.Fail, "the receipt is not signed by the bundle's receipt key: %v", err)
	} else {
		s.Add(StepSignature, attest.Pass, "signed by the bundle's Ed25519 receipt key, which the bundle's evidence binds")
		l.Verify("receipt.node", "This node signed the receipt: the node whose evidence the bundle carries, with the receipt key its hardware attested.")
	}

	switch {
	case now.IsZero():
		s.Add(StepTime, attest.Fail, "no verification time was given; pass the time to verify at (sworn: --at, default now)")
	case p.At().After(now.Add(MaxClockSkew)):
		s.Add(StepTime, attest.Fail, "the receipt is dated %s, after the verification time %s: the node's clock or the receipt is wrong", attest.FormatAt(p.At()), attest.FormatAt(now))
	default:
		s.Add(StepTime, attest.Pass, "signed %s, not after the verification time %s; the bundle is appraised at the receipt's time", attest.FormatAt(p.At()), attest.FormatAt(now))
	}

	checkBundle(s, p, b)
	rec := checkRelease(s, l, p, b)
	checkModel(s, l, p, rec)
	checkExchange(s, l, p, ex)

	l.Assume("receipt.code", "That the release's code does what its source says: the receipt proves which release and model answered, not what that code does with the prompt.")
	l.Assume("receipt.client", "That the prompt was not copied on the client before encryption: the receipt speaks for the node, not for the client's machine.")
	s.Claims = claims(p, now)
}

// checkBundle adds receipt.bundle: the receipt names this bundle and its key.
func checkBundle(s *attest.Section, p *Payload, b *attest.Bundle) {
	kid := KeyID(b.Keys.ReceiptKey)
	d, err := b.Digest()
	switch {
	case err != nil:
		s.Add(StepBundle, attest.Fail, "the bundle cannot be encoded: %v", err)
	case p.NodeKey != kid:
		s.Add(StepBundle, attest.Fail, "the receipt names node key %x, but the bundle's receipt key is %x: the receipt is from another node", p.NodeKey[:8], kid[:8])
	case p.Bundle != d:
		s.Add(StepBundle, attest.Fail, "the receipt names bundle %x, but this bundle's digest is %x: give the bundle the node served when it signed", p.Bundle[:8], d[:8])
	default:
		s.Add(StepBundle, attest.Pass, "the receipt names this bundle (SHA-256 %x) and its receipt key", d[:8])
	}
}

// checkRelease adds receipt.release: the receipt names the release entry of
// the bundle's stapled proof. It returns that entry's record, or nil.
func checkRelease(s *attest.Section, l *attest.Ledger, p *Payload, b *attest.Bundle) *tlog.Record {
	want, err := ReleaseOf(b)
	got := p.Release
	switch {
	case err != nil:
		s.Add(StepRelease, attest.Fail, "%v", err)
		return nil
	case want == nil && got == nil:
		s.AddOptional(StepRelease, attest.Skip, "the bundle staples no release proof and the receipt names no release")
		return nil
	case want == nil:
		s.Add(StepRelease, attest.Fail, "the receipt names entry %d of log %s, but the bundle staples no release proof", got.Index, got.Origin)
		return nil
	case got == nil:
		s.Add(StepRelease, attest.Fail, "the receipt names no release, but the bundle staples the proof of entry %d of log %s", want.Index, want.Origin)
		return nil
	case got.Origin != want.Origin || got.Index != want.Index || got.LeafHash != want.LeafHash:
		s.Add(StepRelease, attest.Fail, "the receipt names entry %d of log %s (leaf %x), but the bundle's proof is for entry %d of log %s (leaf %x)",
			got.Index, got.Origin, got.LeafHash[:8], want.Index, want.Origin, want.LeafHash[:8])
		return nil
	}
	s.Add(StepRelease, attest.Pass, "the receipt names entry %d of log %s (leaf %x), as the bundle's stapled proof does", want.Index, want.Origin, want.LeafHash[:8])
	l.Verify("receipt.release", "The receipt names the release that the bundle proves the node runs.")
	pr, _ := tlog.ParseProof(b.Release) // ReleaseOf parsed it
	rec, err := tlog.ParseLeaf(pr.Record)
	if err != nil || rec.Release == nil {
		return nil
	}
	return rec
}

// checkModel adds receipt.model: the receipt's model is one its release
// lists, when the release lists models.
func checkModel(s *attest.Section, l *attest.Ledger, p *Payload, rec *tlog.Record) {
	digest := "sha256:" + hex.EncodeToString(p.Model[:])
	if rec == nil || len(rec.Release.Models) == 0 {
		s.AddOptional(StepModel, attest.Skip, "no release lists the models this node may serve: model %s is the node's word", digest)
		l.Assume("receipt.model", "The model named in the receipt is the node's word: its release does not list the models it may serve.")
		return
	}
	var listed []string
	for _, m := range rec.Release.Models {
		if m.Digest == digest {
			s.Add(StepModel, attest.Pass, "model %s (%s) is one release %s lists", m.Name, digest, rec.Release.Key())
			l.Verify("receipt.model", "The model that answered is one the release lists.")
			return
		}
		listed = append(listed, m.Name+" "+m.Digest)
	}
	s.Add(StepModel, attest.Fail, "the receipt names model %s, which release %s does not list (it lists %s)", digest, rec.Release.Key(), strings.Join(listed, ", "))
}

// checkExchange adds receipt.request and receipt.response.
func checkExchange(s *attest.Section, l *attest.Ledger, p *Payload, ex *Exchange) {
	if ex == nil {
		ex = &Exchange{}
	}
	if ex.Request == nil {
		s.AddOptional(StepRequest, attest.Skip, "no request was given to compare with the receipt's request digest %x", p.Request[:8])
		l.Assume("receipt.request.unchecked", "The receipt was not compared with a request: it shows that the node answered some request, not which.")
	} else if d := RequestDigest(ex.Request); d != p.Request {
		s.Add(StepRequest, attest.Fail, "the request's digest is %x, but the receipt is for request %x: the receipt answers another request", d[:8], p.Request[:8])
	} else {
		s.Add(StepRequest, attest.Pass, "the request's SHA-256 is the receipt's request digest %x", d[:8])
		l.Verify("receipt.request", "The receipt is for this request, exactly as the client encrypted it.")
	}
	switch rs := ex.Response; {
	case rs == nil:
		s.AddOptional(StepResponse, attest.Skip, "no response was given to compare with the receipt's response digest %x", p.Response[:8])
		l.Assume("receipt.response.unchecked", "The receipt was not compared with a response: it shows that the node gave some answer, not which.")
	case rs.Status != int(p.Status):
		s.Add(StepResponse, attest.Fail, "the response has HTTP status %d, but the receipt is for an answer with status %d", rs.Status, p.Status)
	default:
		d, what := ResponseDigest(p.Status, rs.Content), fmt.Sprintf("%d bytes of content", len(rs.Content))
		if rs.Digest != nil {
			d, what = *rs.Digest, "the content as it streamed"
		}
		if d != p.Response {
			s.Add(StepResponse, attest.Fail, "the response's digest is %x, but the receipt is for answer %x: the content was altered or is another answer", d[:8], p.Response[:8])
			return
		}
		s.Add(StepResponse, attest.Pass, "status %d and %s give the receipt's response digest", p.Status, what)
		l.Verify("receipt.response", "This answer, status and content, is the node's answer to the request the receipt names.")
	}
}

// claims returns the receipt section's claims.
func claims(p *Payload, now time.Time) map[string]any {
	c := map[string]any{
		"version":         p.Version,
		"time":            attest.FormatAt(p.At()),
		"request_digest":  hex.EncodeToString(p.Request[:]),
		"response_digest": hex.EncodeToString(p.Response[:]),
		"model_digest":    "sha256:" + hex.EncodeToString(p.Model[:]),
		"bundle_digest":   hex.EncodeToString(p.Bundle[:]),
		"node_key_id":     hex.EncodeToString(p.NodeKey[:]),
		"status":          p.Status,
		"tokens":          map[string]any{"prompt": p.Tokens.Prompt, "completion": p.Tokens.Completion},
		"suite":           map[string]any{"kem": p.Suite.KEM, "kdf": p.Suite.KDF, "aead": p.Suite.AEAD, "candidates": p.Suite.Candidates},
	}
	if !now.IsZero() {
		c["verified_at"] = attest.FormatAt(now)
	}
	if p.Nonce != nil {
		c["nonce"] = hex.EncodeToString(p.Nonce)
	}
	if r := p.Release; r != nil {
		c["release"] = map[string]any{"origin": r.Origin, "index": r.Index, "leaf_hash": hex.EncodeToString(r.LeafHash[:])}
	}
	return c
}
