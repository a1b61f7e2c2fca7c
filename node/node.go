// Package node is sworn's node: the attested OHTTP gateway that runs inside
// a confidential VM in front of an OpenAI-compatible inference engine on
// its loopback (docs/node.md).
//
// At each epoch the node makes its request keys (wire.NodeKeys) and its
// receipt key in memory only, collects evidence bound to them through its
// Platform, and appraises its own bundle with the same appraiser clients
// use. It serves prompts only while that appraisal passes; otherwise every
// gateway request gets 503 with the reason. It decrypts requests meant for
// its keys, forwards the plaintext to the engine, streams the answer back
// sealed chunk by chunk, and signs a receipt for each answer. It writes
// nothing to disk, and logs request ids only.
package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sworn-dev/sworn/appraiser"
	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/ratelimit"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/wire"
)

// Defaults of Config.
const (
	DefaultEpoch        = time.Hour
	DefaultGrace        = 5 * time.Minute
	DefaultReplayWindow = time.Minute
	DefaultMaxRequest   = 4 << 20
	DefaultMaxStreams   = 256
	DefaultEngineWait   = 2 * time.Minute
	DefaultStreamIdle   = time.Minute
)

// Config configures a node.
type Config struct {
	// Platform collects the node's evidence. Required.
	Platform Platform
	// Policy is applied to the node's own bundle. Required.
	Policy *policy.Policy
	// AllowWarning lets the node serve when its self-appraisal is only a
	// warning (for example under simulated roots with checks skipped).
	AllowWarning bool
	// Release is the release proof stapled to every bundle (may be nil).
	Release []byte
	// Engine is the base URL of the OpenAI-compatible engine, on loopback.
	Engine *url.URL
	// Models maps the model names the node serves to their digests, for
	// receipts.
	Models map[string]string
	// Epoch is the validity of a passport bundle and of its keys; Grace how
	// long the previous epoch's keys still decrypt after a rotation.
	Epoch, Grace time.Duration
	// ReplayWindow is how far a request's Date may be from the node's clock.
	ReplayWindow time.Duration
	// MaxRequest bounds an encapsulated request; MaxStreams the requests
	// served at once; EngineWait the wait for the engine's first byte;
	// StreamIdle the longest pause in a streamed answer.
	MaxRequest             int64
	MaxStreams             int
	EngineWait, StreamIdle time.Duration
	// Logger receives structured logs with request ids only (never a
	// prompt, an answer, a header value or a key).
	Logger *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Appraiser is the appraisal (appraiser.New() if nil).
	Appraiser *appraiser.Appraiser
}

// epoch is one generation of keys and evidence.
type epoch struct {
	keys     []*wire.PrivateKey
	configs  []byte // application/ohttp-keys
	receipt  ed25519.PrivateKey
	bundle   *attest.Bundle
	encoded  []byte
	digest   [32]byte
	named    receipt.Payload // the receipt fields that name the bundle, filled once
	etag     string
	notAfter time.Time
	result   *attest.Result
}

// Node is a running node. Its handler serves the endpoints of docs/node.md.
type Node struct {
	cfg     Config
	log     *slog.Logger
	engine  *http.Client
	replay  *wire.ReplayFilter
	metrics *metrics
	streams chan struct{}
	attest  *ratelimit.Bucket

	rotating sync.Mutex // one Rotate at a time
	nextID   uint8      // the first key id of the next epoch

	mu        sync.RWMutex
	cur, prev *epoch
	prevUntil time.Time
	ready     bool
	reason    string
}

// New checks the configuration and makes a node; Rotate makes its first
// epoch.
func New(cfg Config) (*Node, error) {
	switch {
	case cfg.Platform == nil:
		return nil, errors.New("node: no platform")
	case cfg.Policy == nil:
		return nil, errors.New("node: no policy to appraise the node's own evidence with")
	case cfg.Engine == nil:
		return nil, errors.New("node: no engine URL")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Epoch, DefaultEpoch)
	def(&cfg.Grace, DefaultGrace)
	def(&cfg.ReplayWindow, DefaultReplayWindow)
	def(&cfg.EngineWait, DefaultEngineWait)
	def(&cfg.StreamIdle, DefaultStreamIdle)
	if cfg.MaxRequest <= 0 {
		cfg.MaxRequest = DefaultMaxRequest
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Appraiser == nil {
		cfg.Appraiser = appraiser.New()
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger,
		engine: &http.Client{Transport: &http.Transport{
			ResponseHeaderTimeout: cfg.EngineWait, MaxIdleConnsPerHost: cfg.MaxStreams, DisableCompression: true,
		}},
		replay:  wire.NewReplayFilter(cfg.ReplayWindow, 1<<20),
		metrics: newMetrics(),
		streams: make(chan struct{}, cfg.MaxStreams),
		attest:  ratelimit.New(time.Second, 4),
		reason:  "the node is starting: it has not yet appraised its own evidence",
	}
	// A random first key id, so that nodes behind one relay seldom share
	// their key ids (a relay routes a plain request by its key id).
	var b [1]byte
	rand.Read(b[:])
	n.nextID = b[0] &^ 1
	return n, nil
}

// Rotate starts a new epoch: new keys, fresh evidence bound to them, and
// the self-appraisal. The previous epoch's keys keep decrypting for Grace.
// It returns an error, and the node does not serve, when the evidence
// cannot be collected or does not pass.
func (n *Node) Rotate(ctx context.Context) error {
	n.rotating.Lock()
	defer n.rotating.Unlock()
	start := n.cfg.Now()
	e, err := n.newEpoch(ctx, start)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.reason = err.Error()
		if n.cur == nil || !start.Before(n.cur.notAfter) {
			n.ready = false
		}
		n.metrics.rotations.WithLabelValues("failed").Inc()
		n.log.Error("epoch not started", "err", err)
		return err
	}
	if n.cur != nil {
		n.prev, n.prevUntil = n.cur, start.Add(n.cfg.Grace)
	}
	n.cur, n.ready, n.reason = e, true, ""
	n.metrics.rotations.WithLabelValues("ok").Inc()
	n.log.Info("epoch started", "bundle", e.etag, "until", e.notAfter.UTC().Format(time.RFC3339), "verdict", string(e.result.Verdict), "simulated", e.result.Simulated, "took", time.Since(start).String())
	return nil
}

func (n *Node) newEpoch(ctx context.Context, at time.Time) (*epoch, error) {
	keys, err := wire.NodeKeys(n.nextID)
	if err != nil {
		return nil, err
	}
	n.nextID += 2
	_, receipt, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	e := &epoch{keys: keys, receipt: receipt}
	var cfgs []wire.KeyConfig
	for _, k := range keys {
		cfgs = append(cfgs, k.Config())
	}
	e.configs = wire.MarshalKeyConfigs(cfgs)
	nk := attest.NodeKeys{RequestKeys: e.configs, ReceiptKey: receipt.Public().(ed25519.PublicKey)}
	b, err := n.cfg.Platform.Bundle(ctx, EvidenceRequest{Keys: nk, At: at, Epoch: n.cfg.Epoch, Release: n.cfg.Release})
	if err != nil {
		return nil, fmt.Errorf("collecting evidence (%s): %v", n.cfg.Platform.Name(), err)
	}
	if err := n.selfAppraise(ctx, b, nil, at, e); err != nil {
		return nil, err
	}
	e.bundle, e.notAfter = b, time.Unix(b.Freshness.Epoch.NotAfter, 0)
	if e.encoded, err = b.Marshal(); err != nil {
		return nil, err
	}
	e.digest = sha256.Sum256(e.encoded)
	if err := e.named.SetBundle(b); err != nil {
		return nil, err
	}
	e.etag = `"` + hex.EncodeToString(e.digest[:16]) + `"`
	return e, nil
}

// selfAppraise appraises the node's own bundle with the client's pipeline.
func (n *Node) selfAppraise(ctx context.Context, b *attest.Bundle, nonce []byte, at time.Time, e *epoch) error {
	r := n.cfg.Appraiser.Appraise(ctx, b, appraiser.Options{At: at, Policy: n.cfg.Policy, Nonce: nonce})
	if e != nil {
		e.result = r
	}
	switch {
	case r.Verdict == attest.Affirming:
		return nil
	case r.Verdict == attest.Warning && n.cfg.AllowWarning:
		n.log.Warn("self-appraisal is a warning; serving because the node allows it", "why", r.FirstProblem())
		return nil
	}
	return fmt.Errorf("self-appraisal is %s: %s", r.Verdict, r.FirstProblem())
}

// Run rotates the epoch before each one ends, until ctx is done.
func (n *Node) Run(ctx context.Context) {
	for {
		n.mu.RLock()
		next := n.cfg.Epoch / 10
		if n.cur != nil {
			next = n.cur.notAfter.Sub(n.cfg.Now()) - n.cfg.Epoch/10
		}
		n.mu.RUnlock()
		t := time.NewTimer(max(next, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			n.Rotate(ctx)
		}
	}
}

// Ready reports whether the node serves prompts, and why not.
func (n *Node) Ready() (bool, string) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.ready && n.cur != nil && !n.cfg.Now().Before(n.cur.notAfter) {
		return false, "the epoch ended and no new one started"
	}
	return n.ready, n.reason
}

// keys returns the keys that decrypt now: the current epoch's and, within
// the grace period, the previous epoch's.
func (n *Node) keys() (cur *epoch, keys []*wire.PrivateKey) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.cur == nil {
		return nil, nil
	}
	keys = n.cur.keys
	if n.prev != nil && n.cfg.Now().Before(n.prevUntil) {
		keys = append(append([]*wire.PrivateKey(nil), keys...), n.prev.keys...)
	}
	return n.cur, keys
}

// epochOf returns the epoch that holds key k.
func (n *Node) epochOf(k *wire.PrivateKey) *epoch {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, e := range []*epoch{n.cur, n.prev} {
		if e == nil {
			continue
		}
		for _, x := range e.keys {
			if x == k {
				return e
			}
		}
	}
	return n.cur
}
