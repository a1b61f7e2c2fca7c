package tlog

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// KeyKind says what a key is for.
type KeyKind string

// The key kinds.
const (
	KindLog       KeyKind = "log"
	KindWitness   KeyKind = "witness"
	KindPublisher KeyKind = "publisher"
)

// maxKeyFile bounds a key file.
const maxKeyFile = 8 << 10

// GenerateKey makes a new Ed25519 key for the given use. skey is the
// signed-note signer key (secret); vkey the public verifier key: a plain
// Ed25519 signed-note key for logs and publishers, a cosignature/v1 key
// (type 0x04) for witnesses. For a log, name is the log's origin.
func GenerateKey(kind KeyKind, name string) (skey, vkey string, err error) {
	if name == "" || strings.ContainsAny(name, "+ \t\n") {
		return "", "", fmt.Errorf("key name %q must be non-empty with no spaces or '+'", name)
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", err
	}
	switch kind {
	case KindLog, KindPublisher:
	case KindWitness:
		vkey, err = fnote.VKeyToCosignatureV1(vkey)
		if err != nil {
			return "", "", err
		}
	default:
		return "", "", fmt.Errorf("key kind %q is unknown (use log, witness or publisher)", kind)
	}
	return skey, vkey, nil
}

// ReadKeyFile reads a key file: one line, a signed-note key. A secret key
// file must not be readable by group or others.
func ReadKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if fi.Size() > maxKeyFile {
		return "", fmt.Errorf("key file %s is larger than %d bytes: it is not a key", path, maxKeyFile)
	}
	buf := make([]byte, fi.Size())
	if _, err := f.ReadAt(buf, 0); err != nil && fi.Size() > 0 {
		return "", err
	}
	s := strings.TrimSpace(string(buf))
	if strings.HasPrefix(s, "PRIVATE+KEY+") && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("secret key file %s has mode %04o; make it readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	if s == "" || strings.ContainsAny(s, "\n") {
		return "", fmt.Errorf("key file %s must hold exactly one key line", path)
	}
	return s, nil
}

// NewSigner reads a secret key file and returns its signed-note signer.
func NewSigner(path string) (note.Signer, error) {
	s, err := ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(s)
	if err != nil {
		return nil, fmt.Errorf("key file %s is not a signed-note secret key (make one with sworn keygen)", path)
	}
	return signer, nil
}

// NewCosigner reads a witness's secret key file and returns a
// cosignature/v1 signer.
func NewCosigner(path string) (note.Signer, error) {
	s, err := ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := fnote.NewSignerForCosignatureV1(s)
	if err != nil {
		return nil, fmt.Errorf("key file %s is not a witness secret key (make one with sworn keygen --kind witness)", path)
	}
	return signer, nil
}

// ErrSecretKey is returned (wrapped) when a secret key is given where a
// verifier (public) key is expected. The key itself is never echoed.
var ErrSecretKey = errors.New("this is a SECRET key, not a verifier key: give the .pub file, and keep the .key file private")

// ParseVerifier parses a signed-note verifier key (log or publisher).
func ParseVerifier(vkey string) (note.Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	if isSecretKey(vkey) {
		return nil, ErrSecretKey
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%s is not a signed-note Ed25519 verifier key: %v", describeKey(vkey), err)
	}
	return v, nil
}

// ParseWitnessVerifier parses a witness's cosignature/v1 verifier key.
func ParseWitnessVerifier(vkey string) (note.Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	if isSecretKey(vkey) {
		return nil, ErrSecretKey
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("%s is not a witness cosignature verifier key: %v", describeKey(vkey), err)
	}
	return v, nil
}

func isSecretKey(s string) bool { return strings.HasPrefix(strings.ToUpper(s), "PRIVATE+KEY+") }

// describeKey names a key in an error without its key material: only the
// name before the first '+', when it looks like one.
func describeKey(s string) string {
	name, _, ok := strings.Cut(s, "+")
	if !ok || len(name) > 128 || strings.ContainsAny(name, " \t\n") {
		return fmt.Sprintf("the given key (%d bytes)", len(s))
	}
	return fmt.Sprintf("key %q", name+"+…")
}

// ParseVerifierList parses a file of verifier keys, one per line; blank
// lines and lines starting with # are ignored.
func ParseVerifierList(data []byte) ([]note.Verifier, error) {
	var out []note.Verifier
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := ParseVerifier(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("no keys listed")
	}
	return out, nil
}

func cosignerFromString(skey string) (note.Signer, error) {
	return fnote.NewSignerForCosignatureV1(skey)
}

// NewCosignerFromKey returns a cosignature/v1 signer for a witness's
// secret key string.
func NewCosignerFromKey(skey string) (note.Signer, error) {
	return fnote.NewSignerForCosignatureV1(skey)
}
