// Package kbs is sworn's key broker: it holds model keys, encrypted at
// rest under a key-encryption key, and releases a model's key only to a
// node that passes the one appraisal under the broker's policy — and only
// after the release is appended to the witnessed release log, so a model
// owner can audit every node that ever got the key (docs/kbs.md).
package kbs

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/appraiser"
	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/ratelimit"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/wire"
)

// Protocol constants (docs/kbs.md).
const (
	// NonceSize is the size of a challenge nonce; NonceTTL its lifetime.
	NonceSize = 32
	NonceTTL  = time.Minute
	// MaxRequest bounds a request body (a bundle is at most 16 MiB).
	MaxRequest = attest.MaxBundleSize + 64<<10
	// KeySize is the size of a model data key.
	KeySize = 32
)

// Config configures a broker.
type Config struct {
	// Store keeps models and releases. Required.
	Store Store
	// KEK is the 32-byte key-encryption key of model keys at rest.
	KEK []byte
	// Policy is what a node's bundle must pass; its log section names the
	// release log whose witness quorum every key release must reach.
	// Required, with a log section.
	Policy *policy.Policy
	// LogURL is the release log the broker appends key_release records to;
	// Publisher signs them (the log must accept its key).
	LogURL    string
	Publisher note.Signer
	// ID names the broker in its records.
	ID string
	// AdminToken, when set, lets a bearer of it register models.
	AdminToken string
	// HTTP reaches the log (nil: a plain client); LogTimeout bounds an
	// append with its witness wait (default 30s).
	HTTP       *http.Client
	LogTimeout time.Duration
	// Logger gets one line per decision (never a key or a bundle).
	Logger *slog.Logger
	// Now is the clock.
	Now func() time.Time
	// Appraiser appraises bundles (appraiser.New() if nil).
	Appraiser *appraiser.Appraiser
	// NodeLimit bounds the key releases a node (its request keys) may ask
	// for; ModelLimit those of one model across all nodes. Zero: the
	// defaults, DefaultNodeLimit and DefaultModelLimit.
	NodeLimit, ModelLimit Limit
}

// Limit is a token bucket: Burst requests at once, one more every Every.
type Limit struct {
	Every time.Duration
	Burst int
}

// The default limits: a node may ask 6 times at once and then once every
// 10 s; a model serves 200 nodes at once, then one more every 10 ms.
var (
	DefaultNodeLimit  = Limit{Every: 10 * time.Second, Burst: 6}
	DefaultModelLimit = Limit{Every: 10 * time.Millisecond, Burst: 200}
)

// maxTracked bounds the node keys and models the rate limits track.
const maxTracked = 1 << 16

// Broker is a running key broker.
type Broker struct {
	cfg Config
	kek cipher.AEAD
	log *slog.Logger
	ver *tlog.Verifier

	mu      sync.Mutex
	nonces  map[string]challenge
	nodes   *ratelimit.Keyed
	models  *ratelimit.Keyed
	metrics *metrics
}

type challenge struct {
	model   [32]byte
	expires time.Time
}

// New checks the configuration and makes a broker. A KEK that does not
// open the stored keys is a start-up error.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("kbs: no store")
	case len(cfg.KEK) != 32:
		return nil, fmt.Errorf("kbs: the key-encryption key is %d bytes; it must be 32", len(cfg.KEK))
	case cfg.Policy == nil || cfg.Policy.Log == nil:
		return nil, errors.New("kbs: the policy needs a log: section: every key release is appended to that log and must reach its witness quorum")
	case cfg.LogURL == "" || cfg.Publisher == nil:
		return nil, errors.New("kbs: a release log URL and a publisher key are required")
	case cfg.ID == "":
		cfg.ID = "sworn-kbs"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogTimeout <= 0 {
		cfg.LogTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Appraiser == nil {
		cfg.Appraiser = appraiser.New()
	}
	kek := newKEK(cfg.KEK)
	ver, err := tlog.NewVerifier(cfg.Policy.Log)
	if err != nil {
		return nil, fmt.Errorf("kbs: policy log section: %v", err)
	}
	if cfg.NodeLimit == (Limit{}) {
		cfg.NodeLimit = DefaultNodeLimit
	}
	if cfg.ModelLimit == (Limit{}) {
		cfg.ModelLimit = DefaultModelLimit
	}
	b := &Broker{cfg: cfg, kek: kek, log: cfg.Logger, ver: ver, nonces: map[string]challenge{}, metrics: newMetrics(),
		nodes:  ratelimit.NewKeyed(cfg.NodeLimit.Every, cfg.NodeLimit.Burst, maxTracked),
		models: ratelimit.NewKeyed(cfg.ModelLimit.Every, cfg.ModelLimit.Burst, maxTracked)}
	ms, err := cfg.Store.Models(ctx)
	if err != nil {
		return nil, fmt.Errorf("kbs: store: %v", err)
	}
	for _, m := range ms {
		if _, err := b.unwrap(m); err != nil {
			return nil, fmt.Errorf("kbs: the key-encryption key does not open the key of model %x: wrong --kek?", m.Digest[:8])
		}
	}
	return b, nil
}

// newKEK returns the AEAD of a 32-byte key-encryption key: AES-256-GCM,
// each model key sealed under a random nonce with the model digest as
// associated data, so a wrapped key moved to another model does not open.
func newKEK(key []byte) cipher.AEAD {
	block, _ := aes.NewCipher(key)
	kek, _ := cipher.NewGCM(block)
	return kek
}

func wrapKey(kek cipher.AEAD, digest [32]byte, key []byte) []byte {
	nonce := make([]byte, kek.NonceSize())
	rand.Read(nonce)
	return kek.Seal(nonce, nonce, key, digest[:])
}

func unwrapKey(kek cipher.AEAD, m Model) ([]byte, error) {
	n := kek.NonceSize()
	if len(m.Wrapped) < n {
		return nil, errors.New("wrapped key too short")
	}
	return kek.Open(nil, m.Wrapped[:n], m.Wrapped[n:], m.Digest[:])
}

func (b *Broker) wrap(digest [32]byte, key []byte) []byte { return wrapKey(b.kek, digest, key) }

func (b *Broker) unwrap(m Model) ([]byte, error) { return unwrapKey(b.kek, m) }

// RotateKEK re-wraps every model key in store from the key-encryption key
// old to new, in one transaction: if any key does not open under old,
// nothing changes. It returns how many keys it re-wrapped. Start the
// broker with new afterwards.
func RotateKEK(ctx context.Context, store Store, old, new []byte) (int, error) {
	if len(old) != 32 || len(new) != 32 {
		return 0, errors.New("a key-encryption key is 32 bytes")
	}
	if subtle.ConstantTimeCompare(old, new) == 1 {
		return 0, errors.New("the new key-encryption key is the old one")
	}
	ok, nk := newKEK(old), newKEK(new)
	return store.Rewrap(ctx, func(m Model) ([]byte, error) {
		key, err := unwrapKey(ok, m)
		if err != nil {
			return nil, fmt.Errorf("the old key-encryption key does not open the key of model %x: wrong old key? nothing was changed", m.Digest[:8])
		}
		return wrapKey(nk, m.Digest, key), nil
	})
}

// Register stores a model's data key.
func (b *Broker) Register(ctx context.Context, name string, digest [32]byte, key []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("a model key is %d bytes, not %d", KeySize, len(key))
	}
	err := b.cfg.Store.PutModel(ctx, Model{Digest: digest, Name: name, Wrapped: b.wrap(digest, key), Created: b.cfg.Now()})
	if errors.Is(err, ErrExists) {
		m, gerr := b.cfg.Store.Model(ctx, digest)
		if gerr != nil {
			return gerr
		}
		if old, uerr := b.unwrap(*m); uerr == nil && subtle.ConstantTimeCompare(old, key) == 1 {
			return nil // registered again with the same key
		}
		return fmt.Errorf("model %x is registered with another key", digest[:8])
	}
	return err
}

// Handler serves the broker's API.
func (b *Broker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /kbs/v1/models", b.handleRegister)
	mux.HandleFunc("POST /kbs/v1/challenge", b.handleChallenge)
	mux.HandleFunc("POST /kbs/v1/release", b.handleRelease)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", b.metrics.handler())
	return mux
}

// ParseDigest reads "sha256:<64 hex>".
func ParseDigest(s string) ([32]byte, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != 32 {
		return [32]byte{}, fmt.Errorf("model digest %q: want sha256:<64 hex digits>", clip(s))
	}
	return [32]byte(b), nil
}

// FormatDigest writes "sha256:<64 hex>".
func FormatDigest(d [32]byte) string { return "sha256:" + hex.EncodeToString(d[:]) }

// RegisterRequest is the body of POST /kbs/v1/models.
type RegisterRequest struct {
	Name  string `json:"name"`
	Model string `json:"model"`
	Key   []byte `json:"key"`
}

func (b *Broker) handleRegister(w http.ResponseWriter, r *http.Request) {
	if b.cfg.AdminToken == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+b.cfg.AdminToken)) != 1 {
		apiError(w, http.StatusUnauthorized, "registering a model needs the broker's admin token")
		return
	}
	var req RegisterRequest
	if err := decode(w, r, &req); err != nil {
		return
	}
	d, err := ParseDigest(req.Model)
	if err == nil {
		err = b.Register(r.Context(), req.Name, d, req.Key)
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	b.log.Info("model registered", "model", req.Model, "name", clip(req.Name))
	w.WriteHeader(http.StatusNoContent)
}

// ChallengeRequest and ChallengeResponse are POST /kbs/v1/challenge.
type ChallengeRequest struct {
	Model string `json:"model"`
}

// ChallengeResponse carries a single-use nonce.
type ChallengeResponse struct {
	Nonce   []byte    `json:"nonce"`
	Expires time.Time `json:"expires"`
}

func (b *Broker) handleChallenge(w http.ResponseWriter, r *http.Request) {
	var req ChallengeRequest
	if err := decode(w, r, &req); err != nil {
		return
	}
	d, err := ParseDigest(req.Model)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := b.cfg.Store.Model(r.Context(), d); err != nil {
		b.metrics.challenges.WithLabelValues("refused").Inc()
		apiError(w, http.StatusNotFound, "the broker holds no key for model "+FormatDigest(d))
		return
	}
	nonce := make([]byte, NonceSize)
	rand.Read(nonce)
	now := b.cfg.Now()
	b.mu.Lock()
	for k, c := range b.nonces {
		if now.After(c.expires) {
			delete(b.nonces, k)
		}
	}
	if len(b.nonces) >= 1<<16 {
		b.mu.Unlock()
		b.metrics.challenges.WithLabelValues("limited").Inc()
		w.Header().Set("Retry-After", "5")
		apiError(w, http.StatusServiceUnavailable, "too many open challenges; try again")
		return
	}
	b.nonces[string(nonce)] = challenge{model: d, expires: now.Add(NonceTTL)}
	b.mu.Unlock()
	b.metrics.challenges.WithLabelValues("issued").Inc()
	writeJSON(w, ChallengeResponse{Nonce: nonce, Expires: now.Add(NonceTTL)})
}

// ReleaseRequest is the body of POST /kbs/v1/release: the bundle answers
// the challenge's nonce.
type ReleaseRequest struct {
	Model  string `json:"model"`
	Nonce  []byte `json:"nonce"`
	Bundle []byte `json:"bundle"`
}

// ReleaseResponse is the released key, sealed to the node's attested key,
// and the proof that the release is in the witnessed log.
type ReleaseResponse struct {
	KeyID    uint8  `json:"key_id"`
	KEM      uint16 `json:"kem"`
	KDF      uint16 `json:"kdf"`
	AEAD     uint16 `json:"aead"`
	Sealed   []byte `json:"sealed"`
	LogIndex uint64 `json:"log_index"`
	Proof    []byte `json:"proof"`
}

// refusal is a release the broker refuses, with the status and the reason.
type refusal struct {
	status int
	why    string
}

func (e *refusal) Error() string { return e.why }

func (b *Broker) handleRelease(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if err := decode(w, r, &req); err != nil {
		return
	}
	start := time.Now()
	resp, err := b.release(r.Context(), &req)
	b.metrics.phase.WithLabelValues("total").Observe(time.Since(start).Seconds())
	if err != nil {
		var rf *refusal
		if !errors.As(err, &rf) {
			rf = &refusal{http.StatusInternalServerError, err.Error()}
		}
		b.metrics.releases.WithLabelValues(outcome(rf.status)).Inc()
		b.log.Warn("key release refused", "model", clip(req.Model), "status", rf.status, "why", rf.why)
		switch rf.status {
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "5")
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "10")
		}
		apiError(w, rf.status, rf.why)
		return
	}
	b.metrics.releases.WithLabelValues("released").Inc()
	b.log.Info("key released", "model", req.Model, "log_index", resp.LogIndex)
	writeJSON(w, resp)
}

// release runs the release flow: the nonce, the appraisal, the model's
// release, the log append with its witness quorum, and only then the key.
func (b *Broker) release(ctx context.Context, req *ReleaseRequest) (*ReleaseResponse, error) {
	d, err := ParseDigest(req.Model)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, err.Error()}
	}
	now := b.cfg.Now()
	b.mu.Lock()
	c, ok := b.nonces[string(req.Nonce)]
	delete(b.nonces, string(req.Nonce)) // single use, whatever follows
	b.mu.Unlock()
	if !ok || now.After(c.expires) || c.model != d {
		return nil, &refusal{http.StatusForbidden, "the nonce is not an open challenge of this broker for this model (expired, used, or another broker's): ask for a new challenge"}
	}
	bundle, err := attest.ParseBundle(req.Bundle)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "the bundle: " + err.Error()}
	}
	if !bytes.Equal(bundle.Freshness.Nonce, req.Nonce) {
		return nil, &refusal{http.StatusForbidden, "the bundle does not answer the broker's nonce"}
	}
	// The limits, before the appraisal (the costly part): per node, by its
	// request keys, and per model.
	nk := sha256.Sum256(bundle.Keys.RequestKeys)
	if !b.nodes.Allow(string(nk[:]), now) {
		return nil, &refusal{http.StatusTooManyRequests, "this node asked for keys too often; retry later"}
	}
	if !b.models.Allow(string(d[:]), now) {
		return nil, &refusal{http.StatusTooManyRequests, "too many key releases of this model at once; retry later"}
	}
	t0 := time.Now()
	res := b.cfg.Appraiser.Appraise(ctx, bundle, appraiser.Options{At: now, Policy: b.cfg.Policy, Nonce: req.Nonce})
	b.metrics.phase.WithLabelValues("appraisal").Observe(time.Since(t0).Seconds())
	if res.Verdict != attest.Affirming {
		return nil, &refusal{http.StatusForbidden, fmt.Sprintf("the node's bundle is %s under the broker's policy: %s", res.Verdict, res.FirstProblem())}
	}
	rel, err := b.releaseOf(bundle, d)
	if err != nil {
		return nil, &refusal{http.StatusForbidden, err.Error()}
	}
	m, err := b.cfg.Store.Model(ctx, d)
	if err != nil {
		return nil, &refusal{http.StatusNotFound, "the broker holds no key for model " + FormatDigest(d)}
	}
	key, err := b.unwrap(*m)
	if err != nil {
		return nil, fmt.Errorf("the stored key of model %x does not open under the key-encryption key", d[:8])
	}
	cfgs, err := bundle.Keys.Configs()
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, err.Error()}
	}
	kc, suite, err := wire.Choose(cfgs, false)
	if err != nil {
		return nil, &refusal{http.StatusForbidden, err.Error()}
	}

	// The log first: no log entry with its witness quorum, no key.
	bd, _ := bundle.Digest()
	kr := &tlog.KeyRelease{Model: FormatDigest(d), BundleDigest: "sha256:" + hex.EncodeToString(bd[:]), NodeKey: kc.Marshal(),
		Broker: b.cfg.ID, Created: now.UTC().Truncate(time.Second), Nonce: req.Nonce, Release: rel.key, ReleaseIndex: rel.index}
	if ms := measurement(res); ms != nil {
		kr.Measurement = ms
	}
	rec := &tlog.Record{Schema: tlog.Schema, Type: tlog.TypeKeyRelease, KeyRelease: kr}
	if err := rec.Sign(b.cfg.Publisher); err != nil {
		return nil, err
	}
	leaf, err := rec.Canonical()
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, b.cfg.LogTimeout)
	defer cancel()
	t1 := time.Now()
	proof, _, err := tlog.Publish(pctx, b.cfg.HTTP, b.cfg.LogURL, leaf)
	b.metrics.phase.WithLabelValues("log").Observe(time.Since(t1).Seconds())
	if err != nil {
		return nil, &refusal{http.StatusServiceUnavailable, "the release log did not take the key-release record, so no key is released: " + err.Error()}
	}
	if _, err := b.ver.VerifyProof(proof, now); err != nil {
		return nil, &refusal{http.StatusServiceUnavailable, "the key-release record is not yet in a checkpoint with the log's witness quorum, so no key is released: " + err.Error()}
	}
	sealed, err := wire.SealTo(kc, suite, wire.KeyReleaseInfo(d, req.Nonce, proof.Index), key)
	if err != nil {
		return nil, err
	}
	if err := b.cfg.Store.AddRelease(ctx, Release{LogIndex: proof.Index, Model: d, Bundle: bd, NodeKey: kc.Marshal(), At: now}); err != nil {
		return nil, fmt.Errorf("recording the release: %v", err)
	}
	return &ReleaseResponse{KeyID: kc.ID, KEM: kc.KEM, KDF: suite.KDF, AEAD: suite.AEAD, Sealed: sealed, LogIndex: proof.Index, Proof: proof.Marshal()}, nil
}

type nodeRelease struct {
	key   string
	index uint64
}

// releaseOf checks that the bundle's release (verified by the appraisal)
// may serve the model.
func (b *Broker) releaseOf(bundle *attest.Bundle, model [32]byte) (*nodeRelease, error) {
	if bundle.Release == nil {
		return nil, errors.New("the bundle staples no release proof: the broker cannot tell which models the node's software may serve")
	}
	p, err := tlog.ParseProof(bundle.Release)
	if err != nil {
		return nil, err
	}
	rec, err := tlog.ParseRecord(p.Record)
	if err != nil || rec.Release == nil {
		return nil, errors.New("the bundle's release proof holds no release record")
	}
	if !slices.ContainsFunc(rec.Release.Models, func(c tlog.Component) bool { return c.Digest == FormatDigest(model) }) {
		return nil, fmt.Errorf("release %s may not serve model %s (its record lists the models it may serve)", rec.Release.Key(), FormatDigest(model))
	}
	return &nodeRelease{key: rec.Release.Key(), index: p.Index}, nil
}

func measurement(r *attest.Result) []byte {
	for _, name := range r.DeviceNames() {
		if m, ok := r.Devices[name].Claims[attest.ClaimMeasurement].(string); ok {
			b, _ := hex.DecodeString(m)
			return b
		}
	}
	return nil
}

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "the request body is not the expected JSON object (or is too large)")
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg}})
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
