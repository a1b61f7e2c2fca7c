// Package bhttp encodes and decodes Binary HTTP messages (RFC 9292), the
// message format that Oblivious HTTP (RFC 9458) and chunked Oblivious HTTP
// (draft-ietf-ohai-chunked-ohttp) carry.
//
// Implemented, by section of RFC 9292:
//
//   - §3.1 and §3.2: known-length and indeterminate-length requests and
//     responses, both encoded and decoded; the framing indicator (§3.3)
//     decides how a message is decoded.
//   - §3.4: request control data (method, scheme, authority, path).
//   - §3.5 and §3.5.1: response control data, with any number (bounded by
//     [Limits]) of informational (1xx) responses before the final status.
//   - §3.6: header and trailer field sections; order and repeated names are
//     kept ([Fields]).
//   - §3.7: content, including a streaming encoder ([StreamWriter]) that
//     writes each piece of content as its own chunk, and a streaming decoder
//     ([Reader]).
//   - §3.8: padding with zero bytes (decoders check that padding is zero;
//     encoders never pad, a caller pads by appending zero bytes), and
//     truncation (see below).
//   - §4: invalid messages are refused with an error that wraps
//     [ErrMalformed] or, for a size over a limit, [ErrLimit].
//
// Integers are QUIC variable-length integers (RFC 9000 §16). RFC 9292 §3
// says integers need not use the minimum number of bytes, so decoders accept
// any of the four lengths; encoders always write the shortest.
//
// Truncation. §3.8 lets an encoder omit an empty trailer section, and omit
// empty content together with an empty trailer section; decoders treat what
// was omitted as empty, and a message that is truncated at any other point
// is invalid. So a decoder accepts a message that ends after its header
// section or after its content, and refuses one that ends anywhere else: in
// the control data, before or inside the header section, between the chunks
// of indeterminate-length content (the content terminator is missing), or
// inside the trailer section. A message that omitted sections is reported
// ([Reader.Truncated], Request.Truncated, Response.Truncated), and
// [Options].Strict refuses it with [ErrTruncated]. Encoders in this package
// always write every section, so a caller that receives only messages from
// this package can use Strict to learn that a stream ended where its sender
// ended it. (§3.1 mentions truncation before any length prefix; this package
// follows the narrower rule of §3.8 and refuses a message that ends right
// after its control data.)
//
// Field lines follow the rules of RFC 9292 §3.6 with a few stricter choices:
// names are tokens (RFC 9110 §5.1) and are lower-cased by the encoder and
// the decoder; a name that starts with ':' (a pseudo-field) is refused, as
// are values with control characters other than HTAB (in particular NUL, CR
// and LF) or with leading or trailing whitespace (RFC 9113 §8.2.1).
// Connection-specific fields (RFC 9110 §7.6.1) are dropped when converting
// from net/http ([FromHTTPRequest], [FromHTTPResponse]) and kept as they are
// when decoding.
//
// The module in the interop directory tests this package against
// github.com/openpcc/bhttp in both directions; it is a module of its own so
// that the sworn module does not depend on it.
//
// Not implemented: header compression (HPACK, QPACK) and any other
// compression, the reason phrase of a status (the format does not carry it),
// chunk extensions and transfer codings (§6), extension pseudo-fields, and
// combining repeated Cookie fields (they stay separate field lines).
package bhttp
