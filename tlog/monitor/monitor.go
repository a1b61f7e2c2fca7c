// Package monitor tails a release log: it verifies each new checkpoint,
// checks that it is consistent with the last one seen (a split view is an
// error), checks every new entry against the tree, and reports each
// release, revocation and key release as it appears. Each new entry is
// proven included in the verified checkpoint, so a log that serves entries
// or tiles its signed tree does not commit to is caught.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	"github.com/sworn-dev/sworn/internal/atomicfile"
	"github.com/sworn-dev/sworn/tlog"
)

// Monitor follows one log.
type Monitor struct {
	fetcher  *client.HTTPFetcher
	verifier *tlog.Verifier
	state    *tlog.State
	dir      string
	out      io.Writer
	next     uint64

	// Records, when set, is called with each new entry whose record
	// verified, in log order, after it is reported.
	Records func(index uint64, r *tlog.Record)
}

// ErrInconsistent wraps every failure that shows the log misbehaving.
var ErrInconsistent = errors.New("log is inconsistent")

// New makes a monitor of the log at logURL, keeping its state in dir.
func New(logURL string, v *tlog.Verifier, dir string, out io.Writer, hc *http.Client) (*Monitor, error) {
	u, err := url.Parse(logURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("log URL %q must be an http:// or https:// URL", logURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	// A hostile log must not exhaust the memory of its monitor.
	hc = tlog.BoundedClient(hc)
	f, err := client.NewHTTPFetcher(u, hc)
	if err != nil {
		return nil, err
	}
	st, err := tlog.OpenState(dir)
	if err != nil {
		return nil, err
	}
	m := &Monitor{fetcher: f, verifier: v, state: st, dir: dir, out: out}
	if b, err := os.ReadFile(m.nextPath()); err == nil {
		if m.next, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return nil, fmt.Errorf("monitor state %s is corrupt: %v", m.nextPath(), err)
		}
	}
	return m, nil
}

func (m *Monitor) nextPath() string { return filepath.Join(m.dir, "monitor-next") }

// Next returns the index of the next entry to report.
func (m *Monitor) Next() uint64 { return m.next }

// Poll fetches the latest checkpoint, checks it and reports new entries.
func (m *Monitor) Poll(ctx context.Context) error {
	raw, err := m.fetcher.ReadCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("fetch checkpoint: %v", err)
	}
	cp, err := m.verifier.VerifyCheckpoint(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	if _, err := m.verifier.CheckQuorum(cp, time.Now()); err != nil {
		fmt.Fprintf(m.out, "WARNING checkpoint %d: %v\n", cp.Size, err)
	}
	prove := func(small, large uint64) ([][]byte, error) {
		pb, err := client.NewProofBuilder(ctx, large, m.fetcher.ReadTile)
		if err != nil {
			return nil, err
		}
		return pb.ConsistencyProof(ctx, small, large)
	}
	if _, err := m.state.Update(cp, prove); err != nil {
		var sv *tlog.SplitViewError
		if errors.As(err, &sv) {
			return fmt.Errorf("%w: %v", ErrInconsistent, err)
		}
		return err
	}
	if cp.Size < m.next {
		// An older checkpoint (a cache or replica behind), proven
		// consistent with the latest one above: nothing new.
		return nil
	}
	if m.next == cp.Size {
		return nil
	}
	// Every new entry is proven included in the verified checkpoint: the
	// tiles and entry bundles the log serves are not trusted by themselves.
	pb, err := client.NewProofBuilder(ctx, cp.Size, m.fetcher.ReadTile)
	if err != nil {
		return fmt.Errorf("fetch tiles for checkpoint %d: %v", cp.Size, err)
	}
	for m.next < cp.Size {
		bi := m.next / layout.EntryBundleWidth
		b, err := client.GetEntryBundle(ctx, m.fetcher.ReadEntryBundle, bi, cp.Size)
		if err != nil {
			return fmt.Errorf("fetch entry bundle %d: %v", bi, err)
		}
		first := bi * layout.EntryBundleWidth
		if want := min(layout.EntryBundleWidth, cp.Size-first); uint64(len(b.Entries)) != want {
			return fmt.Errorf("%w: entry bundle %d has %d entries; the checkpoint of size %d needs %d", ErrInconsistent, bi, len(b.Entries), cp.Size, want)
		}
		for j, e := range b.Entries {
			idx := first + uint64(j)
			if idx < m.next {
				continue
			}
			p, err := pb.InclusionProof(ctx, idx)
			if err != nil {
				return fmt.Errorf("inclusion proof of entry %d: %v", idx, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, rfc6962.DefaultHasher.HashLeaf(e), p, cp.Hash[:]); err != nil {
				return fmt.Errorf("%w: entry %d is not in the tree of the verified checkpoint (size %d): %v", ErrInconsistent, idx, cp.Size, err)
			}
			m.report(idx, e)
		}
		m.next = first + uint64(len(b.Entries))
		if err := atomicfile.Write(m.nextPath(), []byte(strconv.FormatUint(m.next, 10)+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (m *Monitor) report(idx uint64, leaf []byte) {
	r, err := m.verifier.VerifyRecord(leaf)
	if err != nil {
		fmt.Fprintf(m.out, "ALERT entry %d: %v\n", idx, err)
		return
	}
	switch r.Type {
	case tlog.TypeRelease:
		fmt.Fprintf(m.out, "entry %d: release %s by %s, valid %s to %s\n", idx, r.Release.Key(), r.Publisher,
			r.Release.Created.UTC().Format(time.RFC3339), r.Release.NotAfter.UTC().Format(time.RFC3339))
	case tlog.TypeRevocation:
		fmt.Fprintf(m.out, "entry %d: REVOCATION of %s@%s by %s: %q\n", idx, r.Revocation.ReleaseID, r.Revocation.Version, r.Publisher, r.Revocation.Reason)
	case tlog.TypeKeyRelease:
		fmt.Fprintf(m.out, "entry %d: key release of model %s to bundle %s by %s\n", idx, r.KeyRelease.Model, r.KeyRelease.BundleDigest, r.KeyRelease.Broker)
	}
	if m.Records != nil {
		m.Records(idx, r)
	}
}
