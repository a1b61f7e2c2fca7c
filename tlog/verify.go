package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sworn-dev/sworn/policy"
)

// The release.* step IDs.
const (
	StepSignature   = "release.signature"
	StepInclusion   = "release.inclusion"
	StepWitnesses   = "release.witnesses"
	StepMatch       = "release.match"
	StepRevocation  = "release.revocation"
	StepConsistency = "release.consistency"
)

// MaxClockSkew is how far in the future a witness timestamp may be.
const MaxClockSkew = 5 * time.Minute

// StepError is a verification failure attributed to a release.* step.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

func stepErr(step string, format string, args ...any) error {
	return &StepError{Step: step, Err: fmt.Errorf(format, args...)}
}

// Checkpoint is a checkpoint whose log signature has been verified.
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   [sha256.Size]byte
	// Raw is the signed note, with its cosignatures.
	Raw []byte
	// Cosignatures are the verified cosignatures of known witnesses.
	Cosignatures []Cosignature
	// Invalid lists known witnesses whose cosignature on this checkpoint
	// does not verify (or appears twice); CheckQuorum fails on any.
	Invalid []string
}

// Cosignature is a verified witness cosignature.
type Cosignature struct {
	// Witness is the witness key's name.
	Witness string
	// Time is the witness's timestamp.
	Time time.Time
}

// Verifier verifies checkpoints and proofs offline against a pinned log
// key, witness keys and quorum. It caches verified checkpoints, so that
// proofs against a checkpoint already seen cost only their hashing. It is
// safe for concurrent use.
type Verifier struct {
	origin     string
	log        note.Verifier
	witnesses  []note.Verifier
	quorum     int
	maxAge     time.Duration
	publishers []note.Verifier
	revoked    map[string]bool

	mu    sync.Mutex
	cache map[[sha256.Size]byte]*Checkpoint
}

const maxCached = 256

// NewVerifier makes a Verifier from a policy's log section.
func NewVerifier(p *policy.Log) (*Verifier, error) {
	if p == nil {
		return nil, errors.New("the policy has no log: section, so release proofs cannot be verified")
	}
	lv, err := ParseVerifier(p.Key)
	if err != nil {
		return nil, fmt.Errorf("log.key: %v", err)
	}
	if lv.Name() != p.Origin {
		return nil, fmt.Errorf("log.key is named %q but log.origin is %q", lv.Name(), p.Origin)
	}
	v := &Verifier{origin: p.Origin, log: lv, quorum: p.Quorum, maxAge: time.Duration(p.MaxCheckpointAge),
		revoked: map[string]bool{}, cache: map[[sha256.Size]byte]*Checkpoint{}}
	for i, k := range p.Witnesses {
		w, err := ParseWitnessVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("log.witnesses[%d]: %v", i, err)
		}
		v.witnesses = append(v.witnesses, w)
	}
	if v.quorum < 0 || v.quorum > len(v.witnesses) {
		return nil, fmt.Errorf("log.quorum %d is not between 0 and %d", v.quorum, len(v.witnesses))
	}
	for i, k := range p.Publishers {
		pv, err := ParseVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("log.publishers[%d]: %v", i, err)
		}
		v.publishers = append(v.publishers, pv)
	}
	for _, r := range p.Revoked {
		v.revoked[r] = true
	}
	return v, nil
}

// Origin returns the pinned log origin.
func (v *Verifier) Origin() string { return v.origin }

// Quorum returns the number of witness cosignatures required.
func (v *Verifier) Quorum() int { return v.quorum }

// Publishers returns the allowed publisher keys.
func (v *Verifier) Publishers() []note.Verifier { return v.publishers }

// VerifyCheckpoint checks the log's signature on a checkpoint and returns
// it with the cosignatures of the known witnesses. It does not check the
// quorum; see CheckQuorum. Failures are StepErrors of release.inclusion.
func (v *Verifier) VerifyCheckpoint(raw []byte) (*Checkpoint, error) {
	if len(raw) > maxCheckpointSize {
		return nil, stepErr(StepInclusion, "checkpoint is %d bytes; the limit is %d", len(raw), maxCheckpointSize)
	}
	key := sha256.Sum256(raw)
	v.mu.Lock()
	cp, ok := v.cache[key]
	v.mu.Unlock()
	if ok {
		return cp, nil
	}
	// The log's signature first: a checkpoint it did not sign is not this
	// log's. Cosignatures are then checked one by one, so that a bad one
	// is reported as a witness failure.
	c, _, n, err := log.ParseCheckpoint(raw, v.origin, v.log)
	if err != nil {
		var unk *note.UnverifiedNoteError
		if errors.As(err, &unk) || strings.Contains(err.Error(), "verifier") {
			return nil, stepErr(StepInclusion, "checkpoint is not signed by the pinned log key %s+%08x: it comes from another log or key, or was altered (%v)", v.log.Name(), v.log.KeyHash(), err)
		}
		return nil, stepErr(StepInclusion, "checkpoint does not verify against log %s: %v", v.origin, err)
	}
	if len(c.Hash) != sha256.Size {
		return nil, stepErr(StepInclusion, "checkpoint root hash is %d bytes, not 32", len(c.Hash))
	}
	cp = &Checkpoint{Origin: c.Origin, Size: c.Size, Hash: [32]byte(c.Hash), Raw: bytes.Clone(raw)}
	seen := map[string]bool{}
	for _, s := range n.UnverifiedSigs {
		for _, w := range v.witnesses {
			if s.Name != w.Name() || s.Hash != w.KeyHash() {
				continue
			}
			id := fmt.Sprintf("%s+%08x", w.Name(), w.KeyHash())
			if seen[id] {
				cp.Invalid = append(cp.Invalid, w.Name()+" (two cosignatures)")
				continue
			}
			sig, err := base64.StdEncoding.DecodeString(s.Base64)
			if err != nil || len(sig) < 4 || !w.Verify([]byte(n.Text), sig[4:]) {
				cp.Invalid = append(cp.Invalid, w.Name())
				continue
			}
			ts, err := fnote.CoSigV1Timestamp(s)
			if err != nil {
				continue
			}
			seen[id] = true
			cp.Cosignatures = append(cp.Cosignatures, Cosignature{Witness: w.Name(), Time: ts.UTC()})
		}
	}
	v.mu.Lock()
	if len(v.cache) >= maxCached {
		clear(v.cache)
	}
	v.cache[key] = cp
	v.mu.Unlock()
	return cp, nil
}

// CheckQuorum counts the checkpoint's cosignatures that are not in the
// future and not older than the policy's maximum age at time at, and fails
// (a StepError of release.witnesses) if fewer than the quorum remain.
func (v *Verifier) CheckQuorum(cp *Checkpoint, at time.Time) (int, error) {
	if len(cp.Invalid) > 0 {
		return 0, &StepError{Step: StepWitnesses, Err: fmt.Errorf("the cosignature of witness %s does not verify: the checkpoint or the cosignature was altered", strings.Join(cp.Invalid, ", "))}
	}
	n := 0
	var stale []string
	for _, c := range cp.Cosignatures {
		switch {
		case c.Time.After(at.Add(MaxClockSkew)):
			stale = append(stale, fmt.Sprintf("%s signed in the future (%s)", c.Witness, c.Time.Format(time.RFC3339)))
		case v.maxAge > 0 && at.Sub(c.Time) > v.maxAge:
			stale = append(stale, fmt.Sprintf("%s cosigned at %s, older than %s", c.Witness, c.Time.Format(time.RFC3339), v.maxAge))
		default:
			n++
		}
	}
	if n < v.quorum {
		msg := fmt.Sprintf("checkpoint of size %d has %d valid cosignature(s) of the %d required from the %d pinned witnesses", cp.Size, n, v.quorum, len(v.witnesses))
		if len(stale) > 0 {
			msg += " (not counted: " + strings.Join(stale, "; ") + ")"
		}
		return n, &StepError{Step: StepWitnesses, Err: errors.New(msg + "; get a freshly cosigned proof from the log")}
	}
	return n, nil
}

// hasher is RFC 6962's SHA-256 tree hashing, as rfc6962.DefaultHasher
// computes it, without a hash.Hash allocation per node: inclusion proofs
// are the hot path of proof verification (TestHasherMatchesRFC6962).
var hasher rfc6962Hasher

type rfc6962Hasher struct{}

func (rfc6962Hasher) EmptyRoot() []byte { return rfc6962.DefaultHasher.EmptyRoot() }
func (rfc6962Hasher) Size() int         { return sha256.Size }

func (rfc6962Hasher) HashLeaf(leaf []byte) []byte {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	h.Write(leaf)
	return h.Sum(nil)
}

func (rfc6962Hasher) HashChildren(l, r []byte) []byte {
	var buf [1 + 2*sha256.Size]byte
	if len(l) != sha256.Size || len(r) != sha256.Size {
		return rfc6962.DefaultHasher.HashChildren(l, r)
	}
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l)
	copy(buf[1+sha256.Size:], r)
	sum := sha256.Sum256(buf[:])
	return sum[:]
}

// VerifyInclusion checks that leaf is at index in the checkpoint's tree.
// Failures are StepErrors of release.inclusion.
func VerifyInclusion(cp *Checkpoint, index uint64, hashes [][sha256.Size]byte, leaf []byte) error {
	if index >= cp.Size {
		return stepErr(StepInclusion, "entry index %d is not in the checkpoint's tree of size %d", index, cp.Size)
	}
	p := make([][]byte, len(hashes))
	for i := range hashes {
		p[i] = hashes[i][:]
	}
	lh := hasher.HashLeaf(leaf)
	if err := proof.VerifyInclusion(hasher, index, cp.Size, lh, p, cp.Hash[:]); err != nil {
		return stepErr(StepInclusion, "inclusion proof of entry %d does not lead to the checkpoint's root (size %d): the record, the proof or the checkpoint was altered (%v)", index, cp.Size, err)
	}
	return nil
}

// VerifyProof checks a parsed proof's checkpoint (log signature and witness
// quorum at time at) and the inclusion of its record. It does not check
// the record itself; see VerifyRecord.
func (v *Verifier) VerifyProof(p *Proof, at time.Time) (*Checkpoint, error) {
	cp, err := v.VerifyCheckpoint(p.Checkpoint)
	if err != nil {
		return nil, err
	}
	if err := VerifyInclusion(cp, p.Index, p.Hashes, p.Record); err != nil {
		return nil, err
	}
	if _, err := v.CheckQuorum(cp, at); err != nil {
		return cp, err
	}
	return cp, nil
}

// VerifyRecord parses a log entry and checks its publisher's signature
// (when publisher keys are pinned).
// Failures are StepErrors of release.signature.
func (v *Verifier) VerifyRecord(leaf []byte) (*Record, error) {
	l, err := ParseSignedLeaf(leaf)
	if err != nil {
		return nil, stepErr(StepSignature, "%v", err)
	}
	if len(v.publishers) == 0 {
		return l.Record, nil
	}
	if _, err := l.VerifySignature(v.publishers); err != nil {
		return nil, stepErr(StepSignature, "%v", err)
	}
	return l.Record, nil
}
