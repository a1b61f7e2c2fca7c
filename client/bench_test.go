package client_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sworn-dev/sworn/client"
	"github.com/sworn-dev/sworn/internal/streambench"
	"github.com/sworn-dev/sworn/node/echo"
	"github.com/sworn-dev/sworn/relay"
)

// BenchmarkStreamRatio: a 256-token streamed chat completion through
// proxy → relay → node → echo, the answer's receipt verified by the proxy
// before its last byte (the bundle cached), beside the same request
// through the same three hops as plaintext httputil.ReverseProxys in
// front of the same engine, with the engine paced and unpaced
// (internal/streambench).
func BenchmarkStreamRatio(b *testing.B) {
	for _, pc := range []struct {
		name string
		eo   echo.Options
	}{{"paced", echo.Options{TokensPerSecond: streambench.Pace}}, {"unpaced", echo.Options{}}} {
		eo := pc.eo
		b.Run(pc.name, func(b *testing.B) {
			u, _ := startNode(b, 1, eo)
			r, _ := relay.New(relay.Config{Nodes: []string{u}, Logger: slog.New(slog.DiscardHandler)})
			defer r.Close()
			r.Refresh(context.Background())
			rs := httptest.NewServer(r.Handler())
			defer rs.Close()
			pool, err := (&client.Client{Policy: simPolicy(b, 0)}).NewRelayPool(context.Background(), rs.URL, 1)
			if err != nil {
				b.Fatal(err)
			}
			px := httptest.NewServer(&client.Proxy{Transport: &client.Transport{Pool: pool}})
			defer px.Close()

			eng := httptest.NewServer(echo.New(eo))
			defer eng.Close()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			streambench.Compare(b, streambench.Post(hc, px.URL), streambench.Plain(b, eng.URL, 3))
		})
	}
}

// BenchmarkColdDirectory16: the first request's setup with a cold
// directory of 16 nodes: fetch it and appraise every bundle, with a fresh
// appraiser (no cache).
func BenchmarkColdDirectory16(b *testing.B) {
	rs := startRelay(b, 16)
	pol := simPolicy(b, 0)
	for b.Loop() {
		pool, err := (&client.Client{Policy: pol}).NewRelayPool(context.Background(), rs.URL, 2)
		if err != nil || len(pool.Nodes()) != 16 {
			b.Fatalf("%v", err)
		}
	}
}
