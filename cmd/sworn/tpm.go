package main

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tpm"
	"github.com/sworn-dev/sworn/internal/pemblocks"
)

// newVerifyTPMCmd is `sworn verify tpm`: a TPM quote in tpm2-tools' formats
// (or a sworn TPM evidence body), appraised by itself.
func newVerifyTPMCmd() *cobra.Command {
	var (
		vf                                       verifyFlags
		quote, sig, ak, pcrs, eventlog, evidence string
		akCerts, akParent                        string
		nonce                                    string
	)
	cmd := &cobra.Command{
		Use:   "tpm",
		Short: "Verify a TPM 2.0 quote (tpm2-tools formats) and replay its event log",
		Long: `Verify a TPM 2.0 quote by itself: the signature under the attestation key,
the PCR digest, the qualifying data (--nonce), the AK's trust (pinned or
certified per --policy), the event log replayed against the quoted PCRs,
and the policy's reference values.

Inputs are tpm2-tools' formats: --quote is the TPMS_ATTEST (tpm2_quote -m),
--sig the TPMT_SIGNATURE (tpm2_quote -s), --ak a TPM2B_PUBLIC/TPMT_PUBLIC
(tpm2_createak -u) or a PEM public key, --pcrs the PCR values as tpm2_quote -o
writes them (the selected values concatenated in selection order). Or give
--evidence, a sworn TPM evidence body (CBOR), as sworn's collector writes it.

The result prints the AK's fingerprint (ak_fingerprint), the value to put in
a policy's tpm.pinned_aks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, p, err := vf.load()
			if err != nil {
				return err
			}
			v := tpm.NewVerifier()
			if cmd.Flags().Changed("nonce") {
				if v.Nonce, err = parseHex("--nonce", nonce); err != nil {
					return err
				}
				if v.Nonce == nil {
					v.Nonce = []byte{}
				}
			}
			var ev *tpm.Evidence
			if evidence != "" {
				if quote != "" || sig != "" || ak != "" || pcrs != "" {
					return usageErr("--evidence replaces --quote, --sig, --ak and --pcrs; give one or the other")
				}
				body, err := readInput("--evidence", evidence)
				if err != nil {
					return err
				}
				if ev, err = tpm.ParseEvidence(body); err != nil {
					return inputErr("--evidence", evidence, body, "sworn TPM evidence (CBOR), as sworn's collector writes it", err)
				}
			} else {
				if ev, err = evidenceFromFiles(quote, sig, ak, pcrs); err != nil {
					return err
				}
			}
			if eventlog != "" {
				if ev.EventLog, err = readInput("--eventlog", eventlog); err != nil {
					return err
				}
				if err := checkEventLog(ev.EventLog); err != nil {
					return inputErr("--eventlog", eventlog, ev.EventLog, "a TCG PC Client event log (binary_bios_measurements)", err)
				}
			}
			if akCerts != "" {
				data, err := readInput("--ak-certs", akCerts)
				if err != nil {
					return err
				}
				if ev.AKCerts, err = pemblocks.Decode(data, "CERTIFICATE", tpm.MaxCerts); err != nil {
					return inputErr("--ak-certs", akCerts, data, "the AK's certificate chain, PEM, leaf first", err)
				}
			}
			if akParent != "" {
				if ev.AKParent, err = readInput("--ak-parent", akParent); err != nil {
					return err
				}
			}
			// Bad input exits 2, before any appraisal.
			akSource, quoteSource := "--ak "+ak, "--quote "+quote
			if evidence != "" {
				akSource, quoteSource = "--evidence "+evidence, "--evidence "+evidence
			}
			if _, err := tpm.ParseAK(ev.AK); err != nil {
				return usageErr("%s: the AK: %v", akSource, err)
			}
			for i, q := range ev.Quotes {
				if _, err := tpm.ParseQuote(q); err != nil {
					return usageErr("%s: quote %d: %v", quoteSource, i, err)
				}
			}
			e, err := ev.Entry("tpm0")
			if err == nil {
				_, err = tpm.ParseEvidence(e.Body)
			}
			if err != nil {
				return usageErr("TPM evidence: %v", err)
			}
			r := attest.VerifyEntry(context.Background(), v, e, at, p, nil)
			return report(cmd.OutOrStdout(), r, vf.json)
		},
	}
	vf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&quote, "quote", "", "TPMS_ATTEST `FILE` (tpm2_quote -m)")
	f.StringVar(&sig, "sig", "", "TPMT_SIGNATURE `FILE` (tpm2_quote -s)")
	f.StringVar(&ak, "ak", "", "attestation key `FILE`: TPM2B_PUBLIC, TPMT_PUBLIC or PEM")
	f.StringVar(&pcrs, "pcrs", "", "PCR values `FILE` (tpm2_quote -o), or JSON [{\"alg\":11,\"index\":0,\"digest\":\"base64\"}]")
	f.StringVar(&eventlog, "eventlog", "", "TCG event log `FILE` (binary_bios_measurements)")
	f.StringVar(&evidence, "evidence", "", "sworn TPM evidence `FILE` (CBOR) instead of --quote/--sig/--ak/--pcrs")
	f.StringVar(&akCerts, "ak-certs", "", "AK certificate chain `FILE` (PEM, leaf first)")
	f.StringVar(&akParent, "ak-parent", "", "qualified name `FILE` of the AK's parent (tpm2_readpublic -c ek.ctx -q FILE) when the AK is a child key, as tpm2_createak makes it")
	f.StringVar(&nonce, "nonce", "", "expected qualifying data (`HEX`); without it the quote's freshness is not checked")
	return cmd
}

// checkEventLog fails when raw is not a TCG event log in any of the banks
// sworn replays: bad input, not a verdict.
func checkEventLog(raw []byte) error {
	var first error
	for _, bank := range []tpm.Alg{tpm.SHA256, tpm.SHA384, tpm.SHA1} {
		_, err := tpm.ComputePCRs(raw, bank)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func evidenceFromFiles(quote, sig, ak, pcrs string) (*tpm.Evidence, error) {
	if quote == "" || sig == "" || ak == "" || pcrs == "" {
		return nil, usageErr("give --quote, --sig, --ak and --pcrs (tpm2_quote -m, -s and -o, and the AK from tpm2_createak -u), or --evidence")
	}
	q, err := readInput("--quote", quote)
	if err != nil {
		return nil, err
	}
	s, err := readInput("--sig", sig)
	if err != nil {
		return nil, err
	}
	a, err := readInput("--ak", ak)
	if err != nil {
		return nil, err
	}
	akObj, err := tpm.ParseAK(a)
	if err != nil {
		return nil, inputErr("--ak", ak, a, "a TPM2B_PUBLIC or TPMT_PUBLIC (tpm2_createak -u) or a PEM public key", err)
	}
	akRaw := akObj.Raw
	if akRaw == nil { // PEM: carry it as given; ParseAK reads PEM too.
		akRaw = a
	}
	pq, err := tpm.ParseQuote(tpm.Quote{Attest: q, Signature: s})
	if err != nil {
		if strings.HasPrefix(err.Error(), "quote signature") {
			return nil, inputErr("--sig", sig, s, "a TPMT_SIGNATURE (tpm2_quote -s)", err)
		}
		return nil, inputErr("--quote", quote, q, "a TPMS_ATTEST (tpm2_quote -m)", err)
	}
	var vals []tpm.PCR
	data, err := readInput("--pcrs", pcrs)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 && data[0] == '[' {
		if err := json.Unmarshal(data, &vals); err != nil {
			return nil, inputErr("--pcrs", pcrs, data, `JSON [{"alg":11,"index":0,"digest":"base64"}]`, err)
		}
	} else if vals, err = tpm.ParseToolsPCRs(pq, data); err != nil {
		return nil, inputErr("--pcrs", pcrs, data, "the PCR values tpm2_quote -o writes for this quote", err)
	}
	return &tpm.Evidence{Version: tpm.EvidenceVersion, AK: akRaw, Quotes: []tpm.Quote{{Attest: q, Signature: s, PCRs: vals}}}, nil
}
