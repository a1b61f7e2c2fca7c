package safetext

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"\x89PNG\r\n\x1a\n", `"\x89PNG\r\n\x1a\n"`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"é", `"\xc3\xa9"`},
		{strings.Repeat("x", MaxExcerpt+1), `"` + strings.Repeat("x", MaxExcerpt) + `..."`},
	} {
		if got := QuoteString(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	// However long or binary the input, the excerpt is short printable ASCII.
	in := make([]byte, 4096)
	for i := range in {
		in[i] = byte(i)
	}
	got := Quote(in)
	if len(got) > 4*MaxExcerpt+5 {
		t.Errorf("excerpt of 4096 bytes is %d bytes long", len(got))
	}
	for _, c := range []byte(got) {
		if c < 0x20 || c >= 0x7f {
			t.Fatalf("excerpt has byte %#x: %s", c, got)
		}
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain → text ‖ ok\n\tnext", "plain → text ‖ ok\n\tnext"},
		{"a\x00b\x1b[2Jc\rd", `a\x00b\x1b[2Jc\x0dd`},
		{"bad \xff utf-8", `bad \xff utf-8`},
		{"zero\u200bwidth", `zero\u200bwidth`},
	} {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsText(t *testing.T) {
	for in, want := range map[string]bool{
		"version: 1\r\nsnp: {}\n": true,
		"\ufeffversion: 1\n":      true,
		"é ‖ →":                   true,
		"\x89PNG\r\n\x1a\n":       false,
		"a\x00b":                  false,
		"x\ufeff":                 false,
		"\xff":                    false,
	} {
		if got := IsText([]byte(in)); got != want {
			t.Errorf("IsText(%q) = %v, want %v", in, got, want)
		}
	}
}
