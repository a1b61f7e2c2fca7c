package bhttp

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Field is one field line of a header or trailer section: a name and a
// value (RFC 9292 §3.6).
type Field struct {
	// Name is the field name; the encoder and decoder lower-case it.
	Name string
	// Value is the field value.
	Value string
}

// Fields is a header or trailer section: field lines in order. A name may
// repeat; each repetition is its own field line.
type Fields []Field

// FromHeader returns the fields of h with lower-cased names, sorted by name
// (a map has no order), the values of one name in the order h holds them.
func FromHeader(h http.Header) Fields {
	names := make([]string, 0, len(h))
	n := 0
	for k, vs := range h {
		names = append(names, k)
		n += len(vs)
	}
	slices.SortFunc(names, func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	})
	f := make(Fields, 0, n)
	for _, k := range names {
		lk := strings.ToLower(k)
		for _, v := range h[k] {
			f = append(f, Field{Name: lk, Value: v})
		}
	}
	return f
}

// Header returns f as an http.Header, names in canonical form, values of a
// repeated name in order. It returns nil for no fields.
func (f Fields) Header() http.Header {
	if len(f) == 0 {
		return nil
	}
	h := make(http.Header, len(f))
	for _, fl := range f {
		h.Add(fl.Name, fl.Value)
	}
	return h
}

// Get returns the value of the first field named name (compared without
// regard to case), or "" if there is none.
func (f Fields) Get(name string) string {
	for _, fl := range f {
		if strings.EqualFold(fl.Name, name) {
			return fl.Value
		}
	}
	return ""
}

// Validate reports the first field line that this package would refuse to
// encode or decode: a name that is empty, not a token (RFC 9110 §5.1) or a
// pseudo-field (starting with ':'), or a value with a control character
// other than HTAB (NUL, CR and LF among them) or with leading or trailing
// whitespace (RFC 9113 §8.2.1).
func (f Fields) Validate() error {
	for i, fl := range f {
		if err := validField(fl.Name, fl.Value); err != nil {
			return fmt.Errorf("field line %d: %w", i+1, err)
		}
	}
	return nil
}

// validField checks one field line; see Fields.Validate.
func validField(name, value string) error {
	if name == "" {
		return fmt.Errorf("%w: empty field name", ErrMalformed)
	}
	if name[0] == ':' {
		return fmt.Errorf("%w: field name %q is a pseudo-field, which this format carries as control data", ErrMalformed, clip(name))
	}
	if !isToken(name) {
		return fmt.Errorf("%w: field name %q is not a token (RFC 9110 §5.1)", ErrMalformed, clip(name))
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("%w: value of field %q has control character 0x%02x at byte %d", ErrMalformed, clip(name), c, i)
		}
	}
	if value != "" && (isWS(value[0]) || isWS(value[len(value)-1])) {
		return fmt.Errorf("%w: value of field %q starts or ends with whitespace", ErrMalformed, clip(name))
	}
	return nil
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }

// tchar marks the bytes of a token (RFC 9110 §5.6.2).
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isToken reports whether s is a non-empty token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// lower returns s with ASCII upper-case letters lower-cased, without
// allocating when s is already lower-case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// hopByHop are the connection-specific fields of RFC 9110 §7.6.1 (and the
// older ones that HTTP/2 also refuses), which RFC 9292 §3.6 says should be
// removed when a binary message is made.
var hopByHop = []string{"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"}

// withoutHopByHop returns f without connection-specific fields and without
// the fields that a Connection field names.
func withoutHopByHop(f Fields) Fields {
	drop := slices.Clone(hopByHop)
	for _, fl := range f {
		if fl.Name == "connection" {
			for _, n := range strings.Split(fl.Value, ",") {
				if n = strings.TrimSpace(n); n != "" {
					drop = append(drop, lower(n))
				}
			}
		}
	}
	out := f[:0:0]
	for _, fl := range f {
		if !slices.Contains(drop, fl.Name) {
			out = append(out, fl)
		}
	}
	return out
}
