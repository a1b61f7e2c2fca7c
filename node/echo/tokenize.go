package echo

import (
	"unicode"
	"unicode/utf8"
)

// Tokenize splits s into the engine's tokens: each maximal run of letters,
// digits and marks (a word) is one token, each maximal run of white space is
// one token, and every other character (punctuation, symbols, and each byte of
// invalid UTF-8) is a token by itself. The tokens concatenate back to s
// exactly, so a streamed answer joins to the unstreamed one. For example
// "echo: hi, there" is ["echo" ":" " " "hi" "," " " "there"].
func Tokenize(s string) []string {
	var toks []string
	for len(s) > 0 {
		n := tokenLen(s)
		toks = append(toks, s[:n])
		s = s[n:]
	}
	return toks
}

// countTokens is len(Tokenize(s)) without building the slice.
func countTokens(s string) int {
	n := 0
	for len(s) > 0 {
		s = s[tokenLen(s):]
		n++
	}
	return n
}

// tokenLen is the length in bytes of the token at the start of non-empty s.
func tokenLen(s string) int {
	r, size := utf8.DecodeRuneInString(s)
	class := runeClass(r, size)
	if class == classOther {
		return size
	}
	n := size
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if runeClass(r, size) != class {
			break
		}
		n += size
	}
	return n
}

const (
	classWord = iota
	classSpace
	classOther
)

func runeClass(r rune, size int) int {
	switch {
	case r == utf8.RuneError && size <= 1:
		return classOther
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.IsMark(r):
		return classWord
	case unicode.IsSpace(r):
		return classSpace
	default:
		return classOther
	}
}
