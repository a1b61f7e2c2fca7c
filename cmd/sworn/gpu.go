package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/nvgpu"
	nvmlbackend "github.com/sworn-dev/sworn/attest/nvgpu/nvml"
	"golang.org/x/crypto/ocsp"
)

// newVerifyGPUCmd is `sworn verify gpu`.
func newVerifyGPUCmd() *cobra.Command {
	var vf verifyFlags
	var reportPath, certsPath, nonceHex, device string
	var rimPaths, ocspPaths []string
	cmd := &cobra.Command{
		Use:   "gpu --report FILE --certs FILE [--rim FILE]... [--ocsp FILE]...",
		Short: "Verify one NVIDIA GPU's attestation report offline",
		Long: `Verify one NVIDIA confidential GPU (Hopper, Blackwell) offline: the SPDM
report's signature, its nonce, the device certificate chain to NVIDIA's pinned
root, the FWID, stapled OCSP responses, and the driver and VBIOS RIMs.

The report is hex text (as NVML dumps are shared) or raw bytes; the chain is
PEM, leaf first. A RIM is its XML or the RIM service's JSON answer; an OCSP
response is DER. Without RIMs the measurements are not compared and the
verdict is at best a warning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, pol, err := vf.load()
			if err != nil {
				return err
			}
			data, err := readInput("--report", reportPath)
			if err != nil {
				return err
			}
			rep, err := nvgpu.DecodeReportInput(data)
			if err == nil {
				_, err = nvgpu.ParseReport(rep)
			}
			if err != nil {
				return inputErr("--report", reportPath, data, "an NVIDIA GPU attestation report, hex text or raw bytes", err)
			}
			chainPEM, err := readInput("--certs", certsPath)
			if err != nil {
				return err
			}
			certs, err := nvgpu.ParseCertChain(chainPEM)
			if err != nil {
				return inputErr("--certs", certsPath, chainPEM, "the device certificate chain, PEM, leaf first", err)
			}
			ev := &nvgpu.Evidence{Report: rep}
			for _, c := range certs {
				ev.Certs = append(ev.Certs, c.Raw)
			}
			for _, p := range rimPaths {
				d, err := readInput("--rim", p)
				if err != nil {
					return err
				}
				x, err := nvgpu.DecodeRIMInput(d)
				if err != nil {
					return inputErr("--rim", p, d, "a RIM: its XML (swidtag) or the RIM service's JSON answer", err)
				}
				ev.RIMs = append(ev.RIMs, x)
			}
			for _, p := range ocspPaths {
				d, err := readInput("--ocsp", p)
				if err != nil {
					return err
				}
				if _, err := ocsp.ParseResponse(d, nil); err != nil {
					return inputErr("--ocsp", p, d, "a DER OCSP response", err)
				}
				ev.OCSP = append(ev.OCSP, d)
			}
			body, err := ev.Marshal()
			if err != nil {
				return usageErr("encoding the evidence: %v", err)
			}
			if _, err := nvgpu.ParseEvidence(body); err != nil {
				return usageErr("%v", err)
			}
			if _, ok := nvgpu.DeviceIndex(device); !ok {
				return usageErr("--device %q is not gpuN", device)
			}
			v := nvgpu.NewVerifier(nil)
			if nonceHex != "" {
				n, err := parseHex("--nonce", nonceHex)
				if err != nil {
					return err
				}
				if len(n) != nvgpu.NonceSize {
					return usageErr("--nonce is %d bytes; a GPU nonce is %d bytes (64 hex digits)", len(n), nvgpu.NonceSize)
				}
				v = v.WithNonce(n)
			}
			r := attest.VerifyEntry(cmd.Context(), v, attest.Entry{Kind: attest.KindNVGPU, Device: device, Body: body}, at, pol, nil)
			return report(cmd.OutOrStdout(), r, vf.json)
		},
	}
	vf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&reportPath, "report", "", "attestation report `FILE` (hex text or raw bytes)")
	f.StringVar(&certsPath, "certs", "", "device certificate chain `FILE` (PEM, leaf first)")
	f.StringArrayVar(&rimPaths, "rim", nil, "driver or VBIOS RIM `FILE` (XML or RIM service JSON); repeat for both")
	f.StringArrayVar(&ocspPaths, "ocsp", nil, "stapled OCSP response `FILE` (DER); repeat")
	f.StringVar(&nonceHex, "nonce", "", "expected requester nonce: `HEX`, 64 digits")
	f.StringVar(&device, "device", "gpu0", "device `NAME` to report the result under")
	return cmd
}

// newGPUCmd is the `sworn gpu` group.
func newGPUCmd() *cobra.Command {
	gpu := &cobra.Command{Use: "gpu", Short: "NVIDIA GPU tools: probe local GPUs, fetch RIMs"}
	gpu.AddCommand(newGPUProbeCmd())
	rims := &cobra.Command{Use: "rims", Short: "Reference Integrity Manifests (RIMs)"}
	rims.AddCommand(newGPURIMsFetchCmd())
	gpu.AddCommand(rims)
	return gpu
}

func newGPUProbeCmd() *cobra.Command {
	var nonceHex, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Print what the local GPUs report through NVML (CC state, chain, report)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var nonce [nvgpu.NonceSize]byte
			if nonceHex != "" {
				n, err := parseHex("--nonce", nonceHex)
				if err != nil {
					return err
				}
				if len(n) != nvgpu.NonceSize {
					return usageErr("--nonce must be %d bytes", nvgpu.NonceSize)
				}
				copy(nonce[:], n)
			}
			lib, err := nvmlbackend.Open()
			if err != nil {
				return &exitError{code: exitNotVerified, err: err}
			}
			defer lib.Close()
			res := probe(lib, nonce, out)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "CC state: %+v", res.CC)
			if res.CCError != "" {
				fmt.Fprintf(w, " (%s)", res.CCError)
			}
			fmt.Fprintln(w)
			for _, g := range res.GPUs {
				fmt.Fprintf(w, "gpu%d: %s %s driver %s VBIOS %s UUID %s\n", g.Info.Index, g.Info.Name, g.Info.Arch, g.Info.Driver, g.Info.VBIOS, g.Info.UUID)
				for _, s := range g.Chain {
					fmt.Fprintf(w, "  cert: %s\n", s)
				}
				fmt.Fprintf(w, "  chain to the NVIDIA device root: %s\n", g.ChainResult)
				if g.Report != "" {
					fmt.Fprintf(w, "  report: %s\n", g.Report)
				}
				for _, e := range g.Errors {
					fmt.Fprintf(w, "  error: %s\n", e)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&nonceHex, "nonce", "", "also ask each GPU for a report answering this nonce: `HEX`, 64 digits")
	cmd.Flags().StringVar(&out, "out", "", "save each GPU's chain (PEM) and report (hex) in `DIR`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type probeGPU struct {
	Info        nvgpu.DeviceInfo `json:"info"`
	Chain       []string         `json:"chain"`
	ChainResult string           `json:"chain_result"`
	Report      string           `json:"report,omitempty"`
	Errors      []string         `json:"errors,omitempty"`
}

type probeResult struct {
	CC      nvgpu.CCState `json:"cc"`
	CCError string        `json:"cc_error,omitempty"`
	GPUs    []probeGPU    `json:"gpus"`
}

// probe reads what NVML says; it never sets the GPUs ready.
func probe(lib nvgpu.NVML, nonce [nvgpu.NonceSize]byte, out string) probeResult {
	var res probeResult
	var err error
	if res.CC, err = lib.CCState(); err != nil {
		res.CCError = err.Error()
	}
	n, err := lib.DeviceCount()
	if err != nil {
		res.CCError += "; " + err.Error()
		return res
	}
	for i := range min(n, 64) {
		g := probeGPU{}
		g.Info, err = lib.DeviceInfo(i)
		if err != nil {
			g.Errors = append(g.Errors, err.Error())
		}
		g.Info.Index = i
		pemChain, err := lib.Certificate(i)
		if err != nil {
			g.Errors = append(g.Errors, err.Error())
		} else if certs, err := nvgpu.ParseCertChain(pemChain); err != nil {
			g.Errors = append(g.Errors, err.Error())
		} else {
			for _, c := range certs {
				g.Chain = append(g.Chain, c.Subject.String())
			}
			if _, err := nvgpu.VerifyChain(certs, nvgpu.ProductionRoots.Device, time.Now()); err != nil {
				g.ChainResult = "FAILED: " + err.Error()
			} else {
				g.ChainResult = "verified (root SPKI " + nvgpu.ProductionRoots.Device.String() + ")"
			}
			if out != "" {
				if err := saveProbeFile(out, fmt.Sprintf("gpu%d-certs.pem", i), pemChain); err != nil {
					g.Errors = append(g.Errors, err.Error())
				}
			}
		}
		if nonce != ([nvgpu.NonceSize]byte{}) {
			rep, err := lib.Report(i, nonce)
			if err != nil {
				g.Errors = append(g.Errors, err.Error())
			} else {
				g.Report = fmt.Sprintf("%d bytes", len(rep))
				if _, err := nvgpu.ParseReport(rep); err != nil {
					g.Report += " (does not parse: " + err.Error() + ")"
				}
				if out != "" {
					if err := saveProbeFile(out, fmt.Sprintf("gpu%d-report.txt", i), []byte(hex.EncodeToString(rep))); err != nil {
						g.Errors = append(g.Errors, err.Error())
					}
				}
			}
		}
		res.GPUs = append(res.GPUs, g)
	}
	return res
}

func newGPURIMsFetchCmd() *cobra.Command {
	var ids []string
	var out, url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "fetch --id ID... --out DIR",
		Short: "Fetch RIMs from NVIDIA's RIM service into DIR/ID.xml",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(ids) == 0 {
				return usageErr("give at least one --id (e.g. NV_GPU_DRIVER_GH100_550.90.07)")
			}
			if out == "" {
				return usageErr("--out DIR is required")
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return usageErr("--out %s: %v", out, err)
			}
			f := &nvgpu.Fetcher{RIMServiceURL: url, Client: &http.Client{Timeout: timeout}}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			for _, id := range ids {
				x, err := f.FetchRIM(ctx, id)
				if err != nil {
					return &exitError{code: exitNotVerified, err: err}
				}
				p := filepath.Join(out, id+".xml")
				if err := writeFileAtomic(p, x, 0o644); err != nil {
					return &exitError{code: exitNotVerified, err: err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%d bytes\n", p, len(x))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&ids, "id", nil, "RIM `ID` to fetch; repeat")
	cmd.Flags().StringVar(&out, "out", "", "write RIMs into `DIR`")
	cmd.Flags().StringVar(&url, "url", nvgpu.DefaultRIMServiceURL, "RIM service base `URL`")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "per-request timeout (a `DURATION` such as 10s)")
	return cmd
}

// saveProbeFile writes one file of gpu probe --out.
func saveProbeFile(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out %s: %v", dir, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
		return fmt.Errorf("--out %s: %v", dir, err)
	}
	return nil
}
