package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/attesttest"
)

// TestSimReleaseEndToEnd publishes the simulated node software to a real
// log with a witness on loopback, staples the proof to a simulated node's
// bundle, and verifies the whole chain offline: CPU, vTPM, GPU and release.
func TestSimReleaseEndToEnd(t *testing.T) {
	dir := t.TempDir()
	logK := keygen(t, dir, "log", "log.sim.test")
	wK := keygen(t, dir, "witness", "w.sim.test")
	pubK := keygen(t, dir, "publisher", "ci.sim.test")
	pub := func(p string) string { b, _ := os.ReadFile(p + ".pub"); return strings.TrimSpace(string(b)) }
	wURL, _ := daemon(t, "witness", "serve", "--dir", filepath.Join(dir, "w"), "--listen", "127.0.0.1:0", "--key", wK+".key", "--log-key", logK+".pub")
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wpol := write("witnesses.policy", fmt.Sprintf("witness w %s %s\nquorum w\n", pub(wK), wURL))
	pubs := write("publishers", pub(pubK)+"\n")
	logURL, _ := daemon(t, "log", "serve", "--dir", filepath.Join(dir, "log"), "--listen", "127.0.0.1:0", "--key", logK+".key",
		"--publishers", pubs, "--witness-policy", wpol)

	rec, code := swornBinary(t, "sim", "record", "--gpus", "1")
	if code != 0 {
		t.Fatal(rec)
	}
	recPath := write("sim-release.json", rec)
	proof := filepath.Join(dir, "sim.tlog-proof")
	if out, code := swornBinary(t, "release", "publish", "--log", logURL, "--key", pubK+".key", recPath, "--out", proof); code != 0 {
		t.Fatalf("publish: %s", out)
	}
	bundle := filepath.Join(dir, "node.bundle")
	if out, code := swornBinary(t, "sim", "boot", "--gpus", "1", "--release", proof, "--out", bundle); code != 0 {
		t.Fatalf("sim boot: %s", out)
	}
	bare := filepath.Join(dir, "bare.bundle")
	if out, code := swornBinary(t, "sim", "boot", "--out", bare); code != 0 {
		t.Fatalf("sim boot: %s", out)
	}
	base, code := swornBinary(t, "policy", "init", "--simulated", "--gpus", "1")
	if code != 0 {
		t.Fatal(base)
	}
	logSection := fmt.Sprintf("log:\n  origin: log.sim.test\n  key: %s\n  witnesses: [%s]\n  quorum: 1\n  publishers: [%s]\n", pub(logK), pub(wK), pub(pubK))
	pol := write("policy.yaml", base+logSection)
	revokedPol := write("revoked.yaml", base+logSection+"  revoked: [sworn-sim-node@1.0.0]\n")

	out, code := swornBinary(t, "verify", "bundle", bundle, "--policy", pol, "--json")
	var r attest.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	if code != 0 || r.Verdict != attest.Affirming || r.Release == nil {
		t.Fatalf("exit %d verdict %s release %+v", code, r.Verdict, r.Release)
	}
	for _, id := range []string{"release.signature", "release.inclusion", "release.witnesses", "release.match", "release.revocation", "release.epoch"} {
		if st := r.Release.Step(id); st == nil || st.Status != attest.Pass {
			t.Errorf("%s: %+v", id, st)
		}
	}
	for _, d := range []string{"cpu0", "tpm0", "gpu0"} {
		if r.Devices[d] == nil || r.Devices[d].Verdict != attest.Affirming {
			t.Errorf("%s: %+v", d, r.Devices[d])
		}
	}

	out, code = swornBinary(t, "verify", "bundle", bundle, "--policy", revokedPol)
	if code != 1 || !strings.Contains(out, "✘ release.revocation") {
		t.Fatalf("revoked release: exit %d\n%s", code, out)
	}
	// The vTPM's evidence left out, under a policy that lets TPM evidence
	// be optional: the release still pins PCR 11 and the UKI, which no
	// claim then matches.
	noTPM := attesttest.Edit(t, []byte(mustRead(t, bundle)), func(b *attest.Bundle) *attest.Bundle { return attesttest.Drop(b, "tpm0") })
	optTPM := write("opt-tpm.yaml", strings.NewReplacer("\ntpm:\n", "\ntpm:\n  optional: true\n", "require: [snp, tpm", "require: [snp").Replace(base)+logSection)
	out, code = swornBinary(t, "verify", "bundle", write("no-tpm.bundle", string(noTPM)), "--policy", optTPM)
	if code != 1 || !strings.Contains(out, "✘ release.match") || !strings.Contains(out, "pins PCR sha384:11") {
		t.Fatalf("release pins without TPM claims: exit %d\n%s", code, out)
	}

	// A revocation published after the node booted: the node's old proof
	// still verifies on its own, but not with the log's revocation given.
	rev := fmt.Sprintf(`{"schema": "sworn.dev/record/v1", "type": "revocation", "revocation": {"release_id": "sworn-sim-node", "version": "1.0.0", "reason": "CVE-2026-0001", "created": %q}}`, time.Now().UTC().Format(time.RFC3339))
	revProof := filepath.Join(dir, "revocation.tlog-proof")
	if out, code := swornBinary(t, "release", "publish", "--log", logURL, "--key", pubK+".key", write("revocation.json", rev), "--out", revProof); code != 0 {
		t.Fatalf("publish revocation: %s", out)
	}
	out, code = swornBinary(t, "verify", "bundle", bundle, "--policy", pol, "--revocation", revProof)
	if code != 1 || !strings.Contains(out, "✘ release.revocation") || !strings.Contains(out, "CVE-2026-0001") {
		t.Fatalf("revoked in the log, --revocation given: exit %d\n%s", code, out)
	}
	if out, code := swornBinary(t, "verify", "bundle", bundle, "--policy", pol, "--revocation", bundle); code != 2 || !strings.Contains(out, "--revocation") {
		t.Fatalf("a bundle given as --revocation: exit %d\n%s", code, out)
	}
	// Without it, and without max_checkpoint_age, the ledger says what is
	// not checked.
	if out, _ := swornBinary(t, "verify", "bundle", bundle, "--policy", pol); !strings.Contains(out, "revocation-unchecked") {
		t.Errorf("the ledger does not say that later revocations are unchecked:\n%s", out)
	}

	// A later release's proof swapped into the bundle: its checkpoint is not
	// the one the node bound in its epoch.
	rec2, _ := swornBinary(t, "sim", "record", "--gpus", "1", "--version", "1.0.1")
	proof2 := filepath.Join(dir, "sim2.tlog-proof")
	if out, code := swornBinary(t, "release", "publish", "--log", logURL, "--key", pubK+".key", write("sim2.json", rec2), "--out", proof2); code != 0 {
		t.Fatalf("publish: %s", out)
	}
	data, _ := os.ReadFile(bundle)
	b, err := attest.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	b.Release, _ = os.ReadFile(proof2)
	swapped, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, code = swornBinary(t, "verify", "bundle", write("swapped.bundle", string(swapped)), "--policy", pol)
	if code != 1 || !strings.Contains(out, "✘ release.epoch") {
		t.Fatalf("swapped release proof: exit %d\n%s", code, out)
	}

	out, code = swornBinary(t, "verify", "bundle", bare, "--policy", pol)
	if code != 1 || !strings.Contains(out, "✘ release.inclusion") || !strings.Contains(out, "staples no release proof") {
		t.Fatalf("bundle without a release proof: exit %d\n%s", code, out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRepublishAfterWitnessAdded: a release logged while the log had no
// witness is published again once the log runs with one: release publish
// says it is already in the log at its index and writes a proof that the
// witness cosigned. With the witness unreachable it fails with a clear
// error once --timeout is spent.
func TestRepublishAfterWitnessAdded(t *testing.T) {
	dir := t.TempDir()
	logK := keygen(t, dir, "log", "log.rewitness.test")
	wK := keygen(t, dir, "witness", "w.rewitness.test")
	pubK := keygen(t, dir, "publisher", "ci.rewitness.test")
	pub := func(p string) string { b, _ := os.ReadFile(p + ".pub"); return strings.TrimSpace(string(b)) }
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pubs := write("publishers", pub(pubK)+"\n")
	tmpl, _ := swornBinary(t, "release", "template")
	rec := write("rec.json", tmpl)
	logServe := []string{"log", "serve", "--dir", filepath.Join(dir, "log"), "--listen", "127.0.0.1:0", "--key", logK + ".key", "--publishers", pubs}
	publish := func(logURL, out string, extra ...string) (string, int) {
		return swornBinary(t, append([]string{"release", "publish", "--log", logURL, "--key", pubK + ".key", rec, "--out", filepath.Join(dir, out)}, extra...)...)
	}
	verify := func(proof string) int {
		_, code := swornBinary(t, "verify", "release", filepath.Join(dir, proof), "--log-key", logK+".pub", "--witness", wK+".pub", "--quorum", "1")
		return code
	}
	stop := func(p *exec.Cmd) {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
	}

	logURL, logProc := daemon(t, logServe...)
	if out, code := publish(logURL, "first.tlog-proof"); code != 0 || !strings.Contains(out, "published") {
		t.Fatalf("first publish: exit %d\n%s", code, out)
	}
	stop(logProc)
	if code := verify("first.tlog-proof"); code != 1 {
		t.Fatalf("an unwitnessed proof verified with quorum 1: exit %d", code)
	}

	wURL, wProc := daemon(t, "witness", "serve", "--dir", filepath.Join(dir, "w"), "--listen", "127.0.0.1:0", "--key", wK+".key", "--log-key", logK+".pub")
	wpol := write("witnesses.policy", fmt.Sprintf("witness w %s %s\nquorum w\n", pub(wK), wURL))
	logURL, logProc = daemon(t, append(logServe, "--witness-policy", wpol)...)
	out, code := publish(logURL, "again.tlog-proof")
	if code != 0 || !strings.Contains(out, "already in the log at index 0") {
		t.Fatalf("republish: exit %d\n%s", code, out)
	}
	if code := verify("again.tlog-proof"); code != 0 {
		t.Fatalf("the republished proof does not meet quorum 1: exit %d", code)
	}
	stop(logProc)
	stop(wProc)

	// A second witness that is down, quorum 2: no checkpoint can meet
	// the policy, and publish says so when its time is up.
	w2K := keygen(t, dir, "witness", "w2.rewitness.test")
	wpol2 := write("witnesses2.policy", fmt.Sprintf("witness w %s %s\nwitness w2 %s http://127.0.0.1:1\ngroup g 2 w w2\nquorum g\n", pub(wK), wURL, pub(w2K)))
	logURL, _ = daemon(t, append(logServe, "--witness-policy", wpol2)...)
	start := time.Now()
	out, code = publish(logURL, "never.tlog-proof", "--timeout", "12s")
	if code != 1 || !strings.Contains(out, "meets the witness policy") || !strings.Contains(out, "gave up") {
		t.Fatalf("republish with the quorum unreachable: exit %d\n%s", code, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %v with --timeout 12s", d)
	}
}
