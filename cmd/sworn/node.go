package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sworn-dev/sworn/attest/nvgpu"
	"github.com/sworn-dev/sworn/attest/nvgpu/nvml"
	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/attest/tdx"
	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/node"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/seal"
	"github.com/sworn-dev/sworn/seal/volume"
	"github.com/sworn-dev/sworn/sim"
)

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Run a sworn node: the attested OHTTP gateway in front of an inference engine"}
	var platform, engine, release, policyPath, listen, logLevel, crlPath, tdxCollateral, tdxPCS, simTEE string
	var gpus int
	var seed uint64
	var epoch time.Duration
	var models, volumes []string
	var kbsURL, unsealTo string
	var tps float64
	var allowWarning bool
	serve := &cobra.Command{
		Use:   "serve --platform sim|snp|tdx|auto --engine URL|echo --policy FILE --listen ADDR [--release FILE.tlog-proof] [--gpus N] [--epoch DURATION] [--model NAME=DIGEST|NAME=SEALED_DIR]... [--volume NAME=IMAGE,HASHTREE]... [--kbs URL]",
		Short: "Serve encrypted requests once the node's own evidence passes its policy",
		Long: `serve makes the node's request and receipt keys in memory, collects evidence
bound to them (--platform sim: the simulators, every result SIMULATED, with
--sim-tee tdx a TDX CPU; snp: configfs-tsm or /dev/sev-guest and NVML; tdx:
configfs-tsm, the CCEL event log and the DCAP collateral of --tdx-collateral;
auto: tdx when /dev/tdx_guest is there, snp when /dev/sev-guest or
configfs-tsm is, else refuses), appraises its own bundle with the
client's pipeline, and serves only while that passes. It forwards decrypted
requests to the engine on loopback (--engine echo runs the built-in echo
engine) and writes nothing to disk. See docs/node.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policyPath == "" || listen == "" {
				return usageErr("node serve: --policy and --listen are required")
			}
			p, err := loadPolicy(policyPath)
			if err != nil {
				return err
			}
			if gpus < 0 || gpus > sim.MaxGPUs {
				return usageErr("--gpus is %d; it must be 0 to %d", gpus, sim.MaxGPUs)
			}
			mm, sealedDirs, err := parseModels(models)
			if err != nil {
				return err
			}
			if len(sealedDirs) > 0 && kbsURL == "" {
				return usageErr("node serve: --model NAME=SEALED_DIR needs --kbs URL, the key broker that releases the model's key")
			}
			vols, err := parseVolumes(volumes, mm)
			if err != nil {
				return err
			}
			if len(vols) > 0 && kbsURL == "" {
				return usageErr("node serve: --volume needs --kbs URL, the key broker that releases the volume's key")
			}
			var proof []byte
			if release != "" {
				if proof, err = readInput("--release", release); err != nil {
					return err
				}
			}
			level := slog.LevelInfo
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErr("--log-level %q: use debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			plat, err := nodePlatform(platform, gpus, seed, p, crlPath, tdxCollateral, tdxPCS, simTEE)
			if err != nil {
				return err
			}
			ln, err := listenTCP("node serve", listen)
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			engineURL, closeEngine, err := nodeEngine(engine, tps)
			if err != nil {
				return err
			}
			defer closeEngine()
			n, err := node.New(node.Config{Platform: plat, Policy: p, AllowWarning: allowWarning, Release: proof,
				Engine: engineURL, Models: mm, Epoch: epoch, Logger: log})
			if err != nil {
				return usageErr("%v", err)
			}
			if err := n.Rotate(ctx); err != nil {
				return failErr("node serve: the node does not serve: %v", err)
			}
			for name, dir := range sealedDirs {
				d, _ := kbs.ParseDigest(mm[name])
				key, err := n.FetchModelKey(ctx, kbsURL, d)
				if err != nil {
					return failErr("node serve: model %s: %v", name, err)
				}
				files, err := node.UnsealModel(dir, key, d)
				clear(key)
				if err != nil {
					return failErr("node serve: model %s: %v", name, err)
				}
				log.Info("model unsealed", "model", mm[name], "name", name, "files", len(files))
				if unsealTo != "" {
					tmpfs, err := node.WriteModel(unsealTo, name, files)
					if err != nil {
						return failErr("node serve: --unseal-to: %v", err)
					}
					if !tmpfs {
						log.Warn("the unsealed model is written to a directory that is not a tmpfs: its plaintext may reach a disk", "dir", unsealTo)
					}
					log.Info("model written for the engine", "name", name, "dir", filepath.Join(unsealTo, name))
				}
				clear(files)
			}
			for name, img := range vols {
				dev, err := n.OpenVolume(ctx, kbsURL, name, img)
				if err != nil {
					return failErr("node serve: model %s: %v", name, err)
				}
				defer n.CloseVolume(context.WithoutCancel(ctx), name)
				log.Info("model volume mapped", "model", mm[name], "name", name, "device", dev)
			}
			go n.Run(ctx)
			err = serveStreams(ctx, cmd, ln, n.Handler(), fmt.Sprintf("node (%s)", plat.Name()), 30*time.Second)
			log.Info("node stopped")
			return err
		},
	}
	f := serve.Flags()
	f.StringVar(&platform, "platform", "auto", "where evidence comes from: `sim`, snp, tdx or auto")
	f.StringVar(&tdxPCS, "tdx-pcs", "", "fetch Intel's DCAP collateral for each quote from Intel PCS (https://api.trustedservices.intel.com) or a PCCS at `URL`, daily (--platform tdx)")
	f.StringVar(&tdxCollateral, "tdx-collateral", "", "Intel's DCAP collateral `FILE` (JSON) for this platform, stapled to each quote (--platform tdx)")
	f.StringVar(&simTEE, "sim-tee", "snp", "the simulated CPU TEE, `snp` or tdx (--platform sim)")
	f.StringVar(&engine, "engine", "", "the OpenAI-compatible engine's base `URL` on loopback, or echo for the built-in echo engine")
	f.StringVar(&release, "release", "", "the release proof `FILE` to staple (sworn release publish)")
	f.StringVar(&policyPath, "policy", "", "policy `FILE` the node's own evidence must pass")
	f.StringVar(&listen, "listen", "", "listen `ADDR` (host:port; port 0 picks one)")
	f.StringVar(&crlPath, "snp-crl", "", "AMD's CRL `FILE` for the chip's product, stapled to the report (--platform snp)")
	f.IntVar(&gpus, "gpus", 0, "simulated GPUs, `N` (--platform sim)")
	f.Uint64Var(&seed, "sim-seed", 1, "the simulated machine, `N` (--platform sim)")
	f.DurationVar(&epoch, "epoch", node.DefaultEpoch, "how long a passport bundle and its keys are valid (`DURATION`)")
	f.StringArrayVar(&models, "model", nil, "a model the node serves, `NAME=sha256:HEX` (its sealed weights' digest) or NAME=SEALED_DIR (unsealed into memory with the key from --kbs); repeatable")
	f.StringVar(&kbsURL, "kbs", "", "the key broker's `URL`, which releases the keys of --model NAME=SEALED_DIR models and of --volume to this node")
	f.StringVar(&unsealTo, "unseal-to", "", "also write each unsealed model to `DIR`/NAME for the engine to read (a tmpfs inside the confidential VM)")
	f.StringArrayVar(&volumes, "volume", nil, "map model NAME's volume, `NAME=IMAGE,HASHTREE` (LUKS2 under dm-verity; --model NAME=sha256:ROOT gives its digest), with the key from --kbs; repeatable")
	f.Float64Var(&tps, "echo-tokens-per-second", 0, "pace the echo engine at `N` tokens per second (0: as fast as possible)")
	f.BoolVar(&allowWarning, "allow-warning", false, "serve when the self-appraisal is only a warning")
	f.StringVar(&logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error (logs never hold prompts, answers or keys)")
	cmd.AddCommand(serve)
	return cmd
}

// parseVolumes reads --volume NAME=IMAGE,HASHTREE flags; each NAME must be
// a model --model gives by digest (the volume's root hash).
func parseVolumes(flags []string, models map[string]string) (map[string]volume.Image, error) {
	out := map[string]volume.Image{}
	for _, v := range flags {
		name, paths, ok := strings.Cut(v, "=")
		data, hash, ok2 := strings.Cut(paths, ",")
		switch {
		case !ok || !ok2 || name == "" || data == "" || hash == "":
			return nil, usageErr("--volume %q: want NAME=IMAGE,HASHTREE", excerpt(v))
		case models[name] == "":
			return nil, usageErr("--volume %q: give the model's digest too, --model %s=sha256:ROOT (the volume's dm-verity root hash)", excerpt(v), excerpt(name))
		case out[name] != (volume.Image{}):
			return nil, usageErr("--volume %q: model %s has two volumes", excerpt(v), excerpt(name))
		}
		out[name] = volume.Image{Data: data, Hash: hash}
	}
	return out, nil
}

// parseModels reads --model NAME=sha256:HEX and NAME=SEALED_DIR flags:
// the models by name with their digests, and the sealed directories by
// name (a directory's digest is its manifest's, docs/seal.md).
func parseModels(flags []string) (map[string]string, map[string]string, error) {
	out, dirs := map[string]string{}, map[string]string{}
	for _, m := range flags {
		name, d, ok := strings.Cut(m, "=")
		if !ok || name == "" || d == "" {
			return nil, nil, usageErr("--model %q: want NAME=sha256:<64 hex digits> or NAME=SEALED_DIR", excerpt(m))
		}
		if _, dup := out[name]; dup {
			return nil, nil, usageErr("--model %q: model %s is given twice", excerpt(m), excerpt(name))
		}
		if h, found := strings.CutPrefix(d, "sha256:"); found {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != 32 {
				return nil, nil, usageErr("--model %q: want NAME=sha256:<64 hex digits>", excerpt(m))
			}
			out[name] = d
			continue
		}
		man, _, err := seal.ReadManifest(d)
		if err != nil {
			return nil, nil, usageErr("--model %q: %s is neither a digest (sha256:HEX) nor a sealed model directory (sworn model seal --out): %v", excerpt(m), d, err)
		}
		digest, _ := man.Digest()
		out[name], dirs[name] = seal.FormatDigest(digest), d
	}
	return out, dirs, nil
}

// excerpt bounds an untrusted string quoted in a message.
func excerpt(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

func nodePlatform(name string, gpus int, seed uint64, p *policy.Policy, crlPath, tdxCollateral, tdxPCS, simTEE string) (node.Platform, error) {
	if simTEE != "snp" && simTEE != "tdx" {
		return nil, usageErr("--sim-tee %q: use snp or tdx", excerpt(simTEE))
	}
	if name == "auto" {
		if _, err := os.Stat("/dev/tdx_guest"); err == nil {
			name = "tdx"
		} else if _, err := os.Stat("/dev/sev-guest"); err == nil {
			name = "snp"
		} else if _, err := os.Stat("/sys/kernel/config/tsm/report"); err == nil {
			name = "snp"
		} else {
			return nil, usageErr("--platform auto: this machine is not an SEV-SNP guest (no /dev/sev-guest or configfs-tsm); use --platform sim to try sworn on simulated hardware")
		}
	}
	switch name {
	case "sim":
		return &node.SimPlatform{Seed: seed, GPUs: gpus, TEE: simTEE}, nil
	case "tdx":
		pl := &node.TDXPlatform{Policy: p}
		if gpus > 0 {
			lib, err := nvml.Open()
			if err != nil {
				return nil, failErr("--platform tdx with --gpus: NVML: %v", err)
			}
			pl.NVML, pl.GPU = lib, nvgpu.NewVerifier(nvgpu.NewCache(0))
		}
		if tdxCollateral != "" && tdxPCS != "" {
			return nil, usageErr("give --tdx-collateral FILE or --tdx-pcs URL, not both")
		}
		if tdxPCS != "" {
			if u, err := url.Parse(tdxPCS); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
				return nil, usageErr("--tdx-pcs %q: want Intel PCS's URL (%s) or a PCCS's", excerpt(tdxPCS), tdx.IntelPCS)
			}
			pl.PCS = &tdx.PCS{Base: tdxPCS}
		}
		if tdxCollateral != "" {
			data, err := readInput("--tdx-collateral", tdxCollateral)
			if err != nil {
				return nil, err
			}
			if _, err := tdx.ParseCollateral(data); err != nil {
				return nil, inputErr("--tdx-collateral", tdxCollateral, data, "Intel DCAP collateral as JSON (see docs/tdx.md)", err)
			}
			pl.TDXCollateral = data
		}
		return pl, nil
	case "snp":
		pl := &node.SNPPlatform{}
		if gpus > 0 {
			lib, err := nvml.Open()
			if err != nil {
				return nil, failErr("--platform snp with --gpus: NVML: %v", err)
			}
			pl.NVML, pl.GPU = lib, nvgpu.NewVerifier(nvgpu.NewCache(0))
		}
		pl.Policy = p
		if crlPath != "" {
			crl, err := readInput("--snp-crl", crlPath)
			if err != nil {
				return nil, err
			}
			if pl.CRLs, err = snp.ParseCRLs(crl); err != nil {
				return nil, usageErr("--snp-crl %s: %v", crlPath, err)
			}
		}
		return pl, nil
	}
	return nil, usageErr("--platform %q: use sim, snp, tdx or auto", excerpt(name))
}

// nodeEngine returns the engine's URL; echo starts the built-in engine on
// a loopback port.
func nodeEngine(engine string, tps float64) (*url.URL, func(), error) {
	if engine == "echo" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, failErr("echo engine: %v", err)
		}
		srv := &http.Server{Handler: echo.New(echo.Options{TokensPerSecond: tps}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		u, _ := url.Parse("http://" + ln.Addr().String())
		return u, func() { srv.Close() }, nil
	}
	u, err := url.Parse(engine)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, usageErr("--engine %q: give the engine's base URL (http://127.0.0.1:8000) or echo", excerpt(engine))
	}
	if h := u.Hostname(); h != "localhost" && !net.ParseIP(h).IsLoopback() {
		return nil, nil, usageErr("--engine %s: the engine must be on the node's loopback, so that prompts never leave the confidential VM", excerpt(engine))
	}
	return u, func() {}, nil
}
