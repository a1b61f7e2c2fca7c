package pemblocks

import (
	"encoding/pem"
	"strings"
	"testing"
)

func block(typ, content string) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte(content)}))
}

func TestDecode(t *testing.T) {
	two := block("CERTIFICATE", "a") + "\n" + block("CERTIFICATE", "b") + "\n"
	got, err := Decode([]byte(two), "CERTIFICATE", 2)
	if err != nil || len(got) != 2 || string(got[0]) != "a" || string(got[1]) != "b" {
		t.Fatalf("Decode = %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		in   string
		max  int
		want string
	}{
		"other type":    {block("CERTIFICATE", "a") + block("PRIVATE KEY", "k"), 0, `PEM block 2 is "PRIVATE KEY", want "CERTIFICATE"`},
		"hostile type":  {block("CERT\x1b[2J", "a"), 0, `PEM block 1 is "CERT\x1b[2J"`},
		"too many":      {two, 1, "more than 1 PEM CERTIFICATE blocks"},
		"none":          {"just text\n", 0, "no PEM CERTIFICATE block found"},
		"trailing junk": {two + "junk", 0, "data after the last PEM block is not PEM"},
	} {
		_, err := Decode([]byte(tc.in), "CERTIFICATE", tc.max)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.ContainsRune(err.Error(), 0x1b) {
			t.Errorf("%s: the error carries a control byte: %q", name, err)
		}
	}
	if !IsPEM([]byte(two)) || IsPEM([]byte{0x30, 0x82}) {
		t.Error("IsPEM")
	}
}
