package tpm

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
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

// CreateEK creates the endorsement key from an EK template (the TCG
// default templates tpm2.RSAEKTemplate or tpm2.ECCEKTemplate) as an
// endorsement-hierarchy primary and returns its public area (TPMT_PUBLIC),
// the value an SVSM vTPM puts in its attestation manifest. The same TPM
// seed gives the same EK.
func CreateEK(t transport.TPM, template tpm2.TPMTPublic) ([]byte, error) {
	ek, err := createPrimary(t, template, "EK")
	if err != nil {
		return nil, err
	}
	defer flush(t, ek.ObjectHandle)
	return marshalPublic(ek, "EK")
}

// ActivateCredential plays the attester's side of credential activation:
// it re-creates the EK from ekTemplate (whose policy must be the TCG
// default, PolicySecret(TPM_RH_ENDORSEMENT)) and the AK from akTemplate
// (nil means AKTemplateECC, as Collect makes it), runs TPM2_ActivateCredential
// on the challenge and returns the recovered secret, for the verifier's
// CheckActivation. The TPM refuses a challenge made for another EK or
// another AK name.
func ActivateCredential(t transport.TPM, ekTemplate tpm2.TPMTPublic, akTemplate *tpm2.TPMTPublic, act *Activation) ([]byte, error) {
	if act == nil || len(act.CredentialBlob) == 0 || len(act.EncryptedSecret) == 0 {
		return nil, errors.New("credential activation: the challenge is empty; make it with MakeActivation")
	}
	if akTemplate == nil {
		akTemplate = &AKTemplateECC
	}
	ek, err := createPrimary(t, ekTemplate, "EK")
	if err != nil {
		return nil, err
	}
	defer flush(t, ek.ObjectHandle)
	ak, err := createPrimary(t, *akTemplate, "AK")
	if err != nil {
		return nil, err
	}
	defer flush(t, ak.ObjectHandle)
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16, EKPolicy)},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: act.CredentialBlob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: act.EncryptedSecret},
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_ActivateCredential: %v (the challenge was made for another EK or AK)", err)
	}
	return rsp.CertInfo.Buffer, nil
}

// EKPolicy satisfies the TCG default EK policy, PolicySecret(TPM_RH_ENDORSEMENT)
// with the endorsement hierarchy's (empty) password, in a policy session.
func EKPolicy(t transport.TPM, session tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
	_, err := tpm2.PolicySecret{
		AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		PolicySession: session,
		NonceTPM:      nonceTPM,
	}.Execute(t)
	return err
}

func createPrimary(t transport.TPM, template tpm2.TPMTPublic, what string) (*tpm2.CreatePrimaryResponse, error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(template)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("create %s: %v", what, err)
	}
	return rsp, nil
}

func marshalPublic(rsp *tpm2.CreatePrimaryResponse, what string) ([]byte, error) {
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("%s public: %v", what, err)
	}
	return tpm2.Marshal(*pub), nil
}

func flush(t transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(t)
}
