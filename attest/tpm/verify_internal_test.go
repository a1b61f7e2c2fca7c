package tpm

import (
	"crypto/x509"
	"encoding/pem"
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
