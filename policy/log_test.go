package policy

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func TestLogSection(t *testing.T) {
	_, lv, _ := note.GenerateKey(rand.Reader, "log.test")
	_, wv, _ := note.GenerateKey(rand.Reader, "w.test")
	wv, _ = fnote.VKeyToCosignatureV1(wv)
	good := fmt.Sprintf("version: 1\nlog:\n  origin: log.test\n  key: %q\n  witnesses: [%q]\n  quorum: 1\n  max_checkpoint_age: 24h\n  revoked: [a@1]\n", lv, wv)
	p, err := Parse("good", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.Log.Quorum != 1 || len(p.Log.Witnesses) != 1 {
		t.Fatalf("%+v", p.Log)
	}
	for name, bad := range map[string]string{
		"quorum too high": strings.Replace(good, "quorum: 1", "quorum: 2", 1),
		"origin mismatch": strings.Replace(good, "origin: log.test", "origin: other", 1),
		"bad key":         strings.Replace(good, lv, "nope", 1),
		"bad witness":     strings.Replace(good, wv, "nope", 1),
		"bad revoked":     strings.Replace(good, "a@1", "a", 1),
		"unknown field":   good + "  extra: 1\n",
	} {
		if _, err := Parse(name, []byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
