package relay

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/internal/streambench"
	"github.com/sworn-dev/sworn/node/echo"
)

// BenchmarkStreamRatio: a 256-token streamed chat completion, client →
// relay → node → echo — encrypted, forwarded, decrypted, each token sealed
// as a chunk and streamed back through the relay — beside the same request
// in plaintext through two httputil.ReverseProxy hops (as relay and node)
// to the same engine, with the engine paced and unpaced
// (internal/streambench). "direct" is the paced request without the relay,
// beside one plaintext hop: the difference is what the relay adds.
func BenchmarkStreamRatio(b *testing.B) {
	for _, pc := range []struct {
		name  string
		eo    echo.Options
		relay bool
	}{
		{"paced", echo.Options{TokensPerSecond: streambench.Pace}, true},
		{"unpaced", echo.Options{}, true},
		{"direct", echo.Options{TokensPerSecond: streambench.Pace}, false},
	} {
		b.Run(pc.name, func(b *testing.B) {
			p := simPolicy(b)
			_, nodeURL := startSimNode(b, p, pc.eo)
			c := &client.Client{Policy: p}
			var n *client.Node
			hops := 1
			if pc.relay {
				_, relayURL, _ := startRelay(b, Config{}, nodeURL)
				n, hops = verifyDirectory(b, c, relayURL)[0], 2
			} else {
				var err error
				if n, err = c.Verify(context.Background(), nodeURL); err != nil {
					b.Fatal(err)
				}
			}
			eng := httptest.NewServer(echo.New(pc.eo))
			defer eng.Close()
			streambench.Compare(b, streambench.Sworn(c, n), streambench.Plain(b, eng.URL, hops))
		})
	}
}
