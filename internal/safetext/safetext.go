// Package safetext renders untrusted bytes for error messages and reports:
// printable, bounded, and never a terminal control sequence.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxExcerpt is how many bytes of an input Quote shows at most.
const MaxExcerpt = 24

// Quote renders at most MaxExcerpt bytes of untrusted input as a
// double-quoted excerpt of printable ASCII: other bytes, quotes and
// backslashes are escaped (\xNN, \", \\), and a longer input ends in "...".
// Use it wherever an error or a report quotes bytes an input supplied.
func Quote(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for i, c := range b {
		if i == MaxExcerpt {
			s.WriteString("...")
			break
		}
		switch {
		case c == '"' || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\t':
			s.WriteString(`\t`)
		default:
			fmt.Fprintf(&s, `\x%02x`, c)
		}
	}
	s.WriteByte('"')
	return s.String()
}

// QuoteString is Quote for a string.
func QuoteString(s string) string { return Quote([]byte(s)) }

// Clean makes a message safe to print: invalid UTF-8 and every
// non-printable rune except newline and tab are escaped (\xNN, \uNNNN), so
// no input can put control sequences on a terminal. Printable text,
// including non-ASCII, is kept as it is.
func Clean(msg string) string {
	var s strings.Builder
	for i := 0; i < len(msg); {
		r, n := utf8.DecodeRuneInString(msg[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&s, `\x%02x`, msg[i])
		case r == '\n' || r == '\t' || unicode.IsPrint(r):
			s.WriteString(msg[i : i+n])
		case r < 0x80:
			fmt.Fprintf(&s, `\x%02x`, r)
		default:
			fmt.Fprintf(&s, `\u%04x`, r)
		}
		i += n
	}
	return s.String()
}

// IsText reports whether b is valid UTF-8 whose runes are all printable,
// newlines, carriage returns or tabs (after an optional byte-order mark):
// text a person wrote, not binary.
func IsText(b []byte) bool {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if r != '\n' && r != '\t' && r != '\r' && !unicode.IsPrint(r) && !(i == 0 && r == '\ufeff') {
			return false
		}
		i += n
	}
	return true
}
