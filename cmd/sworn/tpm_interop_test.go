package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest/tpm"
)

// startSWTPM starts swtpm on two free loopback ports in a temp dir and
// returns the command port (the control port is the next one, as the
// tpm2-tss "swtpm" TCTI expects).
func startSWTPM(t *testing.T) (dir string, port int) {
	t.Helper()
	for _, tool := range []string{"swtpm", "tpm2_createek", "tpm2_createak", "tpm2_quote", "tpm2_checkquote", "tpm2_readpublic"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install swtpm swtpm-tools tpm2-tools): skipping the swtpm/tpm2-tools interop test", tool)
		}
	}
	dir = t.TempDir()
	for try := 0; try < 20; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err != nil {
			continue
		}
		l2.Close()
		cmd := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+dir,
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--flags", "not-need-init,startup-clear")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start swtpm: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for range 50 {
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				return dir, port
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("swtpm did not come up: %s", stderr.String())
	}
	t.Fatal("no free port pair for swtpm")
	return "", 0
}

func tool(t *testing.T, dir string, port int, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=%d", port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestInteropSWTPM(t *testing.T) {
	dir, port := startSWTPM(t)
	nonce := "0011223344556677889900aabbccddeeff"

	// sworn's collector against swtpm, checked by tpm2_checkquote.
	t.Run("sworn quote, tpm2_checkquote", func(t *testing.T) {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		tp := tpm.OpenStream(conn)
		defer tp.Close()
		qd, _ := hex.DecodeString(nonce)
		ev, err := tpm.Collect(tp, tpm.CollectOptions{QualifyingData: qd, Banks: []tpm.Alg{tpm.SHA256}})
		if err != nil {
			t.Fatal(err)
		}
		ak, err := tpm.ParseAK(ev.AK)
		if err != nil {
			t.Fatal(err)
		}
		q := ev.Quotes[0]
		pq, err := tpm.ParseQuote(q)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := tpm.SerializeToolsPCRs(pq)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"s.msg": q.Attest, "s.sig": q.Signature, "s.pcrs": vals, "s.ak.pem": []byte(ak.PEM())} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out := tool(t, dir, port, "tpm2_checkquote", "-u", "s.ak.pem", "-m", "s.msg", "-s", "s.sig", "-f", "s.pcrs", "-g", "sha256", "-q", nonce)
		t.Logf("tpm2_checkquote: %s", strings.TrimSpace(out))
		// And a wrong nonce is refused by tpm2_checkquote too.
		cmd := exec.Command("tpm2_checkquote", "-u", "s.ak.pem", "-m", "s.msg", "-s", "s.sig", "-f", "s.pcrs", "-g", "sha256", "-q", "00")
		cmd.Dir = dir
		if err := cmd.Run(); err == nil {
			t.Fatal("tpm2_checkquote accepted a wrong nonce")
		}
		// sworn verifies its own evidence file too.
		body, _ := ev.Marshal()
		os.WriteFile(filepath.Join(dir, "ev.cbor"), body, 0o600)
		fp := ak.Fingerprint()
		pol := filepath.Join(dir, "s.policy.yaml")
		os.WriteFile(pol, []byte(fmt.Sprintf("version: 1\ntpm:\n  pinned_aks: [%x]\n  allow_no_event_log: true\n  pcrs:\n    sha256:\n      0: \"%s\"\n", fp, strings.Repeat("00", 32))), 0o600)
		var so, se bytes.Buffer
		if code := run([]string{"verify", "tpm", "--evidence", filepath.Join(dir, "ev.cbor"), "--nonce", nonce, "--policy", pol, "--at", "2026-11-27T00:00:00Z"}, &so, &se); code != 0 {
			t.Fatalf("exit %d\n%s%s", code, so.String(), se.String())
		}
	})

	// tpm2_quote against swtpm, verified by sworn verify tpm.
	t.Run("tpm2_quote, sworn verify tpm", func(t *testing.T) {
		tool(t, dir, port, "tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub")
		tool(t, dir, port, "tpm2_flushcontext", "-t")
		tool(t, dir, port, "tpm2_createak", "-C", "ek.ctx", "-c", "ak.ctx", "-G", "ecc", "-g", "sha256", "-s", "ecdsa", "-u", "ak.pub", "-n", "ak.name")
		tool(t, dir, port, "tpm2_flushcontext", "-t")
		tool(t, dir, port, "tpm2_flushcontext", "-s")
		tool(t, dir, port, "tpm2_readpublic", "-c", "ak.ctx", "-f", "pem", "-o", "ak.pem")
		tool(t, dir, port, "tpm2_flushcontext", "-t")
		// The AK is a child of the EK: the quote's qualified signer is
		// checked under the EK's qualified name.
		tool(t, dir, port, "tpm2_readpublic", "-c", "ek.ctx", "-q", "ek.qname")
		tool(t, dir, port, "tpm2_flushcontext", "-t")
		tool(t, dir, port, "tpm2_quote", "-c", "ak.ctx", "-l", "sha256:0,1,2,3,4,5,6,7,11", "-q", nonce, "-m", "q.msg", "-s", "q.sig", "-o", "q.pcrs", "-g", "sha256")
		if st, err := os.Stat(filepath.Join(dir, "q.pcrs")); err == nil {
			t.Logf("q.pcrs is %d bytes", st.Size())
		}
		akRaw, err := os.ReadFile(filepath.Join(dir, "ak.pub"))
		if err != nil {
			t.Fatal(err)
		}
		ak, err := tpm.ParseAK(akRaw)
		if err != nil {
			t.Fatalf("tpm2_createak's ak.pub: %v", err)
		}
		fp := ak.Fingerprint()
		pol := filepath.Join(dir, "policy.yaml")
		os.WriteFile(pol, []byte(fmt.Sprintf("version: 1\ntpm:\n  pinned_aks: [%x]\n  allow_no_event_log: true\n  pcrs:\n    sha256:\n      0: \"%s\"\n", fp, strings.Repeat("00", 32))), 0o600)
		base := []string{"verify", "tpm", "--quote", filepath.Join(dir, "q.msg"), "--sig", filepath.Join(dir, "q.sig"), "--pcrs", filepath.Join(dir, "q.pcrs"), "--at", "2026-11-27T00:00:00Z", "--policy", pol, "--nonce", nonce}
		var so, se bytes.Buffer
		if code := run(append(base, "--ak", filepath.Join(dir, "ak.pub")), &so, &se); code != 1 || !strings.Contains(so.String(), "--ak-parent") {
			t.Fatalf("child AK without --ak-parent: exit %d\n%s%s", code, so.String(), se.String())
		}
		for _, akFile := range []string{"ak.pub", "ak.pem"} {
			args := []string{"verify", "tpm", "--quote", filepath.Join(dir, "q.msg"), "--sig", filepath.Join(dir, "q.sig"), "--ak", filepath.Join(dir, akFile), "--pcrs", filepath.Join(dir, "q.pcrs"), "--at", "2026-11-27T00:00:00Z", "--policy", pol}
			if akFile == "ak.pub" {
				args = append(args, "--ak-parent", filepath.Join(dir, "ek.qname"))
			}
			var so, se bytes.Buffer
			if code := run(append(args, "--nonce", nonce), &so, &se); code != 0 {
				t.Fatalf("%s: exit %d\n%s%s", akFile, code, so.String(), se.String())
			}
			so.Reset()
			if code := run(append(args, "--nonce", "ff"+nonce[2:], "--json"), &so, &se); code != 1 || !strings.Contains(so.String(), `"tpm.quote"`) || !strings.Contains(so.String(), "qualifying data") {
				t.Fatalf("%s wrong nonce: exit %d\n%s", akFile, code, so.String())
			}
		}
		// Bad input exits 2.
		so.Reset()
		se.Reset()
		if code := run([]string{"verify", "tpm", "--quote", filepath.Join(dir, "q.sig"), "--sig", filepath.Join(dir, "q.sig"), "--ak", filepath.Join(dir, "ak.pub")}, &so, &se); code != 2 {
			t.Fatalf("bad quote: exit %d: %s", code, se.String())
		}
	})
}
