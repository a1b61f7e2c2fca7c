package bhttp

import (
	"errors"
	"fmt"
)

// Framing is how a message delimits its sections (RFC 9292 §3.1, §3.2).
type Framing uint8

const (
	// KnownLength prefixes each field section and the content with its
	// length (framing indicators 0 and 1).
	KnownLength Framing = iota
	// IndeterminateLength ends each field section with a zero and sends
	// the content as length-prefixed chunks ended by a zero (framing
	// indicators 2 and 3).
	IndeterminateLength
)

// String names the framing.
func (f Framing) String() string {
	switch f {
	case KnownLength:
		return "known-length"
	case IndeterminateLength:
		return "indeterminate-length"
	}
	return fmt.Sprintf("Framing(%d)", uint8(f))
}

// indicator is the framing indicator of a request (response false) or
// response in framing f (RFC 9292 §3.3).
func (f Framing) indicator(response bool) byte {
	i := byte(0)
	if f == IndeterminateLength {
		i = 2
	}
	if response {
		i++
	}
	return i
}

// Request is a binary HTTP request.
type Request struct {
	// Framing is how the request is encoded; the decoder sets it from the
	// framing indicator.
	Framing Framing
	// Method is the request method, a token such as "POST".
	Method string
	// Scheme is the scheme of the target URI, such as "https".
	Scheme string
	// Authority is the authority of the target URI; it may be empty, as
	// when a Host field names the target (RFC 9292 §3.4).
	Authority string
	// Path is the path and query of the target URI, such as "/v1/chat/completions".
	Path string
	// Header is the header section.
	Header Fields
	// Content is the request content.
	Content []byte
	// Trailer is the trailer section.
	Trailer Fields
	// Truncated is set by the decoder when the message omitted empty
	// trailing sections (RFC 9292 §3.8); the encoder ignores it.
	Truncated bool
}

// InfoResponse is an informational (1xx) response that precedes the final
// response (RFC 9292 §3.5.1).
type InfoResponse struct {
	// Status is the status code, 100 to 199.
	Status int
	// Header is the header section of the informational response.
	Header Fields
}

// Response is a binary HTTP response.
type Response struct {
	// Framing is how the response is encoded; the decoder sets it from the
	// framing indicator.
	Framing Framing
	// Informational are the informational responses, in order.
	Informational []InfoResponse
	// Status is the final status code, 200 to 599.
	Status int
	// Header is the header section of the final response.
	Header Fields
	// Content is the response content.
	Content []byte
	// Trailer is the trailer section.
	Trailer Fields
	// Truncated is set by the decoder when the message omitted empty
	// trailing sections (RFC 9292 §3.8); the encoder ignores it.
	Truncated bool
}

// ErrMalformed is wrapped by the errors for messages that RFC 9292 (§4) or
// this package makes invalid, including messages cut short.
var ErrMalformed = errors.New("malformed binary HTTP message")

// ErrLimit is wrapped by the errors for messages that exceed a [Limits]
// bound.
var ErrLimit = errors.New("binary HTTP message exceeds a limit")

// ErrTruncated is wrapped by the error that [Options].Strict gives for a
// valid message that omitted its empty trailing sections (RFC 9292 §3.8).
var ErrTruncated = errors.New("binary HTTP message omits its trailing sections")

// Limits bounds what a decoder accepts. A [StreamWriter] applies MaxMessage
// and MaxContent, and for its trailer MaxFields and MaxFieldSection. A zero
// field takes the value of [DefaultLimits]; there is no unlimited setting.
type Limits struct {
	// MaxMessage bounds the bytes of a whole message, padding included.
	MaxMessage int64
	// MaxContent bounds the content, over all chunks.
	MaxContent int64
	// MaxFieldSection bounds the encoded bytes of one field section (its
	// field lines with their length prefixes) and of the request control
	// data.
	MaxFieldSection int
	// MaxFields bounds the field lines of one field section.
	MaxFields int
	// MaxInformational bounds the informational responses of a response.
	MaxInformational int
}

// DefaultLimits returns the limits used where none are given: sized for
// LLM inference requests and responses (16 MiB of content, 64 KiB per field
// section).
func DefaultLimits() Limits {
	return Limits{
		MaxMessage:       16<<20 + 1<<20,
		MaxContent:       16 << 20,
		MaxFieldSection:  64 << 10,
		MaxFields:        256,
		MaxInformational: 16,
	}
}

// orDefault returns l with every zero (or negative) field replaced by its
// default.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxMessage <= 0 {
		l.MaxMessage = d.MaxMessage
	}
	if l.MaxContent <= 0 {
		l.MaxContent = d.MaxContent
	}
	if l.MaxFieldSection <= 0 {
		l.MaxFieldSection = d.MaxFieldSection
	}
	if l.MaxFields <= 0 {
		l.MaxFields = d.MaxFields
	}
	if l.MaxInformational <= 0 {
		l.MaxInformational = d.MaxInformational
	}
	return l
}

// Options configures decoders and stream writers; nil means the defaults.
type Options struct {
	// Limits bounds sizes; see [Limits].
	Limits Limits
	// Strict refuses, with [ErrTruncated], messages that omitted their
	// empty trailing sections: a decoder then accepts a message only if it
	// holds every section up to the end of its trailer section. Use it
	// when the sender is known to write complete messages (as this
	// package's encoders do), so that a stream cut at a section boundary
	// is not taken for a whole message.
	Strict bool
}

// limits returns the effective limits of o.
func (o *Options) limits() Limits {
	if o == nil {
		return DefaultLimits()
	}
	return o.Limits.orDefault()
}

func (o *Options) strict() bool { return o != nil && o.Strict }
