package tpm

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-tpm/tpm2"
)

// AKName returns the TPM name of an AK given as TPMT_PUBLIC: nameAlg ‖
// H(TPMT_PUBLIC). Credential activation binds the credential to this name.
func AKName(akPublic []byte) ([]byte, error) {
	pub, err := unmarshalStrict[tpm2.TPMTPublic](akPublic)
	if err != nil {
		return nil, fmt.Errorf("attestation key is not a TPMT_PUBLIC: %v", err)
	}
	n, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, fmt.Errorf("attestation key name: %v", err)
	}
	return n.Buffer, nil
}

// Activation is a credential-activation challenge (TPM2_MakeCredential,
// verifier side): a secret encrypted to the EK and bound to the AK's name.
// Only a TPM that holds both the EK and a loaded object with that name can
// recover the secret with TPM2_ActivateCredential.
type Activation struct {
	// CredentialBlob is the TPM2B_ID_OBJECT contents.
	CredentialBlob []byte
	// EncryptedSecret is the TPM2B_ENCRYPTED_SECRET contents.
	EncryptedSecret []byte
}

// MakeActivation creates a challenge for the AK under the EK (both
// TPMT_PUBLIC). It returns the challenge and the secret the attester must
// give back. rand must be a cryptographic source (crypto/rand.Reader).
func MakeActivation(rand io.Reader, ekPublic, akPublic []byte) (*Activation, []byte, error) {
	ek, err := unmarshalStrict[tpm2.TPMTPublic](ekPublic)
	if err != nil {
		return nil, nil, fmt.Errorf("EK is not a TPMT_PUBLIC: %v", err)
	}
	if !ek.ObjectAttributes.Decrypt || !ek.ObjectAttributes.Restricted || ek.ObjectAttributes.SignEncrypt {
		return nil, nil, errors.New("EK is not a restricted decryption key")
	}
	name, err := AKName(akPublic)
	if err != nil {
		return nil, nil, err
	}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, nil, err
	}
	key, err := tpm2.ImportEncapsulationKey(ek)
	if err != nil {
		return nil, nil, fmt.Errorf("EK: %v", err)
	}
	blob, enc, err := tpm2.CreateCredential(rand, key, name, secret)
	if err != nil {
		return nil, nil, fmt.Errorf("make credential: %v", err)
	}
	return &Activation{CredentialBlob: blob, EncryptedSecret: enc}, secret, nil
}

// CheckActivation compares the secret the attester recovered with the one
// MakeActivation returned, in constant time.
func CheckActivation(want, got []byte) error {
	if len(want) == 0 || subtle.ConstantTimeCompare(want, got) != 1 {
		return errors.New("credential activation failed: the attester did not recover the secret, so the AK is not in the TPM that holds the EK")
	}
	return nil
}
