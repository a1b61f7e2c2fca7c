package bhttp

// maxVarint is the largest value a QUIC variable-length integer holds
// (RFC 9000 §16).
const maxVarint = 1<<62 - 1

// varintLen is the number of bytes of the shortest encoding of v.
func varintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	default:
		return 8
	}
}

// appendVarint appends the shortest encoding of v, which must not exceed
// maxVarint; callers bound their lengths far below it.
func appendVarint(b []byte, v uint64) []byte {
	switch varintLen(v) {
	case 1:
		return append(b, byte(v))
	case 2:
		return append(b, 0x40|byte(v>>8), byte(v))
	case 4:
		return append(b, 0x80|byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		return append(b, 0xc0|byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
			byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

// appendBytes appends p with its length prefix.
func appendBytes(b []byte, p string) []byte {
	return append(appendVarint(b, uint64(len(p))), p...)
}
