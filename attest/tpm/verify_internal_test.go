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

// TestReplayUnmeasuredData: replay refuses what the TPM does not measure
// but claims would read: an event on a PCR a PC Client TPM does not have,
// separator, EFI action and S-CRTM version data that does not hash to the
// event's digest, and systemd-stub PCR 11 pairs that are cut short.
func TestReplayUnmeasuredData(t *testing.T) {
	utf16 := func(s string) []byte {
		var b []byte
		for _, r := range s + "\x00" {
			b = append(b, byte(r), 0)
		}
		return b
	}
	build := func(edit func(l *LogBuilder)) []byte {
		l := NewLogBuilder(SHA256)
		v := utf16("firmware 1.0")
		l.Measure(0, evSCRTMVersion, v, v)
		l.Measure(4, evEFIAction, []byte("Calling EFI Application from Boot Option"), []byte("Calling EFI Application from Boot Option"))
		l.Measure(11, evIPL, utf16(".linux"), []byte(".linux\x00"))
		l.Measure(11, evIPL, utf16(".linux"), []byte("kernel"))
		for pcr := range 8 {
			l.Measure(pcr, evSeparator, []byte{0, 0, 0, 0}, []byte{0, 0, 0, 0})
		}
		if edit != nil {
			edit(l)
		}
		return l.Bytes()
	}
	replay := func(raw []byte) error {
		pcrs, err := ComputePCRs(raw, SHA256)
		if err != nil {
			t.Fatal(err)
		}
		for i := range pcrs {
			if i >= NumPCRs {
				delete(pcrs, i)
			}
		}
		_, err = ReplayEventLog(raw, SHA256, pcrs)
		return err
	}
	if err := replay(build(nil)); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	for _, c := range []struct {
		name, want string
		edit       func(l *LogBuilder)
	}{
		{"event on PCR 30", "is on PCR 30", func(l *LogBuilder) { l.Measure(30, evIPL, []byte("x"), []byte("x")) }},
		{"separator data", "is not the hash of its data", func(l *LogBuilder) { l.Measure(8, evSeparator, []byte{1, 0, 0, 0}, []byte{0, 0, 0, 0}) }},
		{"EFI action data", "is not the hash of its data", func(l *LogBuilder) {
			l.Measure(5, evEFIAction, []byte("Exit Boot Services Invocatioo"), []byte("Exit Boot Services Invocation"))
		}},
		{"S-CRTM version data", "is not the hash of its data", func(l *LogBuilder) { l.Measure(0, evSCRTMVersion, utf16("firmware 2.0"), utf16("firmware 1.0")) }},
		{"PCR 11 name without contents", "was named but its contents event is missing", func(l *LogBuilder) { l.Measure(11, evIPL, utf16(".osrel"), []byte(".osrel\x00")) }},
		{"PCR 11 data not UTF-16", "not a UTF-16 section name", func(l *LogBuilder) { l.Measure(11, evIPL, []byte{0xff}, []byte("x")) }},
	} {
		if err := replay(build(c.edit)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
