package tlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyKinds: every loader refuses a secret key of another kind, named
// by its marker line or (for a witness key) by its type byte, and every
// verifier parser refuses a verifier key of the other type.
func TestKeyKinds(t *testing.T) {
	dir := t.TempDir()
	skeys, vkeys := map[KeyKind]string{}, map[KeyKind]string{}
	files := map[KeyKind]string{}
	for _, k := range []KeyKind{KindLog, KindWitness, KindPublisher} {
		skeys[k], vkeys[k] = mustKey(t, k, string(k)+".test")
		files[k] = filepath.Join(dir, string(k)+".key")
		if err := os.WriteFile(files[k], []byte(KeyFile(k, skeys[k])), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := map[KeyKind]func(string) error{
		KindLog:       func(p string) error { _, err := NewSigner(p, KindLog); return err },
		KindPublisher: func(p string) error { _, err := NewSigner(p, KindPublisher); return err },
		KindWitness:   func(p string) error { _, err := NewCosigner(p); return err },
	}
	for want, f := range load {
		for have, path := range files {
			err := f(path)
			if have == want {
				if err != nil {
					t.Errorf("%s key as %s: %v", have, want, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), "is a "+string(have)+" key, but a "+string(want)+" key is needed") {
				t.Errorf("%s key loaded as a %s key: %v", have, want, err)
			}
		}
	}
	// Without its marker line a witness key is still refused by its type;
	// log and publisher keys cannot be told apart.
	bare := filepath.Join(dir, "bare.key")
	os.WriteFile(bare, []byte(skeys[KindWitness]+"\n"), 0o600)
	for _, k := range []KeyKind{KindLog, KindPublisher} {
		if err := load[k](bare); err == nil || !strings.Contains(err.Error(), "is a witness key") {
			t.Errorf("unmarked witness key as %s: %v", k, err)
		}
	}
	if err := load[KindWitness](bare); err != nil {
		t.Errorf("unmarked witness key: %v", err)
	}
	os.WriteFile(bare, []byte(skeys[KindLog]+"\n"), 0o600)
	if err := load[KindPublisher](bare); err != nil {
		t.Errorf("unmarked log key as publisher: %v", err)
	}
	// A verifier key where a secret key belongs, and an unknown marker.
	os.WriteFile(bare, []byte(vkeys[KindLog]+"\n"), 0o600)
	if err := load[KindLog](bare); err == nil || !strings.Contains(err.Error(), "verifier key, not a secret key") {
		t.Errorf("verifier key as a secret key: %v", err)
	}
	os.WriteFile(bare, []byte(kindMarker+"mallory\n"+skeys[KindLog]+"\n"), 0o600)
	if err := load[KindLog](bare); err == nil || !strings.Contains(err.Error(), "unknown key kind") {
		t.Errorf("unknown marker: %v", err)
	}

	if _, err := ParseVerifier(vkeys[KindWitness]); err == nil || !strings.Contains(err.Error(), "witness's cosignature/v1 verifier key") {
		t.Errorf("witness verifier key as a log key: %v", err)
	}
	for _, k := range []KeyKind{KindLog, KindPublisher} {
		if _, err := ParseWitnessVerifier(vkeys[k]); err == nil || !strings.Contains(err.Error(), "plain Ed25519 verifier key") {
			t.Errorf("%s verifier key as a witness key: %v", k, err)
		}
	}
	for k, v := range vkeys {
		if !IsVerifierKey(v) || IsVerifierKey(skeys[k]) || IsVerifierKey(files[k]) {
			t.Errorf("IsVerifierKey is wrong for a %s key or its file", k)
		}
	}
	if err := CheckWitnessPolicyKeys([]byte("witness w " + vkeys[KindLog] + " http://w\nquorum w\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("witness policy with a log key: %v", err)
	}
	if err := CheckWitnessPolicyKeys([]byte("witness w " + vkeys[KindWitness] + " http://w\nquorum w\n")); err != nil {
		t.Error(err)
	}
}
