package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/appraiser"
	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/up"
)

// clientFlags are the flags of the commands that talk to nodes.
type clientFlags struct {
	relay          string
	candidates     int
	nodes          []string
	policy         string
	receipts       string
	allowClassical bool
	up             bool // --up: reach the sworn up running in upDir
	upDir          string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.relay, "relay", "", "the relay's `URL`: its directory's nodes are appraised on this machine")
	cmd.Flags().IntVar(&f.candidates, "candidates", 2, "encrypt each request to `K` verified nodes through the relay, which picks one (1 to 8)")
	cmd.Flags().StringArrayVar(&f.nodes, "node", nil, "a node's base `URL`, reached directly (repeatable; instead of --relay)")
	cmd.Flags().StringVar(&f.policy, "policy", "", "policy `FILE` every node must pass")
	cmd.Flags().StringVar(&f.receipts, "receipts", "", "keep receipts in `DIR` (default $XDG_DATA_HOME/sworn/receipts)")
	cmd.Flags().BoolVar(&f.allowClassical, "allow-classical", false, "accept node keys without post-quantum protection")
}

// pool verifies the nodes and returns the transport, printing which
// nodes verified and why the others did not.
func (f *clientFlags) transport(ctx context.Context, stderr io.Writer) (*client.Transport, error) {
	if f.up {
		if f.relay != "" || len(f.nodes) > 0 {
			return nil, usageErr("--up reaches the running sworn up's relay: drop --relay and --node")
		}
		dir, err := upDir(f.upDir)
		if err != nil {
			return nil, err
		}
		r, err := up.ReadRunning(dir)
		if err != nil {
			return nil, usageErr("--up: %v", err)
		}
		f.relay = r.RelayURL
		if f.policy == "" {
			f.policy = r.Policy
		}
		if f.receipts == "" {
			f.receipts = r.Receipts
		}
	}
	if f.policy == "" || (len(f.nodes) == 0) == (f.relay == "") {
		return nil, usageErr("--policy and either --relay or at least one --node are required")
	}
	if f.candidates < 1 || f.candidates > 8 {
		return nil, usageErr("--candidates is %d; it must be 1 to 8", f.candidates)
	}
	p, err := loadPolicy(f.policy)
	if err != nil {
		return nil, err
	}
	dir := f.receipts
	if dir == "" {
		if dir, err = client.DefaultReceiptDir(); err != nil {
			return nil, usageErr("%v (or pass --receipts DIR)", err)
		}
	}
	c := &client.Client{Policy: p, AllowClassical: f.allowClassical}
	var pool *client.Pool
	if f.relay != "" {
		pool, err = c.NewRelayPool(ctx, f.relay, f.candidates)
	} else {
		pool, err = c.NewPool(ctx, f.nodes)
	}
	var nv *client.NoVerifiedNodeError
	if errors.As(err, &nv) {
		for u, why := range nv.Reasons {
			fmt.Fprintf(stderr, "sworn: ✘ %s: %s\n", u, why)
		}
		return nil, failErr("no node passed the policy %s; nothing was sent", f.policy)
	}
	if err != nil {
		return nil, failErr("%v", err)
	}
	for _, n := range pool.Nodes() {
		fmt.Fprintf(stderr, "sworn: ✔ %s verified (%s)\n", n.URL, n.Describe())
	}
	for u, why := range pool.Reasons() {
		fmt.Fprintf(stderr, "sworn: ✘ %s not used: %s\n", u, why)
	}
	return &client.Transport{Pool: pool, Store: &client.ReceiptStore{Dir: dir}}, nil
}

func newProxyCmd() *cobra.Command {
	var f clientFlags
	var listen, tokenFile string
	var allowRemote bool
	cmd := &cobra.Command{
		Use:   "proxy --relay URL [--candidates K] | --node URL...  --policy FILE [--listen 127.0.0.1:8000]",
		Short: "An OpenAI-compatible API on loopback whose every answer comes from a node this machine verified",
		Long: `proxy verifies each node's evidence on this machine, then serves an
OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/embeddings,
/v1/models): each request is encrypted to a verified node, and each answer's
receipt is verified and kept before its last byte is passed on. Point any
OpenAI SDK at http://LISTEN/v1. It listens on loopback only, unless
--allow-remote with --token FILE (a bearer token every request must carry).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usageErr("--listen %q: want host:port", excerpt(listen))
			}
			loopback := host == "localhost" || net.ParseIP(host).IsLoopback()
			var token string
			if !loopback {
				if !allowRemote || tokenFile == "" {
					return usageErr("--listen %s is not a loopback address: prompts would reach this proxy in plaintext over the network; pass --allow-remote with --token FILE, or listen on 127.0.0.1", listen)
				}
				b, err := readInput("--token", tokenFile)
				if err != nil {
					return err
				}
				if token = strings.TrimSpace(string(b)); len(token) < 16 {
					return usageErr("--token %s: the token must be at least 16 characters", tokenFile)
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tr, err := f.transport(ctx, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ln, err := listenTCP("proxy", listen)
			if err != nil {
				return err
			}
			defer ln.Close()
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			fmt.Fprintf(cmd.ErrOrStderr(), "sworn: OpenAI base URL http://%s/v1; receipts in %s\n", ln.Addr(), tr.Store.Dir)
			return serveStreams(ctx, cmd, ln, &client.Proxy{Transport: tr, Logger: log, Token: token}, "proxy", 10*time.Second)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8000", "listen `ADDR` (loopback)")
	cmd.Flags().BoolVar(&allowRemote, "allow-remote", false, "allow a non-loopback --listen (needs --token)")
	cmd.Flags().StringVar(&tokenFile, "token", "", "bearer token `FILE` requests must carry (with --allow-remote)")
	return cmd
}

func newAskCmd() *cobra.Command {
	var f clientFlags
	var model string
	cmd := &cobra.Command{
		Use:   `ask --relay URL | --node URL... --policy FILE | --up [--dir DIR] "prompt"`,
		Short: "Ask one question; the answer streams to stdout, the receipt id and verdict to stderr",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tr, err := f.transport(ctx, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			body := fmt.Sprintf(`{"model":%q,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":%s}]}`, model, jsonString(args[0]))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://node/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return failErr("%v", err)
			}
			defer resp.Body.Close()
			if err := printStream(cmd.OutOrStdout(), resp.Body); err != nil {
				return failErr("the answer: %v", err)
			}
			id := resp.Trailer.Get("Sworn-Receipt")
			fmt.Fprintf(cmd.ErrOrStderr(), "sworn: receipt %s verified (%s); again, offline: sworn receipts verify %s --dir %s --policy %s\n",
				id, resp.Trailer.Get("Sworn-Node"), id, tr.Store.Dir, f.policy)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.up, "up", false, "ask through the sworn up running in --dir, under its policy, keeping the receipt in its receipts")
	cmd.Flags().StringVar(&f.upDir, "dir", "", "with --up: the stack's `DIR` (default: sworn up's default)")
	cmd.Flags().StringVar(&model, "model", "echo", "the `MODEL` to ask")
	return cmd
}

func newReceiptsCmd() *cobra.Command {
	var dir, policyPath, out, at string
	store := func() (*client.ReceiptStore, error) {
		if dir == "" {
			d, err := client.DefaultReceiptDir()
			if err != nil {
				return nil, usageErr("%v (or pass --dir DIR)", err)
			}
			dir = d
		}
		return &client.ReceiptStore{Dir: dir}, nil
	}
	cmd := &cobra.Command{Use: "receipts", Short: "List, show, verify and export the receipts this machine kept"}
	cmd.PersistentFlags().StringVar(&dir, "dir", "", "the receipt `DIR` (default $XDG_DATA_HOME/sworn/receipts)")
	list := &cobra.Command{Use: "list", Short: "List kept receipts", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		s, err := store()
		if err != nil {
			return err
		}
		ids, err := s.List()
		if err != nil {
			return failErr("%v", err)
		}
		for _, id := range ids {
			k, _, err := s.Get(id)
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  (unreadable: %v)\n", id, err)
				continue
			}
			r, err := receipt.Parse(k.Receipt)
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  (not a receipt: %v)\n", id, err)
				continue
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s  %s  status %d  %d+%d tokens\n", id, r.Payload.At().Format(time.RFC3339), r.Payload.Status, r.Payload.Tokens.Prompt, r.Payload.Tokens.Completion)
		}
		return nil
	}}
	show := &cobra.Command{Use: "show ID", Short: "Show a kept receipt as JSON", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		s, err := store()
		if err != nil {
			return err
		}
		k, _, err := s.Get(args[0])
		if err != nil {
			return usageErr("%v", err)
		}
		r, err := receipt.Parse(k.Receipt)
		if err != nil {
			return usageErr("receipt %s: %v", args[0], err)
		}
		return printJSON(cmd.OutOrStdout(), map[string]any{"id": client.ReceiptID(k.Receipt), "payload": r.Payload, "receipt": hex.EncodeToString(k.Receipt)})
	}}
	verify := &cobra.Command{Use: "verify ID --policy FILE [--at RFC3339]", Short: "Verify a kept receipt offline with its bundle", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		s, err := store()
		if err != nil {
			return err
		}
		k, b, err := s.Get(args[0])
		if err != nil {
			return usageErr("%v", err)
		}
		r, err := verifyReceiptWith(k.Receipt, b, policyPath, at)
		if err != nil {
			return err
		}
		return report(cmd.OutOrStdout(), r, false)
	}}
	verify.Flags().StringVar(&policyPath, "policy", "", "policy `FILE`")
	verify.Flags().StringVar(&at, "at", "", "verify at this `RFC3339` time instead of now")
	export := &cobra.Command{Use: "export ID --out PREFIX", Short: "Write PREFIX.receipt and PREFIX.bundle, for sworn verify receipt anywhere", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		s, err := store()
		if err != nil {
			return err
		}
		if out == "" {
			return usageErr("--out PREFIX is required")
		}
		k, _, err := s.Get(args[0])
		if err != nil {
			return usageErr("%v", err)
		}
		for ext, data := range map[string][]byte{".receipt": k.Receipt, ".bundle": k.Bundle} {
			if err := writeFileAtomic(out+ext, data, 0o644); err != nil {
				return failErr("%v", err)
			}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s.receipt and %s.bundle; verify with: sworn verify receipt %s.receipt --bundle %s.bundle --policy FILE\n", out, out, out, out)
		return nil
	}}
	export.Flags().StringVar(&out, "out", "", "output `PREFIX`")
	cmd.AddCommand(list, show, verify, export)
	return cmd
}

// verifyReceiptWith verifies a kept receipt with its bundle under a policy.
func verifyReceiptWith(rc []byte, b *attest.Bundle, policyPath, atFlag string) (*attest.Result, error) {
	if policyPath == "" {
		return nil, usageErr("--policy is required")
	}
	at, err := parseAt(atFlag)
	if err != nil {
		return nil, err
	}
	p, err := loadPolicy(policyPath)
	if err != nil {
		return nil, err
	}
	ap := appraiser.New()
	return receipt.Appraise(context.Background(), rc, b, attest.Options{At: at, Policy: p, Verifiers: ap.Verifiers(), Release: ap.Release()}, nil), nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// printStream prints the content deltas of an OpenAI chat stream as they
// arrive.
func printStream(w io.Writer, body io.Reader) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal([]byte(data), &chunk) == nil && len(chunk.Choices) > 0 {
			io.WriteString(w, chunk.Choices[0].Delta.Content)
		}
	}
	io.WriteString(w, "\n")
	return sc.Err()
}
