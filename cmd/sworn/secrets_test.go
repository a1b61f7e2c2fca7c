package main

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/sim"
)

// simSecrets returns the private keys of a simulated node in the encodings
// a leak would most likely use.
func simSecrets(t *testing.T, seed uint64) []string {
	n, err := sim.Boot(sim.Options{Seed: seed, At: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{n.ReceiptKey.Seed()}
	for _, k := range n.RequestKeys {
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, b)
	}
	var out []string
	for _, k := range secrets {
		out = append(out, hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k))
	}
	return out
}

// TestSecretKeysNeverEchoed passes secret keys to every flag that takes a
// verifier key: the command must refuse them without printing them.
func TestSecretKeysNeverEchoed(t *testing.T) {
	dir := t.TempDir()
	var secrets []string
	key := func(kind, name string) string {
		prefix := filepath.Join(dir, name)
		if code, _, stderr := sworn(t, "keygen", "--kind", kind, "--name", name, "--out", prefix); code != 0 {
			t.Fatalf("keygen: %s", stderr)
		}
		b, err := os.ReadFile(prefix + ".key")
		if err != nil {
			t.Fatal(err)
		}
		s := strings.TrimSpace(string(b))
		secrets = append(secrets, s, strings.SplitN(s, "+", 5)[4]) // PRIVATE+KEY+name+hash+secret
		return prefix + ".key"
	}
	logKey, wKey, pubKey := key("log", "log.secret.test"), key("witness", "w.secret.test"), key("publisher", "ci.secret.test")
	proof := filepath.Join(dir, "p.tlog-proof")
	os.WriteFile(proof, []byte("c2sp.org/tlog-proof@v1\n"), 0o644)
	pubs := filepath.Join(dir, "publishers")
	b, _ := os.ReadFile(pubKey)
	os.WriteFile(pubs, b, 0o644)
	for _, args := range [][]string{
		{"verify", "release", proof, "--log-key", logKey},
		{"verify", "release", proof, "--log-key", strings.TrimSuffix(logKey, ".key") + ".pub", "--publisher", pubKey},
		{"verify", "release", proof, "--log-key", strings.TrimSuffix(logKey, ".key") + ".pub", "--witness", wKey},
		{"witness", "serve", "--dir", filepath.Join(dir, "w"), "--listen", "127.0.0.1:0", "--key", wKey, "--log-key", logKey},
		{"log", "serve", "--dir", filepath.Join(dir, "l"), "--listen", "127.0.0.1:0", "--key", logKey, "--publishers", pubs},
	} {
		code, out, stderr := sworn(t, args...)
		if code == 0 || !strings.Contains(stderr, "SECRET key") {
			t.Fatalf("%v: exit %d, stderr %q; want a refusal of the secret key", args, code, stderr)
		}
		for _, s := range secrets {
			if strings.Contains(out+stderr, s) {
				t.Fatalf("%v printed a secret key: %s", args, stderr)
			}
		}
	}
}
