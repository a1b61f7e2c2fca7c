package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest/snp"
	"github.com/sworn-dev/sworn/internal/pgtest"
	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/sim"
	"github.com/sworn-dev/sworn/up"
)

// TestKBSKill9: sworn kbs serve, on SQLite and on PostgreSQL, killed with
// SIGKILL while models are being registered and keys released, loses no
// registration it acknowledged, and returned no key whose release is not
// in the log; restarted on the same store it opens every key, and sworn
// kbs audit (on the stack's own broker) finds the log and database agree.
func TestKBSKill9(t *testing.T) {
	dir := t.TempDir()
	s, err := up.Start(t.Context(), up.Config{Dir: dir, Nodes: 1, GPUs: 1, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kek, tok := filepath.Join(dir, "test.kek"), filepath.Join(dir, "test.token")
	os.WriteFile(kek, randomBytes(32), 0o600)
	token := "test-admin-token-0123456789"
	os.WriteFile(tok, []byte(token+"\n"), 0o600)
	pol, err := policy.Load(s.Policy)
	if err != nil {
		t.Fatal(err)
	}

	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			db := "sqlite:" + filepath.Join(t.TempDir(), "kbs.db")
			if kind == "postgres" {
				db = pgtest.DSN(t)
			}
			serve := func() (string, func()) {
				u, cmd := daemon(t, "kbs", "serve", "--db", db, "--log", s.LogURL, "--key", filepath.Join(dir, "publisher.key"),
					"--policy", s.Policy, "--kek", kek, "--listen", "127.0.0.1:0", "--admin-token", tok, "--id", "kill9-kbs")
				return u, func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }
			}
			u, kill := serve()
			if code := register(u, token, kbs.FormatDigest(s.Model.Digest), s.Model.Key); code != http.StatusNoContent {
				t.Fatalf("registering the stack's model: %d", code)
			}

			// Registrations, killed midway.
			var mu sync.Mutex
			acked := map[string][]byte{}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						var d [32]byte
						rand.Read(d[:])
						key := randomBytes(32)
						if register(u, token, kbs.FormatDigest(d), key) == http.StatusNoContent {
							mu.Lock()
							acked[kbs.FormatDigest(d)] = key
							mu.Unlock()
						}
					}
				})
			}
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 20 })
			kill()
			close(stop)
			wg.Wait()

			// Key releases, killed midway: each node a new simulated one.
			u, kill = serve()
			var returned []uint64
			stop = make(chan struct{})
			for g := range 3 {
				wg.Go(func() {
					for i := uint64(0); ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if idx, ok := release(u, s, 1000+uint64(g)*1000+i); ok {
							mu.Lock()
							returned = append(returned, idx)
							mu.Unlock()
						}
					}
				})
			}
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(returned) >= 3 })
			kill()
			close(stop)
			wg.Wait()

			// Restarted on the same store: it opens every key (a start-up
			// check), and holds each acknowledged one, the same key.
			u, kill = serve()
			defer kill()
			for d, key := range acked {
				if code := register(u, token, d, key); code != http.StatusNoContent {
					t.Fatalf("an acknowledged registration of %s is lost or changed: %d", d, code)
				}
			}
			wrong := randomBytes(32)
			for d := range acked {
				if code := register(u, token, d, wrong); code != http.StatusBadRequest {
					t.Fatalf("another key for %s: %d", d, code)
				}
				break
			}

			// Every returned key is a release in the log, and in the database.
			a, _, err := kbs.ReadLog(t.Context(), s.LogURL, pol, nil)
			if err != nil {
				t.Fatal(err)
			}
			store, err := kbs.OpenStore(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			rels, err := store.Releases(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			inDB := map[uint64]bool{}
			for _, r := range rels {
				inDB[r.LogIndex] = true
			}
			for _, idx := range returned {
				if !inDB[idx] {
					t.Errorf("the key returned with log index %d is not in the database", idx)
				}
			}
			for _, f := range a.Compare("kill9-kbs", rels) {
				if !strings.Contains(f.Problem, "database lacks") { // a release cut off after its append is the one allowed
					t.Errorf("audit: %s", f)
				}
			}
			t.Logf("%d registrations acknowledged, %d keys returned before the kills", len(acked), len(returned))
		})
	}

	// sworn monitor checks each key release against the policy: every one
	// passes the stack's policy, none a policy allowing another measurement.
	if out, code := swornBinary(t, "monitor", "--log", s.LogURL, "--policy", s.Policy, "--state", t.TempDir(), "--once"); code != 0 || strings.Contains(out, "ALERT") {
		t.Fatalf("monitor under the stack's policy: %d\n%s", code, out)
	}
	polText, _ := os.ReadFile(s.Policy)
	meas := hex.EncodeToString(snp.SimMeasurement[:])
	other := filepath.Join(t.TempDir(), "other.yaml")
	os.WriteFile(other, bytes.ReplaceAll(polText, []byte(meas), []byte(strings.Repeat("ab", 48))), 0o644)
	if out, code := swornBinary(t, "monitor", "--log", s.LogURL, "--policy", other, "--state", t.TempDir(), "--once"); code != 1 || !strings.Contains(out, "which the policy does not allow") {
		t.Fatalf("monitor under a policy of another measurement: %d\n%s", code, out)
	}

	// sworn kbs audit on the stack's own broker: its nodes' two releases agree.
	out, code := swornBinary(t, "kbs", "audit", "--db", "sqlite:"+filepath.Join(dir, "kbs.db"), "--log", s.LogURL, "--policy", s.Policy, "--id", "sworn-up-kbs")
	if code != 0 || !strings.Contains(out, "1 key releases by sworn-up-kbs in the log, 1 in the database; 0 findings") {
		t.Fatalf("kbs audit: %d\n%s", code, out)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

func postJSON(url string, hdr http.Header, in any, out any) int {
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header = hdr
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func register(u, token, model string, key []byte) int {
	return postJSON(u+"/kbs/v1/models", http.Header{"Authorization": {"Bearer " + token}}, kbs.RegisterRequest{Name: "m", Model: model, Key: key}, nil)
}

// release asks for the stack model's key as a new simulated node.
func release(u string, s *up.Stack, seed uint64) (uint64, bool) {
	model := kbs.FormatDigest(s.Model.Digest)
	var c kbs.ChallengeResponse
	if postJSON(u+"/kbs/v1/challenge", http.Header{}, kbs.ChallengeRequest{Model: model}, &c) != http.StatusOK {
		return 0, false
	}
	n, err := sim.Boot(sim.Options{Seed: seed, At: time.Now(), Nonce: c.Nonce, GPUs: 1, Release: s.Release})
	if err != nil {
		return 0, false
	}
	b, _ := n.Bundle.Marshal()
	var r kbs.ReleaseResponse
	if postJSON(u+"/kbs/v1/release", http.Header{}, kbs.ReleaseRequest{Model: model, Nonce: c.Nonce, Bundle: b}, &r) != http.StatusOK {
		return 0, false
	}
	return r.LogIndex, true
}
