package policy

import (
	"fmt"
	"regexp"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Log is the "log:" section of a policy: which release log to trust and how
// much witnessing its checkpoints need.
type Log struct {
	// Origin is the log's origin line (its checkpoint key name).
	Origin string `yaml:"origin"`
	// Key is the log's signed-note verifier key.
	Key string `yaml:"key"`
	// Witnesses are the witnesses' cosignature/v1 verifier keys.
	Witnesses []string `yaml:"witnesses"`
	// Quorum is how many of Witnesses must have cosigned a checkpoint. Zero
	// accepts an unwitnessed checkpoint, and the result is then at best a
	// warning.
	Quorum int `yaml:"quorum"`
	// MaxCheckpointAge is the oldest witness cosignature counted toward the
	// quorum. Zero means no limit.
	MaxCheckpointAge Duration `yaml:"max_checkpoint_age"`
	// Publishers are the signed-note verifier keys of the publishers whose
	// release records are accepted. Empty: record signatures are not
	// checked, and the log's own publisher allow-list is trusted.
	Publishers []string `yaml:"publishers"`
	// Revoked lists releases ("id@version") known to be revoked, in
	// addition to revocations proven from the log.
	Revoked []string `yaml:"revoked"`
}

var releaseKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+:/-]{0,127}@[A-Za-z0-9][A-Za-z0-9._+:/-]{0,127}$`)

func (p *Policy) checkLog() error {
	if p.Log == nil {
		return nil
	}
	if err := p.Log.Check(); err != nil {
		return fmt.Errorf("log.%v", err)
	}
	return nil
}

// Check validates a log section; its errors name the field without the
// "log." prefix.
func (l *Log) Check() error {
	if l.Origin == "" {
		return fmt.Errorf("origin is missing: give the log's origin (its key name)")
	}
	if err := notSecret("key", l.Key); err != nil {
		return err
	}
	v, err := note.NewVerifier(strings.TrimSpace(l.Key))
	if err != nil {
		return fmt.Errorf("key is not a signed-note verifier key (the .pub file from sworn keygen --kind log): %v", err)
	}
	if v.Name() != l.Origin {
		return fmt.Errorf("key is named %q but origin is %q; they must be the same", v.Name(), l.Origin)
	}
	seen := map[string]bool{}
	for i, w := range l.Witnesses {
		if err := notSecret(fmt.Sprintf("witnesses[%d]", i), w); err != nil {
			return err
		}
		wv, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(w))
		if err != nil {
			return fmt.Errorf("witnesses[%d] is not a witness verifier key (the .pub file from sworn keygen --kind witness): %v", i, err)
		}
		id := fmt.Sprintf("%s+%08x", wv.Name(), wv.KeyHash())
		if seen[id] {
			return fmt.Errorf("witnesses[%d] (%s) is listed twice", i, wv.Name())
		}
		seen[id] = true
	}
	if l.Quorum < 0 || l.Quorum > len(l.Witnesses) {
		return fmt.Errorf("quorum is %d; it must be 0 to the number of witnesses (%d)", l.Quorum, len(l.Witnesses))
	}
	if l.Publishers != nil && len(l.Publishers) == 0 {
		return fmt.Errorf("publishers is an empty list, which would accept no release; list the publishers' .pub keys, or leave publishers out to trust the log's own allow-list")
	}
	for i, k := range l.Publishers {
		if err := notSecret(fmt.Sprintf("publishers[%d]", i), k); err != nil {
			return err
		}
		if _, err := note.NewVerifier(strings.TrimSpace(k)); err != nil {
			return fmt.Errorf("publishers[%d] is not a signed-note verifier key (the .pub file from sworn keygen --kind publisher): %v", i, err)
		}
	}
	for i, r := range l.Revoked {
		if !releaseKeyRE.MatchString(r) {
			return fmt.Errorf("revoked[%d] %q is not of the form id@version", i, r)
		}
	}
	return nil
}

// notSecret refuses a secret key given where a verifier key belongs,
// without repeating it.
func notSecret(field, key string) error {
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(key)), "PRIVATE+KEY+") {
		return fmt.Errorf("%s is a SECRET key, not a verifier key: give the .pub file, and keep the .key file private", field)
	}
	return nil
}
