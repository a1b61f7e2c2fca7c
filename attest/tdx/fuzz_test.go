package tdx

import (
	"reflect"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/attest"
	"github.com/sworn-dev/sworn/internal/vectors"
)

func addQuoteSeeds(f *testing.F) {
	if vectors.Root() != "" {
		for _, v := range realVectors {
			f.Add(vectors.Read(f, v.quote...))
		}
	}
	q, err := NewSimPlatform(1).Quote(SimQuoteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(q)
}

// FuzzParseQuote also holds a Verifier's parse, which remembers the
// frames go-tdx-guest agreed on across inputs, to ParseQuote's.
func FuzzParseQuote(f *testing.F) {
	addQuoteSeeds(f)
	var seen frames
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := ParseQuote(data)
		cached, cerr := parseQuote(data, &seen)
		if (err == nil) != (cerr == nil) || (err == nil && !reflect.DeepEqual(q, cached)) {
			t.Fatalf("ParseQuote: %v; with remembered frames: %v", err, cerr)
		}
		if err != nil {
			return
		}
		if a, err := Parse(&Evidence{Quote: q.Raw}); err == nil {
			Inspect(a)
		}
	})
}

func FuzzParseCollateral(f *testing.F) {
	if vectors.Root() != "" {
		f.Add(dcapQVLCollateral(f))
	}
	c, err := SimCollateral(simAt, SimCollateralOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseCollateral(data)
		if err != nil {
			return
		}
		// Whatever parses must appraise without panicking.
		e := simEvidence(t, SimQuoteOptions{}, SimCollateralOptions{})
		a, err := Parse(&Evidence{Quote: e.Quote})
		if err != nil {
			t.Fatal(err)
		}
		a.Collateral = p
		NewVerifier().Appraise(a, &attest.Env{At: simAt, Ledger: &attest.Ledger{}, Policy: simPolicy(t, "")})
	})
}

// FuzzVerifyEntry appraises arbitrary entry bodies: never a panic.
func FuzzVerifyEntry(f *testing.F) {
	e := simEvidence(f, SimQuoteOptions{}, SimCollateralOptions{})
	body, err := e.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	v := NewVerifier()
	f.Fuzz(func(t *testing.T, data []byte) {
		attest.VerifyEntry(t.Context(), v, attest.Entry{Kind: attest.KindTDX, Device: "cpu0", Body: data}, simAt.Add(time.Hour), nil, nil)
	})
}

// FuzzReplayCCEL replays arbitrary event logs: never a panic.
func FuzzReplayCCEL(f *testing.F) {
	var rtmr [4][48]byte
	if vectors.Root() != "" {
		log := vectors.Read(f, "tdx", "gcp-cos-ccel", "ccel_data.dat")
		f.Add(log[:8<<10])
		q, err := ParseQuote(vectors.Read(f, "tdx", "gcp-cos-ccel", "cos-113-tdx-quote.dat"))
		if err != nil {
			f.Fatal(err)
		}
		rtmr = q.Body.RTMR
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, log []byte) {
		ReplayCCEL(nil, log, rtmr)
	})
}
