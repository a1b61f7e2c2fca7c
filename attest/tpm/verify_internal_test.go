package tpm

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/internal/vectors"
)

func TestDBMatches(t *testing.T) {
	entry := "CN=Microsoft Corporation UEFI CA 2011,O=Microsoft Corporation,C=US (sha256:46def63b)"
	for _, tc := range []struct {
		want string
		ok   bool
	}{
		{"sha256:46def63b", true},
		{"CN=Microsoft Corporation UEFI CA 2011,O=Microsoft Corporation,C=US", true},
		{"Microsoft", false},
		{"CA", false},
		{"sha256:46def6", false},
		{"CN=Microsoft Corporation UEFI CA 2011", false},
	} {
		if got := dbMatches(entry, tc.want); got != tc.ok {
			t.Errorf("dbMatches(%q) = %v", tc.want, got)
		}
	}
	if !dbMatches("MicrosoftUEFICA2011", "MicrosoftUEFICA2011") || dbMatches("MicrosoftUEFICA2011", "Microsoft") {
		t.Error("well-known names match exactly")
	}
}

// TestSubjectName: the light subject reader agrees with crypto/x509 on real
// certificates, and refuses what is not one.
func TestSubjectName(t *testing.T) {
	ders := [][]byte{vectors.Read(t, "snp", "go-sev-guest-milan", "vcek.der")}
	for _, f := range []string{"tpm_ek_root_1.cer", "tpm_ek_intermediate_2.crt"} {
		b := vectors.Read(t, "tpm", "gce-cos-85", f)
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		ders = append(ders, b)
	}
	for _, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if got := subjectName(der); got != c.Subject.String() {
			t.Errorf("subjectName %q, x509 %q", got, c.Subject)
		}
	}
	if subjectName([]byte("junk")) != "unparsable certificate" {
		t.Error("junk has a subject")
	}
}

// TestReplayBanksNoneQuoted: a log that records none of the quoted banks
// is refused, naming both sets of banks.
func TestReplayBanksNoneQuoted(t *testing.T) {
	l := NewLogBuilder(SHA256)
	sep := []byte{0, 0, 0, 0}
	d := l.Measure(0, evSeparator, sep, sep)
	pcr0 := make([]byte, 32)
	h := SHA256.Hash().New()
	h.Write(pcr0)
	h.Write(d[SHA256])
	if _, _, err := ReplayBanks(l.Bytes(), PCRs{SHA256: {0: h.Sum(nil)}}); err != nil {
		t.Fatalf("sha256 log, sha256 quote: %v", err)
	}
	_, _, err := ReplayBanks(l.Bytes(), PCRs{SHA384: {0: make([]byte, 48)}})
	if err == nil || !strings.Contains(err.Error(), "records the banks sha256, none of which is quoted (quoted: sha384)") {
		t.Fatalf("sha256 log, sha384 quote: %v", err)
	}
}
