// Package up is `sworn up`: the whole stack on simulated hardware, on
// loopback, with embedded storage in one directory — a release log and two
// witnesses, the simulated node software's release published and
// cosigned, nodes with their proofs stapled, and the OpenAI-compatible
// proxy whose every answer comes from a node this machine verified.
package up

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/node"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/relay"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/server"
	"github.com/sworn-dev/sworn/tlog/witness"
)

// Config configures the stack.
type Config struct {
	// Dir holds the keys, the log, the witnesses' state, the policy and the
	// receipts. A second run reuses it.
	Dir string
	// Nodes and GPUs: how many simulated nodes, each with how many GPUs.
	Nodes, GPUs int
	// Engine is echo (the built-in engine) or an OpenAI-compatible URL on
	// loopback.
	Engine string
	// Listen is the proxy's address (loopback).
	Listen string
	// Logger gets the components' logs.
	Logger *slog.Logger
	// Model is the model the nodes serve, sealed behind the stack's key
	// broker: its key is registered with the broker, its digest listed in
	// the release, and each node obtains the key through the broker at
	// start. Nil: a demo model made on the first run and kept in Dir.
	Model *Model
}

// Model is a model whose key the broker holds.
type Model struct {
	Name   string
	Digest [32]byte
	Key    []byte
	// Sealed is the model's sealed directory (docs/seal.md), which each
	// node unseals into memory with the key it obtained; empty: the key
	// alone is checked.
	Sealed string
}

// Stack is a running stack.
type Stack struct {
	// ProxyURL is the OpenAI-compatible base URL (…/v1 for SDKs).
	ProxyURL string
	// LogURL, KBSURL, RelayURL, NodeURLs: the release log, the key broker,
	// the relay and the nodes.
	LogURL   string
	KBSURL   string
	RelayURL string
	NodeURLs []string
	// Model is the model the nodes serve.
	Model Model
	// Release is the release proof (c2sp.org/tlog-proof) the nodes staple.
	Release []byte
	// Policy is the policy file clients use; Receipts the receipt store.
	Policy   string
	Receipts string

	transport *client.Transport
	closers   []func()
}

// Transport is the stack's client transport: requests through it go,
// encrypted, to the stack's verified nodes (for SDKs given an HTTP client).
func (s *Stack) Transport() *client.Transport { return s.transport }

// The names of the stack's keys and files inside Dir.
const (
	logOrigin    = "sworn-up.log"
	releaseFile  = "release.json"
	policyFile   = "policy.yaml"
	receiptsDir  = "receipts"
	releaseVer   = "up-1"
	runningFile  = "running.json"
	witnessCount = 2
)

// Start starts the stack; Close stops it.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8000"
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	s := &Stack{Policy: filepath.Join(cfg.Dir, policyFile), Receipts: filepath.Join(cfg.Dir, receiptsDir)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	log := cfg.Logger

	// Keys: made once, reused.
	logSK, logVK, err := key(cfg.Dir, tlog.KindLog, logOrigin, "log")
	if err != nil {
		return nil, err
	}
	_, pubVK, err := key(cfg.Dir, tlog.KindPublisher, "sworn-up.publisher", "publisher")
	if err != nil {
		return nil, err
	}
	logSigner, err := note.NewSigner(logSK)
	if err != nil {
		return nil, err
	}
	logVer, _ := tlog.ParseVerifier(logVK)
	pubSigner, err := tlog.NewSigner(filepath.Join(cfg.Dir, "publisher.key"), tlog.KindPublisher)
	if err != nil {
		return nil, err
	}
	pubVer, _ := tlog.ParseVerifier(pubVK)

	// Witnesses.
	var wpol strings.Builder
	var wkeys, wnames []string
	for i := range witnessCount {
		name := fmt.Sprintf("witness%d", i+1)
		_, wvk, err := key(cfg.Dir, tlog.KindWitness, "sworn-up."+name, name)
		if err != nil {
			return nil, err
		}
		cos, err := tlog.NewCosigner(filepath.Join(cfg.Dir, name+".key"))
		if err != nil {
			return nil, err
		}
		w, err := witness.New(witness.Config{Dir: filepath.Join(cfg.Dir, name), Signer: cos, Logs: []note.Verifier{logVer},
			Marker: filepath.Join(cfg.Dir, name+".cosigned"), Logger: log.With("component", name)})
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		s.closers = append(s.closers, func() { w.Close() })
		u, err := s.serve("127.0.0.1:0", w.Handler())
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&wpol, "witness %s %s %s\n", name, wvk, u)
		wkeys, wnames = append(wkeys, wvk), append(wnames, name)
	}
	fmt.Fprintf(&wpol, "group witnesses %d %s\nquorum witnesses\n", witnessCount, strings.Join(wnames, " "))
	group, err := tessera.NewWitnessGroupFromPolicy([]byte(wpol.String()))
	if err != nil {
		return nil, err
	}

	// The release log.
	ls, err := server.New(ctx, server.Config{Dir: filepath.Join(cfg.Dir, "log"), Signer: logSigner, Publishers: []note.Verifier{pubVer},
		Witnesses: &group, Logger: log.With("component", "log")})
	if err != nil {
		return nil, fmt.Errorf("release log: %v", err)
	}
	s.closers = append(s.closers, func() { ls.Close(context.Background()) })
	if s.LogURL, err = s.serve("127.0.0.1:0", ls.Handler()); err != nil {
		return nil, err
	}

	// The model, and the release of the simulated node software that may
	// serve it, published once and proven again on each run.
	if cfg.Model == nil {
		if cfg.Model, err = demoModel(cfg.Dir); err != nil {
			return nil, err
		}
	}
	s.Model = *cfg.Model
	leaf, err := releaseLeaf(cfg.Dir, cfg.GPUs, *cfg.Model, pubSigner)
	if err != nil {
		return nil, err
	}
	proof, _, err := tlog.Publish(ctx, nil, s.LogURL, leaf)
	if err != nil {
		return nil, fmt.Errorf("publishing the release: %v", err)
	}
	proofBytes := proof.Marshal()
	s.Release = proofBytes

	// The policy clients (and the nodes themselves) apply.
	o, err := sim.StarterOptions(cfg.GPUs)
	if err != nil {
		return nil, err
	}
	o.Log = &policy.StarterLog{Origin: logOrigin, Key: logVK, Witnesses: wkeys, Quorum: witnessCount, Publishers: []string{pubVK}}
	polData := policy.Starter(o)
	pol, err := policy.Parse(s.Policy, polData)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.Policy, polData, 0o644); err != nil {
		return nil, err
	}

	// The key broker, with the model's key.
	store, err := kbs.OpenStore(ctx, "sqlite:"+filepath.Join(cfg.Dir, "kbs.db"))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { store.Close() })
	kek, err := secretFile(filepath.Join(cfg.Dir, "kbs.kek"))
	if err != nil {
		return nil, err
	}
	broker, err := kbs.New(ctx, kbs.Config{Store: store, KEK: kek, Policy: pol, LogURL: s.LogURL, Publisher: pubSigner, ID: "sworn-up-kbs", Logger: log.With("component", "kbs")})
	if err != nil {
		return nil, err
	}
	if err := broker.Register(ctx, cfg.Model.Name, cfg.Model.Digest, cfg.Model.Key); err != nil {
		return nil, err
	}
	if s.KBSURL, err = s.serve("127.0.0.1:0", broker.Handler()); err != nil {
		return nil, err
	}

	// The engine and the nodes, each with the model's key from the broker.
	engineURL, err := s.engine(cfg.Engine)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		n, err := node.New(node.Config{Platform: &node.SimPlatform{Seed: uint64(i + 1), GPUs: cfg.GPUs}, Policy: pol, Release: proofBytes,
			Engine: engineURL, Logger: log.With("component", fmt.Sprintf("node%d", i+1)),
			Models: map[string]string{cfg.Model.Name: kbs.FormatDigest(cfg.Model.Digest)}})
		if err != nil {
			return nil, err
		}
		if err := n.Rotate(ctx); err != nil {
			return nil, fmt.Errorf("node %d: %v", i+1, err)
		}
		key, err := n.FetchModelKey(ctx, s.KBSURL, cfg.Model.Digest)
		if err != nil {
			return nil, fmt.Errorf("node %d: the model key: %v", i+1, err)
		}
		if subtle.ConstantTimeCompare(key, cfg.Model.Key) != 1 {
			return nil, fmt.Errorf("node %d: the key broker released another key than the model's", i+1)
		}
		if cfg.Model.Sealed != "" {
			files, err := node.UnsealModel(cfg.Model.Sealed, key, cfg.Model.Digest)
			if err != nil {
				return nil, fmt.Errorf("node %d: %v", i+1, err)
			}
			log.Info("model unsealed", "component", fmt.Sprintf("node%d", i+1), "model", kbs.FormatDigest(cfg.Model.Digest), "files", len(files))
		}
		nctx, cancel := context.WithCancel(context.Background())
		go n.Run(nctx)
		s.closers = append(s.closers, cancel)
		u, err := s.serve("127.0.0.1:0", n.Handler())
		if err != nil {
			return nil, err
		}
		s.NodeURLs = append(s.NodeURLs, u)
	}

	// The relay in front of the nodes, and the proxy that reaches them
	// through it: each request encrypted to two candidates (one with a
	// single node), the relay choosing.
	rl, err := relay.New(relay.Config{Nodes: s.NodeURLs, Logger: log.With("component", "relay")})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, rl.Close)
	if err := rl.Refresh(ctx); err != nil {
		return nil, err
	}
	rctx, rcancel := context.WithCancel(context.Background())
	go rl.Run(rctx)
	s.closers = append(s.closers, rcancel)
	if s.RelayURL, err = s.serve("127.0.0.1:0", rl.Handler()); err != nil {
		return nil, err
	}
	c := &client.Client{Policy: pol}
	pool, err := c.NewRelayPool(ctx, s.RelayURL, min(2, cfg.Nodes))
	if err != nil {
		return nil, err
	}
	s.transport = &client.Transport{Pool: pool, Store: &client.ReceiptStore{Dir: s.Receipts}}
	px := &client.Proxy{Transport: s.transport, Logger: log.With("component", "proxy")}
	if s.ProxyURL, err = s.serve(cfg.Listen, px); err != nil {
		return nil, err
	}

	// Where the running stack is, for `sworn ask --up`; gone when it stops.
	rp := filepath.Join(cfg.Dir, runningFile)
	run, _ := json.Marshal(Running{ProxyURL: s.ProxyURL, RelayURL: s.RelayURL, Policy: s.Policy, Receipts: s.Receipts, PID: os.Getpid()})
	if err := os.WriteFile(rp, append(run, '\n'), 0o644); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { os.Remove(rp) })
	return s, nil
}

// Running is where a running stack serves: kept in DIR/running.json while
// it runs.
type Running struct {
	ProxyURL string `json:"proxy"`
	RelayURL string `json:"relay"`
	Policy   string `json:"policy"`
	Receipts string `json:"receipts"`
	PID      int    `json:"pid"`
}

// ReadRunning returns where the stack running in dir serves.
func ReadRunning(dir string) (*Running, error) {
	p := filepath.Join(dir, runningFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no sworn up is running with --dir %s (%s is absent): start sworn up first", dir, p)
	}
	if err != nil {
		return nil, err
	}
	var r Running
	if len(data) > 64<<10 || json.Unmarshal(data, &r) != nil || r.RelayURL == "" || r.Policy == "" {
		return nil, fmt.Errorf("%s is not what sworn up writes: remove it and start sworn up again", p)
	}
	return &r, nil
}

// Close stops every component, the last started first.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// serve serves h on a loopback address and returns its URL.
func (s *Stack) serve(addr string, h http.Handler) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: want host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("listen address %s is not on loopback: sworn up serves this machine only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	go srv.Serve(ln)
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String(), nil
}

func (s *Stack) engine(engine string) (*url.URL, error) {
	if engine == "" || engine == "echo" {
		u, err := s.serve("127.0.0.1:0", echo.New(echo.Options{}))
		if err != nil {
			return nil, err
		}
		return url.Parse(u)
	}
	u, err := url.Parse(engine)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("engine %q: give echo or the engine's base URL on loopback", engine)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("engine %s is not on loopback", engine)
	}
	return u, nil
}

// key returns the secret and verifier key stored as DIR/file.key and
// .pub, making them on first use.
func key(dir string, kind tlog.KeyKind, name, file string) (skey, vkey string, err error) {
	kp, vp := filepath.Join(dir, file+".key"), filepath.Join(dir, file+".pub")
	if _, err := os.Stat(kp); err == nil {
		v, err := tlog.ReadKeyFile(vp)
		if err != nil {
			return "", "", err
		}
		s, err := tlog.ReadKeyFile(kp)
		return s, v, err
	}
	if skey, vkey, err = tlog.GenerateKey(kind, name); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(kp, []byte(tlog.KeyFile(kind, skey)), 0o600); err != nil {
		return "", "", err
	}
	return skey, vkey, os.WriteFile(vp, []byte(vkey+"\n"), 0o644)
}

// releaseLeaf returns the signed release record of the simulated node
// software, which may serve the model: kept in DIR so that every run
// proves the same log entry.
func releaseLeaf(dir string, gpus int, m Model, pub note.Signer) ([]byte, error) {
	p := filepath.Join(dir, releaseFile)
	if data, err := os.ReadFile(p); err == nil {
		r, err := tlog.ParseRecord(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		if r.Release == nil || r.Release.GPU.Count == nil || *r.Release.GPU.Count != gpus {
			return nil, fmt.Errorf("%s is the release of another machine shape than --gpus %d: use another --dir", p, gpus)
		}
		if len(r.Release.Models) != 1 || r.Release.Models[0].Digest != kbs.FormatDigest(m.Digest) {
			return nil, fmt.Errorf("%s is the release of another model: use another --dir", p)
		}
		return data, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	r, err := sim.ReleaseRecord(releaseVer, time.Now(), gpus)
	if err != nil {
		return nil, err
	}
	r.Release.Models = []tlog.Component{{Name: m.Name, Digest: kbs.FormatDigest(m.Digest)}}
	if err := r.Sign(pub); err != nil {
		return nil, err
	}
	leaf, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	return leaf, os.WriteFile(p, leaf, 0o644)
}

// Instructions are what `sworn up` prints: the proxy URL and how to use it.
func (s *Stack) Instructions(w io.Writer) {
	base := s.ProxyURL + "/v1"
	req, _ := json.Marshal(map[string]any{"model": "echo", "stream": true, "messages": []map[string]string{{"role": "user", "content": "Hello, sworn!"}}})
	fmt.Fprintf(w, `sworn up: proxy at %s (simulated hardware: every node's evidence is SIMULATED)

  curl -N %s/chat/completions -H 'Content-Type: application/json' -d '%s'

  Python:  from openai import OpenAI
           print(OpenAI(base_url=%q, api_key="unused").chat.completions.create(
               model="echo", messages=[{"role": "user", "content": "Hello, sworn!"}]).choices[0].message.content)
  Node.js: import OpenAI from "openai";
           const r = await new OpenAI({baseURL: %q, apiKey: "unused"}).chat.completions.create(
               {model: "echo", messages: [{role: "user", content: "Hello, sworn!"}]});

  relay:    %s
  nodes:    %s
  log:      %s
  policy:   %s
  receipts: %s  (sworn receipts list --dir %s)
Ctrl-C stops everything.
`, s.ProxyURL, base, req, base, base, s.RelayURL, strings.Join(s.NodeURLs, " "), s.LogURL, s.Policy, s.Receipts, s.Receipts)
}

// secretFile returns the 32 random bytes kept in path, made on first use.
func secretFile(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("%s is %d bytes, not a 32-byte key", path, len(b))
		}
		return b, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b := make([]byte, 32)
	rand.Read(b)
	return b, os.WriteFile(path, b, 0o600)
}
