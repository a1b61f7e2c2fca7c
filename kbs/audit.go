package kbs

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"

	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/tlog"
	"github.com/sworn-dev/sworn/tlog/monitor"
)

// Finding is one disagreement an audit found.
type Finding struct {
	// Index is the log index the finding is about.
	Index uint64
	// Problem says what is wrong, in words.
	Problem string
}

func (f Finding) String() string { return fmt.Sprintf("entry %d: %s", f.Index, f.Problem) }

// An Auditor reads a release log's verified records in order (from index
// 0) and checks every key release in it: that the release it names is in
// the log, was not revoked before the key went out, may serve the model,
// and that the node's launch measurement is one the policy allows.
// Compare then holds the log's key releases against a broker's database.
type Auditor struct {
	pol      *policy.Policy
	from     uint64                   // the first index read: releases before it are not known
	releases map[uint64]*tlog.Release // by log index
	revoked  map[string]uint64        // "id@version" → index of its revocation
	keys     map[uint64]*tlog.KeyRelease
	findings []Finding
}

// NewAuditor returns an auditor that checks key releases against pol (nil:
// only against the log itself).
func NewAuditor(pol *policy.Policy) *Auditor { return NewAuditorFrom(pol, 0) }

// NewAuditorFrom returns an auditor that reads the log from index from on
// (a monitor resuming): a key release naming a release before from is
// checked against the policy only, since that release and any revocation
// of it were not read.
func NewAuditorFrom(pol *policy.Policy, from uint64) *Auditor {
	return &Auditor{pol: pol, from: from, releases: map[uint64]*tlog.Release{}, revoked: map[string]uint64{}, keys: map[uint64]*tlog.KeyRelease{}}
}

// Add takes the next verified record of the log, at index, and returns
// what is wrong with it (nothing for a release or revocation).
func (a *Auditor) Add(index uint64, r *tlog.Record) []Finding {
	var out []Finding
	bad := func(format string, args ...any) {
		out = append(out, Finding{index, fmt.Sprintf(format, args...)})
	}
	switch r.Type {
	case tlog.TypeRelease:
		a.releases[index] = r.Release
	case tlog.TypeRevocation:
		k := r.Revocation.ReleaseID + "@" + r.Revocation.Version
		if _, ok := a.revoked[k]; !ok {
			a.revoked[k] = index
		}
	case tlog.TypeKeyRelease:
		kr := r.KeyRelease
		a.keys[index] = kr
		rel, ok := a.releases[kr.ReleaseIndex]
		switch {
		case kr.Release != "" && kr.ReleaseIndex < a.from:
			// Read before this auditor started: not known here.
		case kr.Release == "":
			bad("broker %s released model %s to a node whose release the record does not name", kr.Broker, kr.Model)
		case !ok || rel.Key() != kr.Release:
			bad("broker %s released model %s to a node of release %s, which is not the release at entry %d of this log", kr.Broker, kr.Model, kr.Release, kr.ReleaseIndex)
		case !slices.ContainsFunc(rel.Models, func(c tlog.Component) bool { return c.Digest == kr.Model }):
			bad("broker %s released model %s to a node of release %s, which may not serve it", kr.Broker, kr.Model, kr.Release)
		}
		if at, ok := a.revoked[kr.Release]; ok {
			bad("broker %s released model %s to a node of release %s, revoked at entry %d", kr.Broker, kr.Model, kr.Release, at)
		}
		if a.pol != nil && len(a.pol.SNP.Measurements) > 0 && !slices.ContainsFunc(a.pol.SNP.Measurements, func(m policy.HexBytes) bool { return bytes.Equal(m, kr.Measurement) }) {
			bad("broker %s released model %s to a node with launch measurement %s, which the policy does not allow", kr.Broker, kr.Model, shortHex(kr.Measurement))
		}
	}
	a.findings = append(a.findings, out...)
	return out
}

// Compare holds the log's key releases by broker id against the releases
// the broker's database records (Store.Releases), and returns every
// finding: those of Add, then each release only one side has or that the
// two sides tell differently. A release the database lacks may be one cut
// off after its log append, before the key went out; a release the log
// lacks is a key given out unlogged.
func (a *Auditor) Compare(id string, db []Release) []Finding {
	out := slices.Clone(a.findings)
	seen := map[uint64]bool{}
	for _, r := range db {
		seen[r.LogIndex] = true
		kr, ok := a.keys[r.LogIndex]
		switch {
		case !ok || kr.Broker != id:
			out = append(out, Finding{r.LogIndex, fmt.Sprintf("the broker's database records a release of model %s at this index, but the log holds no key release of broker %s there: a key was given out unlogged", FormatDigest(r.Model), id)})
		case kr.Model != FormatDigest(r.Model) || kr.BundleDigest != "sha256:"+hex.EncodeToString(r.Bundle[:]) || !bytes.Equal(kr.NodeKey, r.NodeKey):
			out = append(out, Finding{r.LogIndex, fmt.Sprintf("the log's key release (model %s, bundle %s) is not the one the broker's database records (model %s, bundle sha256:%x)", kr.Model, kr.BundleDigest, FormatDigest(r.Model), r.Bundle)})
		}
	}
	var idx []uint64
	for i, kr := range a.keys {
		if kr.Broker == id && !seen[i] {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		out = append(out, Finding{i, fmt.Sprintf("the log holds a key release of model %s by broker %s that the broker's database lacks (a release cut off after its log append, or a database that lost it)", a.keys[i].Model, id)})
	}
	slices.SortStableFunc(out, func(x, y Finding) int { return cmp.Compare(x.Index, y.Index) })
	return out
}

// ReadLog reads the whole log at logURL, verified as a monitor does under
// pol's log section (each checkpoint, each entry proven in its tree), into
// a new Auditor under pol. It returns the auditor and the log's size.
func ReadLog(ctx context.Context, logURL string, pol *policy.Policy, hc *http.Client) (*Auditor, uint64, error) {
	v, err := tlog.NewVerifier(pol.Log)
	if err != nil {
		return nil, 0, fmt.Errorf("the policy's log section: %v", err)
	}
	state, err := os.MkdirTemp("", "sworn-kbs-audit-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(state)
	m, err := monitor.New(logURL, v, state, io.Discard, hc)
	if err != nil {
		return nil, 0, err
	}
	a := NewAuditor(pol)
	m.Records = func(i uint64, r *tlog.Record) { a.Add(i, r) }
	if err := m.Poll(ctx); err != nil {
		return nil, 0, fmt.Errorf("reading the log: %v", err)
	}
	return a, m.Next(), nil
}

// KeyReleases returns how many key releases of broker id the log holds.
func (a *Auditor) KeyReleases(id string) int {
	n := 0
	for _, kr := range a.keys {
		if kr.Broker == id {
			n++
		}
	}
	return n
}

func shortHex(b []byte) string {
	if len(b) == 0 {
		return "(none)"
	}
	if len(b) > 8 {
		return hex.EncodeToString(b[:8]) + "…"
	}
	return hex.EncodeToString(b)
}
