package kbs

// WrapKey wraps a model key under kek as the broker stores it.
func WrapKey(kek []byte, digest [32]byte, key []byte) []byte {
	return wrapKey(newKEK(kek), digest, key)
}
