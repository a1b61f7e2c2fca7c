// Package lebytes reads the little-endian fields of a binary structure
// (TDX quotes, SPDM messages) with bounds checks: the first read past the
// end sets Err, and every read after it returns nothing.
package lebytes

import (
	"encoding/binary"
	"fmt"
)

// Reader reads B from Off on.
type Reader struct {
	B   []byte
	Off int
	Err error
}

// Take returns the next n bytes of B (a subslice, not a copy), or nil once
// B is exhausted; what names the field in the error.
func (r *Reader) Take(n int, what string) []byte {
	if r.Err != nil {
		return nil
	}
	if n < 0 || n > len(r.B)-r.Off {
		if what == "" {
			what = "the next field"
		}
		r.Err = fmt.Errorf("truncated at byte %d: %s needs %d bytes, %d are left", r.Off, what, n, len(r.B)-r.Off)
		return nil
	}
	v := r.B[r.Off : r.Off+n]
	r.Off += n
	return v
}

// U8 reads a byte.
func (r *Reader) U8(what string) uint8 {
	if v := r.Take(1, what); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads a little-endian uint16.
func (r *Reader) U16(what string) uint16 {
	if v := r.Take(2, what); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

// U24 reads a little-endian 24-bit integer.
func (r *Reader) U24(what string) uint32 {
	if v := r.Take(3, what); v != nil {
		return uint32(v[0]) | uint32(v[1])<<8 | uint32(v[2])<<16
	}
	return 0
}

// U32 reads a little-endian uint32.
func (r *Reader) U32(what string) uint32 {
	if v := r.Take(4, what); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}
