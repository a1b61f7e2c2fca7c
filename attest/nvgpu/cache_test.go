package nvgpu

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
)

// cachedSetup returns the initial 545 evidence (both RIMs), decoded, and a
// verifier whose cache already holds its device chain and both RIMs.
func cachedSetup(t *testing.T) (*Evidence, *Verifier) {
	t.Helper()
	body := vectorEvidence(t, "nvtrust-initial-hopper-545", "attestationReport.txt", "gpuAkCertChain.txt", rim545Driver, rim545VBIOS)
	ev, err := ParseEvidence(body)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := hex.DecodeString(nonce545)
	v := NewVerifier(NewCache(0)).WithNonce(n)
	if s := appraise(t, v, ev, at2024); s.Verdict != attest.Affirming {
		dump(t, s)
		t.Fatalf("verdict %s", s.Verdict)
	}
	if whole(v.cache) != 3 {
		t.Fatalf("cache holds %d entries; want the chain and two RIMs", whole(v.cache))
	}
	return ev, v
}

func appraise(t *testing.T, v *Verifier, ev *Evidence, at time.Time) *attest.Section {
	t.Helper()
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, "nvgpu:\n  skip_revocation: true\n")
	return attest.VerifyEntry(context.Background(), v, attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}, at, pol, nil).Devices["gpu0"]
}

// cloneEvidence copies every byte string, so that edits touch one copy.
func cloneEvidence(ev *Evidence) *Evidence {
	c := &Evidence{Report: bytes.Clone(ev.Report)}
	for _, b := range ev.Certs {
		c.Certs = append(c.Certs, bytes.Clone(b))
	}
	for _, b := range ev.RIMs {
		c.RIMs = append(c.RIMs, bytes.Clone(b))
	}
	for _, b := range ev.OCSP {
		c.OCSP = append(c.OCSP, bytes.Clone(b))
	}
	return c
}

// TestCacheOneByteChange: with the chain and both RIMs cached, a copy of
// the evidence with one byte changed in a certificate or a RIM is verified
// again, and fails, instead of being answered from the cache; the
// unchanged evidence is still a hit; nothing that failed is cached.
func TestCacheOneByteChange(t *testing.T) {
	ev, v := cachedSetup(t)

	// Each certificate of the device chain, its last byte (inside the
	// signature, so it still parses) and a byte in the middle. The root
	// is pinned by its key, so its own signature is not checked: a change
	// there verifies afresh and passes, and is cached as a new entry.
	n, _ := hex.DecodeString(nonce545)
	for i := range ev.Certs {
		for _, pos := range []int{len(ev.Certs[i]) - 1, len(ev.Certs[i]) / 2} {
			e := cloneEvidence(ev)
			e.Certs[i][pos] ^= 0x01
			before := whole(v.cache)
			s := appraise(t, v, e, at2024)
			fresh := appraise(t, NewVerifier(nil).WithNonce(n), e, at2024)
			got := stepStatus(s, "gpu.chain")
			switch {
			case got != stepStatus(fresh, "gpu.chain"):
				t.Fatalf("certificate %d byte %d changed: chain step %s from the cache, %s fresh", i, pos, got, stepStatus(fresh, "gpu.chain"))
			case i == len(ev.Certs)-1 && pos == len(ev.Certs[i])-1:
				if got != attest.Pass || whole(v.cache) != before+1 {
					t.Fatalf("root signature byte changed: chain step %s, cache %d → %d entries; want a fresh pass, cached anew", got, before, whole(v.cache))
				}
			case got != attest.Fail || s.Verdict == attest.Affirming:
				dump(t, s)
				t.Fatalf("certificate %d byte %d changed, and the chain step is %s", i, pos, got)
			}
		}
	}
	base := whole(v.cache)

	// Each RIM: one hex digit of a reference hash (the XML still parses,
	// the signed digest no longer matches), and a certificate in KeyInfo.
	steps := map[int]string{0: "gpu.rim.driver", 1: "gpu.rim.vbios"}
	for i, doc := range ev.RIMs {
		at := bytes.Index(doc, []byte(`Hash0="`))
		if at < 0 {
			t.Fatalf("RIM %d has no Hash0", i)
		}
		at += len(`Hash0="`)
		e := cloneEvidence(ev)
		if e.RIMs[i][at] == '0' {
			e.RIMs[i][at] = '1'
		} else {
			e.RIMs[i][at] = '0'
		}
		s := appraise(t, v, e, at2024)
		if st := s.Step(steps[i]); st == nil || st.Status != attest.Fail || !bytes.Contains([]byte(st.Detail), []byte("edited after signing")) {
			dump(t, s)
			t.Fatalf("RIM %d hash digit changed and not re-verified", i)
		}

		// The signer certificate in KeyInfo: a base64 letter near the end
		// of its text, which is in its signature, so it still parses but
		// no longer verifies.
		kc := bytes.Index(doc, []byte("X509Certificate>"))
		end := kc + bytes.Index(doc[kc:], []byte("</"))
		if kc < 0 || end < kc {
			t.Fatalf("RIM %d has no X509Certificate", i)
		}
		pos := end - 8
		for !isLetter(doc[pos]) {
			pos--
		}
		e = cloneEvidence(ev)
		if e.RIMs[i][pos] == 'A' {
			e.RIMs[i][pos] = 'B'
		} else {
			e.RIMs[i][pos] = 'A'
		}
		s = appraise(t, v, e, at2024)
		if st := s.Step(steps[i]); st == nil || st.Status != attest.Fail || !bytes.Contains([]byte(st.Detail), []byte("signer chain")) {
			dump(t, s)
			t.Fatalf("RIM %d KeyInfo certificate byte changed and not re-verified", i)
		}
	}

	if whole(v.cache) != base {
		t.Errorf("cache holds %d entries after failures, not %d; failed verifications must not be cached", whole(v.cache), base)
	}
	// The evidence as it was is still served, and still affirming.
	if s := appraise(t, v, ev, at2024); s.Verdict != attest.Affirming {
		dump(t, s)
		t.Errorf("unchanged evidence after the edits: %s", s.Verdict)
	}
}

// TestCacheTimeValidity: a cached chain or RIM is still checked against
// the appraisal time: outside the certificates' validity it fails exactly
// as a fresh verification does.
func TestCacheTimeValidity(t *testing.T) {
	ev, v := cachedSetup(t)
	for _, at := range []time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)} {
		cached := appraise(t, v, ev, at)
		n, _ := hex.DecodeString(nonce545)
		fresh := appraise(t, NewVerifier(nil).WithNonce(n), ev, at)
		for _, id := range []string{"gpu.chain", "gpu.rim.driver", "gpu.rim.vbios"} {
			if stepStatus(cached, id) != stepStatus(fresh, id) {
				dump(t, cached)
				t.Errorf("at %s: %s is %s cached and %s fresh", at, id, stepStatus(cached, id), stepStatus(fresh, id))
			}
		}
		// The RIM signers are valid from 2023 to 2025; the device chain
		// from 2021 to 9999.
		want := []string{"gpu.rim.driver", "gpu.rim.vbios"}
		if at.Year() == 2000 {
			want = append(want, "gpu.chain")
		}
		for _, id := range want {
			if stepStatus(cached, id) != attest.Fail {
				dump(t, cached)
				t.Errorf("at %s: %s is %s from the cache", at, id, stepStatus(cached, id))
			}
		}
	}
}

// TestCacheOwnsItsBytes: the cache keeps its own copy of what it verified:
// a caller that reuses the entry body's memory afterwards changes neither
// what the cache compares with nor the cached certificates.
func TestCacheOwnsItsBytes(t *testing.T) {
	ev, _ := cachedSetup(t)
	good, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := hex.DecodeString(nonce545)
	v2 := NewVerifier(NewCache(0)).WithNonce(n)
	pol := mustPolicy(t, "nvgpu:\n  skip_revocation: true\n")
	body := bytes.Clone(good)
	entry := attest.Entry{Kind: attest.KindNVGPU, Device: "gpu0", Body: body}
	if r := attest.VerifyEntry(context.Background(), v2, entry, at2024, pol, nil); r.Verdict != attest.Affirming {
		t.Fatalf("first: %s", r.Verdict)
	}
	for i := range body {
		body[i] = 0xff
	}
	entry.Body = bytes.Clone(good)
	if r := attest.VerifyEntry(context.Background(), v2, entry, at2024, pol, nil); r.Verdict != attest.Affirming {
		dump(t, r.Devices["gpu0"])
		t.Fatalf("after the first body was overwritten: %s", r.Verdict)
	}
	if whole(v2.cache) != 3 {
		t.Errorf("cache holds %d entries; the second appraisal should have hit all three", whole(v2.cache))
	}
}

// TestCacheCollision: entries that share a hash key are told apart by
// their bytes: a lookup with other bytes under the same key is a miss.
func TestCacheCollision(t *testing.T) {
	c := NewCache(4)
	a, b := [][]byte{[]byte("one")}, [][]byte{[]byte("two")}
	k := c.key(kindRIM, SPKIHash{}, a)
	c.put(k, &cacheEntry{kind: kindRIM, parts: a, notAfter: at2024.Add(time.Hour)})
	if c.get(k, kindRIM, SPKIHash{}, a, at2024) == nil {
		t.Fatal("exact lookup missed")
	}
	// Forced collision: same key, other bytes, other pin, other kind.
	if c.get(k, kindRIM, SPKIHash{}, b, at2024) != nil {
		t.Error("other bytes under the same key hit")
	}
	if c.get(k, kindRIM, SPKIHash{1}, a, at2024) != nil {
		t.Error("other pin under the same key hit")
	}
	if c.get(k, kindChain, SPKIHash{}, a, at2024) != nil {
		t.Error("other kind under the same key hit")
	}
	// Parts split differently are different inputs.
	if c.get(k, kindRIM, SPKIHash{}, [][]byte{[]byte("on"), []byte("e")}, at2024) != nil {
		t.Error("re-split parts hit")
	}
	if c.key(kindChain, SPKIHash{}, [][]byte{[]byte("ab"), []byte("c")}) == c.key(kindChain, SPKIHash{}, [][]byte{[]byte("a"), []byte("bc")}) {
		t.Error("the key ignores how the bytes split into parts")
	}
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// whole counts the cached chains, RIMs and OCSP responses, not the links
// of chains cached on their own.
func whole(c *Cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.m {
		if e.kind != kindLink {
			n++
		}
	}
	return n
}
