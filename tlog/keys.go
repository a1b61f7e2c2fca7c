package tlog

import (
	"crypto/rand"
	"encoding/base64"
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
// Ed25519 signed-note key (type 0x01) for logs and publishers, a
// cosignature/v1 key (type 0x04) for witnesses, whose secret key carries
// the same type 0x04, so that no signed-note signer for logs or publishers
// accepts it. For a log, name is the log's origin.
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
		if vkey, err = fnote.VKeyToCosignatureV1(vkey); err != nil {
			return "", "", err
		}
		// PRIVATE+KEY+name+hash+base64(type||seed): type 0x04, and the
		// hash of the cosignature/v1 verifier key.
		parts := strings.SplitN(skey, "+", 5)
		vparts := strings.SplitN(vkey, "+", 3)
		raw, err := base64.StdEncoding.DecodeString(parts[4])
		if len(parts) != 5 || len(vparts) != 3 || err != nil || len(raw) == 0 {
			return "", "", errors.New("unexpected signed-note key format")
		}
		raw[0] = algCosignatureV1
		skey = strings.Join([]string{parts[0], parts[1], parts[2], vparts[1], base64.StdEncoding.EncodeToString(raw)}, "+")
	default:
		return "", "", fmt.Errorf("key kind %q is unknown (use log, witness or publisher)", kind)
	}
	return skey, vkey, nil
}

// Signed-note key types.
const (
	algEd25519       = 0x01
	algCosignatureV1 = 0x04
)

// kindMarker starts the line of a key file that says what the key is for.
const kindMarker = "# sworn key kind: "

// KeyFile returns the text of a secret key file for kind: a line naming
// the kind (so that the key is refused where another kind belongs), then
// the key.
func KeyFile(kind KeyKind, skey string) string {
	return kindMarker + string(kind) + "\n" + skey + "\n"
}

// ReadKeyFile reads a key file: one signed-note key line, after optional
// comment lines (#). A secret key file must not be readable by group or
// others.
func ReadKeyFile(path string) (string, error) {
	k, _, err := readKeyFile(path)
	return k, err
}

// readKeyFile reads a key file and the kind its marker line names ("" if
// it has none).
func readKeyFile(path string) (string, KeyKind, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", "", err
	}
	if fi.Size() > maxKeyFile {
		return "", "", fmt.Errorf("key file %s is larger than %d bytes: it is not a key", path, maxKeyFile)
	}
	buf := make([]byte, fi.Size())
	if _, err := f.ReadAt(buf, 0); err != nil && fi.Size() > 0 {
		return "", "", err
	}
	var key string
	var kind KeyKind
	lines := 0
	for _, l := range strings.Split(string(buf), "\n") {
		l = strings.TrimSpace(l)
		if k, ok := strings.CutPrefix(l, kindMarker); ok {
			switch kind = KeyKind(k); kind {
			case KindLog, KindWitness, KindPublisher:
			default:
				return "", "", fmt.Errorf("key file %s names the unknown key kind %q (want log, witness or publisher)", path, k[:min(len(k), 32)])
			}
			continue
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		key = l
		lines++
	}
	if isSecretKey(key) && fi.Mode().Perm()&0o077 != 0 {
		return "", "", fmt.Errorf("secret key file %s has mode %04o; make it readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	if lines != 1 {
		return "", "", fmt.Errorf("key file %s must hold exactly one key line", path)
	}
	return key, kind, nil
}

// readSecretKey reads a secret key file for want, refusing a key whose
// marker line or type says it is of another kind.
func readSecretKey(path string, want KeyKind) (string, error) {
	s, kind, err := readKeyFile(path)
	if err != nil {
		return "", err
	}
	if !isSecretKey(s) {
		return "", fmt.Errorf("key file %s holds a verifier key, not a secret key: give the .key file of sworn keygen --kind %s", path, want)
	}
	if kind == "" {
		kind = secretKeyType(s)
	}
	if kind != "" && kind != want {
		return "", fmt.Errorf("key file %s is a %s key, but a %s key is needed here: give the .key file of sworn keygen --kind %s", path, kind, want, want)
	}
	return s, nil
}

// secretKeyType returns the kind a secret key's type byte implies: witness
// for type 0x04, "" (log or publisher) otherwise.
func secretKeyType(skey string) KeyKind {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err == nil && len(raw) > 0 && raw[0] == algCosignatureV1 {
		return KindWitness
	}
	return ""
}

// NewSigner reads a log's or a publisher's secret key file (kind says
// which) and returns its signed-note signer. A key marked (or typed) as
// another kind is refused, naming both kinds.
func NewSigner(path string, kind KeyKind) (note.Signer, error) {
	s, err := readSecretKey(path, kind)
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(s)
	if err != nil {
		return nil, fmt.Errorf("key file %s is not a signed-note secret key (make one with sworn keygen --kind %s)", path, kind)
	}
	return signer, nil
}

// NewCosigner reads a witness's secret key file and returns a
// cosignature/v1 signer. A key marked as a log's or publisher's is refused.
func NewCosigner(path string) (note.Signer, error) {
	s, err := readSecretKey(path, KindWitness)
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

// ParseVerifier parses a signed-note verifier key (log or publisher). A
// witness's cosignature/v1 key is refused by name.
func ParseVerifier(vkey string) (note.Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	if isSecretKey(vkey) {
		return nil, ErrSecretKey
	}
	if verifierType(vkey) == algCosignatureV1 {
		return nil, fmt.Errorf("%s is a witness's cosignature/v1 verifier key (type 0x04), but a log's or publisher's key (type 0x01, from sworn keygen --kind log or publisher) is needed here", describeKey(vkey))
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%s is not a signed-note Ed25519 verifier key: %v", describeKey(vkey), err)
	}
	return v, nil
}

// ParseWitnessVerifier parses a witness's cosignature/v1 verifier key. A
// plain Ed25519 key (a log's or publisher's) is refused by name.
func ParseWitnessVerifier(vkey string) (note.Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	if isSecretKey(vkey) {
		return nil, ErrSecretKey
	}
	if verifierType(vkey) == algEd25519 {
		return nil, fmt.Errorf("%s is a plain Ed25519 verifier key (type 0x01: a log's or publisher's), but a witness's cosignature/v1 key (type 0x04, from sworn keygen --kind witness) is needed here", describeKey(vkey))
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("%s is not a witness cosignature verifier key: %v", describeKey(vkey), err)
	}
	return v, nil
}

// IsVerifierKey reports whether s is a verifier key of any kind sworn
// uses (Ed25519 type 0x01 or cosignature/v1 type 0x04), as opposed to the
// name of a file holding one.
func IsVerifierKey(s string) bool {
	s = strings.TrimSpace(s)
	if t := verifierType(s); t != algEd25519 && t != algCosignatureV1 {
		return false
	}
	_, err := fnote.NewVerifierForCosignatureV1(s)
	return err == nil
}

// verifierType returns the type byte of a verifier key name+hash+base64,
// or 0.
func verifierType(vkey string) byte {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return 0
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) == 0 {
		return 0
	}
	return raw[0]
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

// CheckWitnessPolicyKeys checks that every witness line of a witness
// policy (Sigsum / tlog-policy format: "witness NAME VKEY [URL]") names a
// witness's cosignature/v1 key, not a log's or publisher's.
func CheckWitnessPolicyKeys(data []byte) error {
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "witness" {
			continue
		}
		if _, err := ParseWitnessVerifier(f[2]); err != nil {
			return fmt.Errorf("line %d (witness %s): %v", i+1, f[1][:min(len(f[1]), 64)], err)
		}
	}
	return nil
}
