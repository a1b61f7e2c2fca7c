package kbs_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/kbs"
	"github.com/sworn-dev/sworn/policy"
	"github.com/sworn-dev/sworn/receipt"
	"github.com/sworn-dev/sworn/tlog"
)

// TestAuditor: each way a logged key release can be wrong is a finding,
// and so is each release only the log or only the database holds.
func TestAuditor(t *testing.T) {
	model := kbs.FormatDigest([32]byte{1})
	other := kbs.FormatDigest([32]byte{2})
	meas := bytes.Repeat([]byte{0xaa}, 48)
	pol := &policy.Policy{SNP: policy.SNP{Measurements: []policy.HexBytes{meas}}}
	rel := func(version string, models ...string) *tlog.Record {
		r := &tlog.Release{ID: "node", Version: version}
		for _, m := range models {
			r.Models = append(r.Models, tlog.Component{Name: "m", Digest: m})
		}
		return &tlog.Record{Type: tlog.TypeRelease, Release: r}
	}
	key := func(m, release string, idx uint64, measurement []byte, bundle byte) *tlog.Record {
		return &tlog.Record{Type: tlog.TypeKeyRelease, KeyRelease: &tlog.KeyRelease{Model: m, Release: release, ReleaseIndex: idx,
			Measurement: measurement, Broker: "kbs", BundleDigest: kbs.FormatDigest([32]byte{bundle}), NodeKey: []byte{bundle}}}
	}
	log := []*tlog.Record{
		rel("1", model),                       // 0
		rel("2", other),                       // 1
		key(model, "node@1", 0, meas, 3),      // 2: fine
		key(model, "node@2", 1, meas, 4),      // 3: release 2 may not serve model
		key(model, "node@9", 0, meas, 5),      // 4: not the release at entry 0
		key(model, "node@1", 0, []byte{1}, 6), // 5: measurement not allowed
		{Type: tlog.TypeRevocation, Revocation: &tlog.Revocation{ReleaseID: "node", Version: "1"}}, // 6
		key(model, "node@1", 0, meas, 7), // 7: revoked at 6
		key(model, "node@1", 0, meas, 8), // 8: revoked too, and the database lacks it
	}
	a := kbs.NewAuditor(pol)
	want := map[uint64]string{3: "may not serve", 4: "not the release at entry 0", 5: "policy does not allow", 7: "revoked at entry 6", 8: "revoked at entry 6"}
	for i, r := range log {
		fs := a.Add(uint64(i), r)
		if w, ok := want[uint64(i)]; ok != (len(fs) == 1) || (ok && !strings.Contains(fs[0].Problem, w)) {
			t.Errorf("entry %d: findings %v, want %q", i, fs, w)
		}
	}
	db := func(idx uint64, bundle byte) kbs.Release {
		return kbs.Release{LogIndex: idx, Model: [32]byte{1}, Bundle: [32]byte{bundle}, NodeKey: []byte{bundle}}
	}
	dbRels := []kbs.Release{db(2, 3), db(3, 4), db(4, 5), db(5, 6), db(7, 9), db(20, 1)}
	fs := a.Compare("kbs", dbRels)
	var got []string
	for _, f := range fs {
		got = append(got, f.String())
	}
	all := strings.Join(got, "\n")
	for _, w := range []string{
		"entry 7: the log's key release", // the database tells entry 7 differently
		"entry 8: the log holds a key release of model " + model + " by broker kbs that the broker's database lacks",
		"entry 20: the broker's database records a release of model " + model + " at this index, but the log holds no key release",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("no finding %q in\n%s", w, all)
		}
	}
	if len(fs) != 5+3 {
		t.Errorf("%d findings:\n%s", len(fs), all)
	}
	if n := a.KeyReleases("kbs"); n != 6 {
		t.Errorf("%d key releases", n)
	}
}

// TestAuditStack: on sworn up, whose two nodes got the model key through
// its broker and serve it, an answer's receipt names the model's digest;
// the log holds one witnessed key release per node, the broker's database
// the same two, and the audit finds nothing; a release the database
// records that the log lacks is found.
func TestAuditStack(t *testing.T) {
	st := startStack(t)
	hc := &http.Client{Transport: st.Transport()}
	resp, err := hc.Post("https://api.example/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+st.Model.Name+`","messages":[{"role":"user","content":"which model?"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	k, _, err := (&client.ReceiptStore{Dir: st.Receipts}).Get(resp.Trailer.Get("Sworn-Receipt"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := receipt.Parse(k.Receipt)
	if err != nil || r.Payload.Model != st.Model.Digest {
		t.Fatalf("the receipt names model %x, not the sealed model %x (%v)", r.Payload.Model, st.Model.Digest, err)
	}

	a, _, err := kbs.ReadLog(t.Context(), st.LogURL, st.policy, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := kbs.OpenStore(t.Context(), "sqlite:"+st.dir+"/kbs.db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rels, err := store.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fs := a.Compare("sworn-up-kbs", rels); len(fs) != 0 || len(rels) != 2 || a.KeyReleases("sworn-up-kbs") != 2 {
		t.Fatalf("%d releases in the database, %d in the log; findings %v", len(rels), a.KeyReleases("sworn-up-kbs"), fs)
	}
	unlogged := append(rels, kbs.Release{LogIndex: 99, Model: st.Model.Digest, At: time.Now()})
	if fs := a.Compare("sworn-up-kbs", unlogged); len(fs) != 1 || !strings.Contains(fs[0].Problem, "given out unlogged") {
		t.Fatalf("an unlogged release: %v", fs)
	}
}
