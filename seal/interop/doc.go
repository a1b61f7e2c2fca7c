// Package interop tests sworn's seal package against an independent
// implementation of the same construction, Tink's AES256_GCM_HKDF_1MB
// streaming AEAD (github.com/tink-crypto/tink-go/v2), in both directions.
// It is a module of its own so that the main module does not depend on
// Tink; CI runs it (make interop).
package interop
