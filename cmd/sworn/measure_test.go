package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/attest/tpm"
)

// TestMeasureUKI: sworn measure uki prints PCR 11 for the sections and
// boot phases asked for, in canonical order, and refuses bad --sections
// and --phase values with exit 2.
func TestMeasureUKI(t *testing.T) {
	names := []string{".sbat", ".linux", ".osrel", ".uname"}
	contents := map[string][]byte{".linux": []byte("kernel"), ".osrel": []byte("ID=sworn\n"), ".uname": []byte("6.12.0"), ".sbat": []byte("sbat,1\n")}
	uki := tpm.SyntheticUKI(names, contents)
	file := filepath.Join(t.TempDir(), "uki.efi")
	if err := os.WriteFile(file, uki, 0o600); err != nil {
		t.Fatal(err)
	}
	pe, err := tpm.ParsePE(uki)
	if err != nil {
		t.Fatal(err)
	}
	type out map[string]struct {
		PCR11  string `json:"pcr11"`
		Phases []struct {
			Phase string `json:"phase"`
			PCR11 string `json:"pcr11"`
		} `json:"pcr11_phases"`
		Sections []tpm.UKISection `json:"sections"`
	}
	measure := func(args ...string) (out, int, string) {
		var so, se bytes.Buffer
		code := run(append([]string{"measure", "uki", file, "--json"}, args...), &so, &se)
		var o out
		if code == 0 {
			if err := json.Unmarshal(so.Bytes(), &o); err != nil {
				t.Fatal(err)
			}
		}
		return o, code, se.String()
	}

	o, code, se := measure()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	h := tpm.SHA256.Hash()
	all := pe.MeasureUKI(h)
	s := o["sha256"]
	if s.PCR11 != hex.EncodeToString(all.PCR11) || len(s.Sections) != 4 || s.Sections[0].Name != ".linux" || s.Sections[3].Name != ".sbat" || len(s.Phases) != len(tpm.DefaultPhases) {
		t.Fatalf("default: %+v", s)
	}
	for i, p := range s.Phases {
		words, _ := tpm.ParsePhase(tpm.DefaultPhases[i])
		if p.Phase != tpm.DefaultPhases[i] || p.PCR11 != hex.EncodeToString(tpm.ExtendPhases(h, all.PCR11, words...)) {
			t.Fatalf("phase %d: %+v", i, p)
		}
	}

	// An older stub: .sbat and .uname not measured.
	o, code, se = measure("--sections", "osrel,.linux", "--phase", "enter-initrd:leave-initrd", "--phase", "sysinit")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	old := pe.MeasureUKISections(h, []string{".linux", ".osrel"})
	s = o["sha256"]
	if s.PCR11 != hex.EncodeToString(old.PCR11) || s.PCR11 == hex.EncodeToString(all.PCR11) || len(s.Sections) != 2 {
		t.Fatalf("--sections: %+v", s)
	}
	if len(s.Phases) != 2 || s.Phases[0].PCR11 != hex.EncodeToString(tpm.ExtendPhases(h, old.PCR11, "enter-initrd", "leave-initrd")) || s.Phases[1].PCR11 != hex.EncodeToString(tpm.ExtendPhases(h, old.PCR11, "sysinit")) {
		t.Fatalf("--phase: %+v", s.Phases)
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--sections", ".pcrsig"}, "--sections: .pcrsig is never measured"},
		{[]string{"--sections", ".linux,.nope"}, "unknown UKI section"},
		{[]string{"--sections", ""}, "no UKI section"},
		{[]string{"--phase", "enter-initrd::ready"}, "--phase: boot phase"},
	} {
		if _, code, se := measure(c.args...); code != 2 || !strings.Contains(se, c.msg) {
			t.Errorf("%v: exit %d, %q; want exit 2 with %q", c.args, code, se, c.msg)
		}
	}
}
