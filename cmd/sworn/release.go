package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
)

func newReleaseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Make, publish and show release records"}
	cmd.AddCommand(&cobra.Command{
		Use:   "template",
		Short: "Print a valid example release record (unsigned) on stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := json.MarshalIndent(tlog.Template(time.Now()), "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return nil
		},
	})

	var logURL, key, out string
	var timeout time.Duration
	publish := &cobra.Command{
		Use:   "publish --log URL --key FILE RECORD.json --out PROOF",
		Short: "Sign a record, append it to the log, wait until it is published, write its proof",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if logURL == "" || key == "" || out == "" {
				return usageErr("release publish: --log, --key and --out are required")
			}
			data, err := readInput("record", args[0])
			if err != nil {
				return err
			}
			rec, err := tlog.ParseRecord(data)
			if err != nil {
				return usageErr("release publish: %s: %v", args[0], err)
			}
			signer, err := tlog.NewSigner(key, tlog.KindPublisher)
			if err != nil {
				return usageErr("release publish: --key: %v", err)
			}
			if err := rec.Sign(signer); err != nil {
				return usageErr("release publish: %v", err)
			}
			leaf, err := rec.Canonical()
			if err != nil {
				return usageErr("release publish: %v", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			p, already, err := tlog.Publish(ctx, nil, logURL, leaf)
			if err != nil {
				return failErr("release publish: %v", err)
			}
			if err := writeFileAtomic(out, p.Marshal(), 0o644); err != nil {
				return failErr("release publish: write %s: %v", out, err)
			}
			size, _ := tlog.CheckpointSize(p.Checkpoint)
			if already {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is already in the log at index %d (nothing added); proof on the newest checkpoint that meets the log's witness policy (size %d) written to %s\n", describe(rec), p.Index, size, out)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s as entry %d; proof written to %s\n", describe(rec), p.Index, out)
			return nil
		},
	}
	publish.Flags().StringVar(&logURL, "log", "", "log `URL`")
	publish.Flags().StringVar(&key, "key", "", "publisher secret key `FILE`")
	publish.Flags().StringVar(&out, "out", "", "write the proof to `PROOF`")
	publish.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after this `DURATION` (an unreachable or restarting log is retried until then)")
	cmd.AddCommand(publish)

	var asJSON bool
	show := &cobra.Command{
		Use:   "show PROOF",
		Short: "Print a proof's record and checkpoint (nothing is verified)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput("proof", args[0])
			if err != nil {
				return err
			}
			p, err := tlog.ParseProof(data)
			if err != nil {
				return usageErr("release show: %s: %v", args[0], err)
			}
			rec, err := tlog.ParseLeaf(p.Record)
			if err != nil {
				return usageErr("release show: %s: %v", args[0], err)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				b, _ := json.MarshalIndent(map[string]any{"index": p.Index, "record": rec, "checkpoint": string(p.Checkpoint)}, "", "  ")
				fmt.Fprintf(w, "%s\n", b)
				return nil
			}
			b, _ := json.MarshalIndent(rec, "", "  ")
			fmt.Fprintf(w, "%s\nlog entry %d; NOT VERIFIED (use sworn verify release)\n\n%s\n\n%s", describe(rec), p.Index, b, p.Checkpoint)
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.AddCommand(show)
	return cmd
}

func describe(r *tlog.Record) string {
	switch r.Type {
	case tlog.TypeRelease:
		return "release " + r.Release.Key()
	case tlog.TypeRevocation:
		return "revocation of " + r.Revocation.ReleaseID + "@" + r.Revocation.Version
	}
	return "key release of model " + r.KeyRelease.Model
}

func newVerifyReleaseCmd() *cobra.Command {
	var vf verifyFlags
	var logKey, state string
	var witnesses, publishers, revocations []string
	var quorum int
	cmd := &cobra.Command{
		Use:   "release PROOF --log-key FILE [--witness FILE]... [--quorum N] [--policy FILE] [--at RFC3339] [--json]",
		Short: "Verify a release proof offline: record signature, inclusion, witness quorum, expiry and revocation",
		Long: `verify release checks a .tlog-proof file with no network: the checkpoint's
log signature, the witnesses' cosignatures against the quorum, the inclusion
of the record, the publisher's signature (when publisher keys are pinned),
expiry and revocation. The log, witnesses and quorum come from the policy's
log: section and/or the flags (flags add to the policy). --quorum defaults to
the number of witnesses given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			at, pol, err := vf.load()
			if err != nil {
				return err
			}
			var l policy.Log
			if pol != nil && pol.Log != nil {
				l = *pol.Log
			} else if pol != nil && logKey == "" {
				return usageErr("verify release: policy %s has no log: section and no --log-key was given", vf.policy)
			}
			if logKey != "" {
				k, err := readVerifierArg("--log-key", logKey)
				if err != nil {
					return err
				}
				v, err := tlog.ParseVerifier(k)
				if err != nil {
					return usageErr("--log-key: %v", err)
				}
				l.Key, l.Origin = k, v.Name()
			}
			if l.Key == "" {
				return usageErr("verify release: give --log-key FILE or a --policy with a log: section")
			}
			for _, w := range witnesses {
				k := strings.TrimSpace(w)
				if !tlog.IsVerifierKey(k) { // not a literal key: a file
					var err error
					if k, err = tlog.ReadKeyFile(w); err != nil {
						return usageErr("--witness: %v", err)
					}
				}
				if _, err := tlog.ParseWitnessVerifier(k); err != nil {
					return usageErr("--witness: %v", err)
				}
				l.Witnesses = append(l.Witnesses, k)
			}
			for _, p := range publishers {
				k, err := readVerifierArg("--publisher", p)
				if err != nil {
					return err
				}
				if _, err := tlog.ParseVerifier(k); err != nil {
					return usageErr("--publisher %s: %v", p, err)
				}
				l.Publishers = append(l.Publishers, k)
			}
			if cmd.Flags().Changed("quorum") {
				l.Quorum = quorum
			} else if len(witnesses) > 0 {
				l.Quorum = len(l.Witnesses)
			}
			if err := l.Check(); err != nil {
				return usageErr("verify release: log %v", err)
			}
			data, err := readInput("proof", args[0])
			if err != nil {
				return err
			}
			if _, err := tlog.ParseProof(data); err != nil {
				return usageErr("verify release: %s: %v", args[0], err)
			}
			opts := &tlog.AppraiseOptions{}
			if opts.Revocations, err = readRevocations(revocations); err != nil {
				return err
			}
			if state != "" {
				if opts.State, err = tlog.OpenState(state); err != nil {
					return usageErr("--state: %v", err)
				}
			}
			r := &attest.Result{At: at, Devices: map[string]*attest.Section{}}
			r.Release = tlog.AppraiseRelease(data, &l, at, nil, &r.Ledger, opts)
			r.Verdict = r.Release.Verdict
			return report(cmd.OutOrStdout(), r, vf.json)
		},
	}
	vf.register(cmd)
	cmd.Flags().StringVar(&logKey, "log-key", "", "the log's verifier key `FILE` (or the key itself)")
	cmd.Flags().StringArrayVar(&witnesses, "witness", nil, "a witness's verifier key `FILE`; repeatable")
	cmd.Flags().IntVar(&quorum, "quorum", 0, "`N` witness cosignatures required (default: all witnesses given)")
	cmd.Flags().StringArrayVar(&publishers, "publisher", nil, "an allowed publisher's verifier key `FILE`; repeatable")
	cmd.Flags().StringArrayVar(&revocations, "revocation", nil, "a stapled revocation proof `FILE`; repeatable")
	cmd.Flags().StringVar(&state, "state", "", "keep the last-seen checkpoint in `DIR` and refuse a split view")
	return cmd
}
