package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/tlog"
)

func verifyReceiptCmd() *cobra.Command {
	var f verifyFlags
	var bundlePath, requestPath, responsePath, nonce string
	var status int
	var revocations []string
	cmd := &cobra.Command{
		Use:   "receipt RECEIPT --bundle FILE --policy FILE [--request FILE] [--response FILE [--status N]] [--nonce HEX] [--revocation FILE]... [--at RFC3339] [--json]",
		Short: "Verify a node's signed receipt for an answer, with the node's bundle",
		Long: `Verify a receipt offline: that the node whose evidence the bundle carries
signed it with its attested receipt key, that it names this bundle and the
bundle's release, and that its model is one the release lists. The bundle is
appraised under the policy at the receipt's time; --at is the time of this
verification (default now), which the receipt may not be later than.

RECEIPT is the receipt file: its COSE_Sign1 bytes, or their base64url text
(the value of the sworn-receipt trailer). --request is the binary HTTP
request the client encrypted; --response the response content as received
(for a streamed answer, every chunk's content in order), with its HTTP status
--status (default 200). Without them the receipt shows that the node gave
some answer, not which, and the result says so. See docs/receipt.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bundlePath == "" {
				return usageErr("--bundle is required: the bundle the node served when it signed the receipt")
			}
			if f.policy == "" {
				return usageErr("--policy is required (write a starter with: sworn policy init)")
			}
			if cmd.Flags().Changed("status") && responsePath == "" {
				return usageErr("--status is the status of --response; give --response too")
			}
			if status < 100 || status > 599 {
				return usageErr("--status %d is not an HTTP status (100 to 599)", status)
			}
			at, p, err := f.load()
			if err != nil {
				return err
			}
			data, err := readReceipt(args[0])
			if err != nil {
				return err
			}
			b, err := readBundle(bundlePath)
			if err != nil {
				return err
			}
			opts := attest.Options{At: at, Policy: p, Verifiers: verifiers()}
			if cmd.Flags().Changed("nonce") {
				if opts.Nonce, err = parseHex("--nonce", nonce); err != nil {
					return err
				}
				if len(opts.Nonce) == 0 {
					return usageErr("--nonce is empty")
				}
			}
			revs, err := readRevocations(revocations)
			if err != nil {
				return err
			}
			opts.Release = tlog.BundleVerifier{Revocations: revs}
			ex := &receipt.Exchange{}
			if requestPath != "" {
				if ex.Request, err = readInput("--request", requestPath); err != nil {
					return err
				}
			}
			if responsePath != "" {
				// An empty body is a valid answer (204): read it as is.
				content, err := readMaybeEmpty("--response", responsePath)
				if err != nil {
					return err
				}
				ex.Response = &receipt.Response{Status: status, Content: content}
			}
			r := receipt.Appraise(context.Background(), data, b, opts, ex)
			return report(cmd.OutOrStdout(), r, f.json)
		},
	}
	cmd.Flags().StringVar(&bundlePath, "bundle", "", "the node's bundle `FILE`, as it served it when it signed")
	cmd.Flags().StringVar(&requestPath, "request", "", "the binary HTTP request `FILE` the client encrypted")
	cmd.Flags().StringVar(&responsePath, "response", "", "the response content `FILE` as the client received it")
	cmd.Flags().IntVar(&status, "status", 200, "the HTTP status `N` of --response")
	cmd.Flags().StringVar(&nonce, "nonce", "", "the nonce a challenge-mode bundle must answer, as `HEX`")
	cmd.Flags().StringArrayVar(&revocations, "revocation", nil, "a revocation proof `FILE` from the release log (sworn release revoke); repeatable")
	f.register(cmd)
	return cmd
}

// readReceipt reads a receipt file, binary or base64url, and checks that it
// parses: a file that is not a receipt is an input error.
func readReceipt(path string) ([]byte, error) {
	data, err := readInput("receipt", path)
	if err != nil {
		return nil, err
	}
	if len(data) > 2*receipt.MaxSize {
		return nil, usageErr("receipt %s is %d bytes; a receipt is at most %d (%d as base64url)", path, len(data), receipt.MaxSize, base64.RawURLEncoding.EncodedLen(receipt.MaxSize))
	}
	if data[0] != 0xd2 { // not a tagged COSE_Sign1: base64url text
		text := bytes.TrimRight(bytes.TrimSpace(data), "=")
		dec, err := base64.RawURLEncoding.DecodeString(string(text))
		if err != nil {
			return nil, usageErr("receipt %s is neither a COSE_Sign1 receipt nor its base64url text: %v", path, err)
		}
		data = dec
	}
	if _, err := receipt.Parse(data); err != nil {
		return nil, usageErr("receipt %s: %v", path, err)
	}
	return data, nil
}

// readBundle reads and parses --bundle.
func readBundle(path string) (*attest.Bundle, error) {
	data, err := readInput("--bundle", path)
	if err != nil {
		return nil, err
	}
	b, err := attest.ParseBundle(data)
	if err != nil {
		if errors.Is(err, attest.ErrNotBundle) {
			return nil, usageErr("--bundle %s: %v (give the node's evidence bundle)", path, err)
		}
		return nil, usageErr("--bundle %s: %v", path, err)
	}
	return b, nil
}

// readMaybeEmpty reads an input file that may be empty.
func readMaybeEmpty(flag, path string) ([]byte, error) {
	data, err := policy.ReadFileLimited(path, maxInputSize)
	if err != nil {
		return nil, usageErr("%s: %v", flag, err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}
