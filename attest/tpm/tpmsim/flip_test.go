package tpmsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/attest/tpm"
)

// logField is one field of one event of a crypto-agile event log, as byte
// offsets into the log.
type logField struct {
	event      int    // 0 is the Spec ID event
	typ        uint32 // the event's type
	name       string // "header" (all of the Spec ID event), "pcr", "type", "count", "alg", "digest", "size", "data"
	start, end int
}

// logFields splits a log that tpm.LogBuilder wrote (sha256 and sha384
// digests) into its fields. It trusts the log: it is the simulator's own.
func logFields(log []byte) []logField {
	u32 := func(o int) uint32 { return binary.LittleEndian.Uint32(log[o:]) }
	hdrEnd := 32 + int(u32(28)) // TCG_PCR_EVENT: PCR, type, SHA-1 digest, size, data
	out := []logField{{0, u32(4), "header", 0, hdrEnd}}
	sizes := map[uint16]int{0x0b: 32, 0x0c: 48}
	for off, n := hdrEnd, 1; off < len(log); n++ {
		typ := u32(off + 4)
		f := func(name string, size int) {
			out = append(out, logField{n, typ, name, off, off + size})
			off += size
		}
		f("pcr", 4)
		f("type", 4)
		count := int(u32(off))
		f("count", 4)
		for range count {
			alg := binary.LittleEndian.Uint16(log[off:])
			f("alg", 2)
			f("digest", sizes[alg])
		}
		f("size", 4)
		f("data", int(u32(off-4)))
	}
	return out
}

// TestBitFlips is a property test over the simulated TPM entry: of 2000
// single-bit flips of its body, at bits drawn with a fixed seed, none
// verifies as affirming, except in the three places named below, which
// the TPM does not measure by design.
func TestBitFlips(t *testing.T) {
	r, binding, p := simBoot(t)
	v := tpm.NewVerifier()
	verify := func(e attest.Entry) (attest.Verdict, map[string]any) {
		res := attest.VerifyEntry(context.Background(), v, e, at, p, &binding)
		// Claims as JSON values, so that they compare as a verifier's
		// reader sees them.
		raw, err := json.Marshal(res.Devices["tpm0"].Claims)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		return res.Verdict, c
	}
	verdict, claims := verify(r.Entry)
	if verdict != attest.Affirming {
		t.Fatalf("the unflipped entry is %s", verdict)
	}
	body := r.Entry.Body
	logAt := bytes.Index(body, r.Evidence.EventLog)
	if logAt < 0 {
		t.Fatal("the event log is not in the body")
	}
	fields := logFields(r.Evidence.EventLog)
	// changed lists the claims that differ from the unflipped entry's.
	changed := func(c map[string]any) []string {
		keys := slices.Collect(maps.Keys(claims))
		for k := range c {
			if _, ok := claims[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		var out []string
		for _, k := range keys {
			a, _ := json.Marshal(claims[k])
			b, _ := json.Marshal(c[k])
			if !bytes.Equal(a, b) {
				out = append(out, k)
			}
		}
		return out
	}

	const flips = 2000
	rng := rand.New(rand.NewPCG(2026, 12))
	seen := map[string]int{}
	for range flips {
		bit := rng.IntN(8 * len(body))
		e := r.Entry
		e.Body = bytes.Clone(body)
		e.Body[bit/8] ^= 1 << (bit % 8)
		verdict, c := verify(e)
		if verdict != attest.Affirming {
			seen["not affirming"]++
			continue
		}
		off := bit/8 - logAt
		var f *logField
		for i := range fields {
			if off >= fields[i].start && off < fields[i].end {
				f = &fields[i]
			}
		}
		diff := changed(c)
		switch {
		case f == nil:
			t.Errorf("bit %d (byte %d of the body, outside the event log) flipped: still affirming, claims changed %v", bit, bit/8, diff)
		case f.name == "header":
			// The Spec ID event (EV_NO_ACTION) is never extended into a
			// PCR: its PCR index, SHA-1 digest, platform class, errata and
			// uintn size are not measured, and the verifier reads only its
			// algorithm list (whose flips fail). Nothing may change.
			seen["Spec ID event"]++
			if len(diff) > 0 {
				t.Errorf("bit %d (Spec ID event, byte %d) changed claims %v", bit, off, diff)
			}
		case f.name == "data" && f.typ == 0x80000003:
			// The data of EV_EFI_BOOT_SERVICES_APPLICATION (the image's
			// load address, length and device path) is not measured: the
			// event's digest is the image's Authenticode hash, which the
			// quote covers and efi_apps reports. Nothing may change.
			seen["image load event data"]++
			if len(diff) > 0 {
				t.Errorf("bit %d (image load event %d data) changed claims %v", bit, f.event, diff)
			}
		case f.name == "type":
			// Event types are not measured: a flip relabels an event
			// whose digest still replays, so every quoted PCR, and each
			// reference value checked against them, still holds. Claims
			// read from events by type (platform from the S-CRTM version,
			// the Secure Boot state after the PCR 7 separator) can go
			// missing, with a note; the UKI sections, node software and
			// EFI applications cannot change.
			seen["event type"]++
			for _, k := range diff {
				if k != "platform" && k != "secure_boot" && k != "eventlog_notes" {
					t.Errorf("bit %d (event %d type) changed claim %s", bit, f.event, k)
				}
			}
		default:
			t.Errorf("bit %d (event %d %s, byte %d of the log) flipped: still affirming, claims changed %v", bit, f.event, f.name, off-f.start, diff)
		}
	}
	t.Logf("%d flips of a %d-byte body: %v", flips, len(body), seen)
	if seen["not affirming"] < flips*9/10 {
		t.Errorf("only %d of %d flips were refused", seen["not affirming"], flips)
	}
}
