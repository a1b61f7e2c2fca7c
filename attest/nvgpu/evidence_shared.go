package nvgpu

// decodeEvidenceShared decodes an entry body without copying its byte
// strings, when the body is exactly in the canonical form that
// Evidence.Marshal writes: a definite-length map of 1 to 4 pairs whose keys
// are the unsigned integers 1 to 4 in increasing order, key 1 a byte
// string, keys 2 to 4 definite-length arrays of byte strings, every head
// in its shortest form, and nothing after the map. Anything else — another
// valid encoding or an invalid one — returns false, and the caller decodes
// with the strict general decoder, which gives the answer and the error.
//
// Every body it accepts is one the strict decoder (attest.UnmarshalCBOR)
// accepts with the same values: no duplicate or unknown keys (increasing
// keys 1 to 4), no indefinite lengths, no tags, no text, two levels of
// nesting, arrays within the decoder's limit of 1024 elements, no trailing
// bytes. FuzzEvidenceShared checks this against the general decoder.
//
// The slices it returns share body's memory (each capped to its length).
func decodeEvidenceShared(body []byte) (*Evidence, bool) {
	d := sharedDecoder{b: body}
	n, ok := d.head(5)
	if !ok || n < 1 || n > 4 {
		return nil, false
	}
	var e Evidence
	prev := uint64(0)
	for range n {
		k, ok := d.head(0)
		if !ok || k <= prev || k > 4 {
			return nil, false
		}
		prev = k
		if k == 1 {
			if e.Report, ok = d.bytes(); !ok {
				return nil, false
			}
			continue
		}
		l, ok := d.head(4)
		// Every element takes at least one byte: a longer array cannot fit.
		if !ok || l > 1024 || l > uint64(len(d.b)-d.off) {
			return nil, false
		}
		list := make([][]byte, l)
		for i := range list {
			if list[i], ok = d.bytes(); !ok {
				return nil, false
			}
		}
		switch k {
		case 2:
			e.Certs = list
		case 3:
			e.RIMs = list
		case 4:
			e.OCSP = list
		}
	}
	if d.off != len(d.b) {
		return nil, false
	}
	return &e, true
}

type sharedDecoder struct {
	b   []byte
	off int
}

// head reads a data item head of the given major type with a definite
// argument in its shortest encoding, and returns the argument.
func (d *sharedDecoder) head(major byte) (uint64, bool) {
	if d.off >= len(d.b) || d.b[d.off]>>5 != major {
		return 0, false
	}
	ai := d.b[d.off] & 0x1f
	d.off++
	var size int
	switch {
	case ai < 24:
		return uint64(ai), true
	case ai == 24:
		size = 1
	case ai == 25:
		size = 2
	case ai == 26:
		size = 4
	case ai == 27:
		size = 8
	default: // reserved, or indefinite length
		return 0, false
	}
	if len(d.b)-d.off < size {
		return 0, false
	}
	var v uint64
	for _, c := range d.b[d.off : d.off+size] {
		v = v<<8 | uint64(c)
	}
	d.off += size
	// Shortest form: each size is used only for what the smaller can't hold.
	if (size == 1 && v < 24) || (size == 2 && v <= 0xff) || (size == 4 && v <= 0xffff) || (size == 8 && v <= 0xffffffff) {
		return 0, false
	}
	return v, true
}

// bytes reads a definite-length byte string and returns it as a slice of
// the body, capped to its length.
func (d *sharedDecoder) bytes() ([]byte, bool) {
	l, ok := d.head(2)
	if !ok || l > uint64(len(d.b)-d.off) {
		return nil, false
	}
	end := d.off + int(l)
	s := d.b[d.off:end:end]
	d.off = end
	return s, true
}
