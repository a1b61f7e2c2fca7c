package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/wire"
)

// TestHeaderHygiene: of the client's header, a node gets only the media
// type, Incremental and the (normalized) Date; of the node's answer, the
// client gets only Content-Type, Incremental and Cache-Control.
func TestHeaderHygiene(t *testing.T) {
	got := make(chan http.Header, 1)
	s := newStub(t, 1, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- r.Header.Clone()
		h := w.Header()
		h.Set("Content-Type", wire.MediaTypeChunkedRes)
		h.Set("Incremental", "?1")
		h.Set("Cache-Control", "no-store")
		h.Set("Set-Cookie", "node=secret")
		h.Set("Server", "sworn-node/1.2.3")
		h.Set("X-Node-Internal", "10.0.0.7")
		h.Set("Sworn-Receipt", "x")
		w.Write([]byte("sealed"))
	})
	_, relayURL, _ := startRelay(t, Config{}, s.url)
	identifying := http.Header{
		"Forwarded":        {"for=192.0.2.60;proto=http"},
		"X-Forwarded-For":  {"192.0.2.60"},
		"X-Forwarded-Host": {"client.example"},
		"X-Real-Ip":        {"192.0.2.60"},
		"Via":              {"1.1 client-proxy"},
		"Cookie":           {"session=abc"},
		"User-Agent":       {"curl/8.0 CANARYUA"},
		"Authorization":    {"Bearer sk-CANARY"},
		"Referer":          {"https://client.example/"},
		"Origin":           {"https://client.example"},
		"Accept-Language":  {"de-CH"},
		"X-Client-Id":      {"42"},
		"Incremental":      {"?1"},
		"Date":             {"Wed, 02 Dec 2026 18:00:00 GMT"},
	}
	resp, body := post(t, nil, relayURL+"/sworn/v1/ohttp", wire.MediaTypeChunkedReq+"; x-fingerprint=1", plainBody(s.keys[0], []byte("ct")), identifying)
	if resp.StatusCode != 200 || string(body) != "sealed" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	h := <-got
	var names []string
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{"Content-Length", "Content-Type", "Date", "Incremental"}; !slices.Equal(names, want) {
		t.Errorf("the node got header fields %v; want only %v", names, want)
	}
	if h.Get("Content-Type") != wire.MediaTypeChunkedReq || h.Get("Incremental") != "?1" || h.Get("Date") != "Wed, 02 Dec 2026 18:00:00 GMT" {
		t.Errorf("the node got %v", h)
	}
	for _, k := range []string{"Set-Cookie", "Server", "X-Node-Internal", "Sworn-Receipt"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("the client got %s: %s", k, v)
		}
	}
	if resp.Header.Get("Content-Type") != wire.MediaTypeChunkedRes || resp.Header.Get("Incremental") != "?1" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the client's answer lost a field: %v", resp.Header)
	}

	// A Date that does not parse is dropped, not passed on.
	identifying.Set("Date", "yesterday CANARY")
	post(t, nil, relayURL+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(s.keys[0], nil), identifying)
	if h := <-got; h.Get("Date") != "" || h.Get("Incremental") != "?1" {
		t.Errorf("the node got Date %q Incremental %q", h.Get("Date"), h.Get("Incremental"))
	}
}

// TestNoCanaryInLogsOrMetrics: nothing of the ciphertext body, the
// client's headers or the client's address reaches the relay's logs or
// its metrics, whatever the outcome.
func TestNoCanaryInLogsOrMetrics(t *testing.T) {
	const canary = "CANARYBODY5e2d1"
	s := newStub(t, 1, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", wire.MediaTypeResponse)
		w.Write(b) // the node's answer holds the canary too
	})
	slow := newStub(t, 3, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", wire.MediaTypeChunkedRes)
		for r.Context().Err() == nil {
			if _, err := w.Write(make([]byte, 32<<10)); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			time.Sleep(time.Millisecond)
		}
	})
	_, relayURL, logs := startRelay(t, Config{MaxRequest: 4 << 10}, s.url, slow.url)
	var local string
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	trace := func(ctx context.Context) context.Context {
		return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { local = i.Conn.LocalAddr().String() }})
	}
	var addrs []string
	send := func(path, mt string, body []byte) int {
		req, _ := http.NewRequestWithContext(trace(context.Background()), http.MethodPost, relayURL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", mt)
		req.Header.Set("User-Agent", canary)
		req.Header.Set("Authorization", "Bearer "+canary)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		addrs = append(addrs, local)
		return resp.StatusCode
	}
	ct := []byte(strings.Repeat(canary, 4))
	statuses := []int{
		send("/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(s.keys[0], ct)),                                 // forwarded
		send("/sworn/v1/ohttp", wire.MediaTypeRequest, append([]byte{9, 0, 0x20, 0, 1, 0, 2}, ct...)),            // no node
		send("/sworn/v1/ohttp", "text/plain", ct),                                                                // bad type
		send("/sworn/v1/ohttp", wire.MediaTypeMultiReq, append([]byte{1, 0, 1, 0, 2, 1}, ct...)),                 // malformed
		send("/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(s.keys[0], bytes.Repeat([]byte(canary), 1000))), // too large
		send("/sworn/v1/nodes/"+canary+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(s.keys[0], ct)),       // unknown node
	}
	if want := []int{200, 404, 415, 400, 413, 404}; !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	// A client that goes away mid-stream: the relay's write error names
	// the client's address; the log must not.
	req, _ := http.NewRequestWithContext(trace(context.Background()), http.MethodPost, relayURL+"/sworn/v1/nodes/"+NodeID(slow.url)+"/sworn/v1/ohttp",
		bytes.NewReader(plainBody(slow.keys[0], ct)))
	req.Header.Set("Content-Type", wire.MediaTypeChunkedReq)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 1))
	resp.Body.Close()
	addrs = append(addrs, local)
	for deadline := time.Now().Add(10 * time.Second); strings.Count(logs.String(), `"msg":"forward"`) < len(statuses)+1; {
		if time.Now().After(deadline) {
			t.Fatalf("the cut stream was not logged:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `"outcome":"client_gone"`) {
		t.Fatalf("logs: %s", logs)
	}
	mresp, err := http.Get(relayURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(metrics), `sworn_relay_requests_total{kind="ohttp",outcome="ok"} 1`) {
		t.Fatalf("metrics do not count the request:\n%s", metrics)
	}
	text := logs.String()
	if strings.Count(text, `"msg":"forward"`) != len(statuses)+1 {
		t.Fatalf("not one log line per request:\n%s", text)
	}
	for name, out := range map[string]string{"logs": text, "metrics": string(metrics)} {
		if strings.Contains(out, canary) {
			t.Errorf("the %s hold the body's or header's canary", name)
		}
		for _, a := range addrs {
			if a == "" || strings.Contains(out, a) {
				t.Errorf("the %s hold the client's address %q", name, a)
			}
		}
	}
	for _, a := range addrs {
		_, port, _ := strings.Cut(a, ":")
		if regexp.MustCompile(`\b` + port + `\b`).MatchString(text) {
			t.Errorf("the logs hold the client's port %s", port)
		}
	}
}

// TestServerErrorLog: net/http's own messages (it names the client's
// address in TLS handshake errors and panics) are logged without the
// address.
func TestServerErrorLog(t *testing.T) {
	logs := &syncBuffer{}
	l := ServerErrorLog(slog.New(slog.NewJSONHandler(logs, nil)))
	l.Printf("http: TLS handshake error from 192.0.2.60:51234: EOF")
	l.Printf("http: panic serving [2001:db8::1]:443: boom")
	out := logs.String()
	if strings.Contains(out, "192.0.2.60") || strings.Contains(out, "51234") || strings.Contains(out, "2001:db8") || !strings.Contains(out, "TLS handshake error from [addr]") {
		t.Fatalf("%s", out)
	}
}

// TestStreamsWithoutBuffering: the relay passes each chunk of the node's
// answer on as it arrives: the client reads the first before the node
// sends the second.
func TestStreamsWithoutBuffering(t *testing.T) {
	release := make(chan struct{})
	s := newStub(t, 1, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", wire.MediaTypeChunkedRes)
		w.Write([]byte("first"))
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte("second"))
	})
	_, relayURL, _ := startRelay(t, Config{}, s.url)
	req, _ := http.NewRequest(http.MethodPost, relayURL+"/sworn/v1/ohttp", bytes.NewReader(plainBody(s.keys[0], []byte("x"))))
	req.Header.Set("Content-Type", wire.MediaTypeChunkedReq)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	firstc := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := resp.Body.Read(buf)
		firstc <- string(buf[:n])
	}()
	select {
	case got := <-firstc:
		if got != "first" {
			t.Fatalf("first read %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first chunk did not arrive before the second was sent: the relay buffers")
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Fatalf("%q %v", rest, err)
	}
}

// TestFlatMemory: streaming 100 MB through the relay holds no more than a
// few buffers: the heap in use grows by less than 16 MiB.
func TestFlatMemory(t *testing.T) {
	const total = 100 << 20
	s := newStub(t, 1, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", wire.MediaTypeChunkedRes)
		buf := bytes.Repeat([]byte{0xa5}, 32<<10)
		for sent := 0; sent < total; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	_, relayURL, _ := startRelay(t, Config{}, s.url)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	req, _ := http.NewRequest(http.MethodPost, relayURL+"/sworn/v1/ohttp", bytes.NewReader(plainBody(s.keys[0], []byte("x"))))
	req.Header.Set("Content-Type", wire.MediaTypeChunkedReq)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	close(stop)
	<-done
	if err != nil || n != total {
		t.Fatalf("streamed %d bytes of %d: %v", n, total, err)
	}
	growth := int64(peak.Load()) - int64(base)
	t.Logf("heap in use: %d MiB before, peak %d MiB", base>>20, peak.Load()>>20)
	if growth > 16<<20 {
		t.Fatalf("streaming 100 MB grew the heap by %d MiB", growth>>20)
	}
}

// TestRefusals: no node for the key → 404; the node down → 502; a node
// that answers no header in time → 504; too many at once → 503; a body
// too short for its header → 400; a node's own refusal passes through.
func TestRefusals(t *testing.T) {
	hold := make(chan struct{})
	var slow atomic.Bool
	s := newStub(t, 1, func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			<-hold
		}
		http.Error(w, "the request does not decrypt or is malformed", http.StatusBadRequest)
	})
	r, relayURL, _ := startRelay(t, Config{HeaderTimeout: 300 * time.Millisecond, MaxForwards: 1}, s.url)
	cases := []struct {
		name, mt string
		body     []byte
		status   int
		msg      string
	}{
		{"unknown key id", wire.MediaTypeRequest, append([]byte{7, 0, 0x20, 0, 1, 0, 2}, "ct"...), 404, "no node of this relay holds key id 7 with KEM 0x0020"},
		{"unknown KEM", wire.MediaTypeChunkedReq, append([]byte{1, 0x99, 0x99, 0, 1, 0, 2}, "ct"...), 404, "KEM 0x9999"},
		{"short", wire.MediaTypeRequest, []byte{1, 0}, 400, "before its key header"},
		{"node refuses", wire.MediaTypeRequest, plainBody(s.keys[0], nil), 400, "does not decrypt"},
	}
	for _, c := range cases {
		t.Log(c.name)
		resp, body := post(t, nil, relayURL+"/sworn/v1/ohttp", c.mt, c.body, nil)
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.msg) {
			t.Errorf("%s: %d %q", c.name, resp.StatusCode, body)
		}
	}

	slow.Store(true)
	errc := make(chan int, 1)
	go func() {
		resp, _ := post(t, nil, relayURL+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(s.keys[0], nil), nil)
		errc <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)
	if resp, body := post(t, nil, relayURL+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(s.keys[0], nil), nil); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second request while one is forwarded: %d %q", resp.StatusCode, body)
	}
	if status := <-errc; status != http.StatusGatewayTimeout {
		t.Errorf("a node that does not answer: %d, want 504", status)
	}
	close(hold)

	s.srv.CloseClientConnections()
	s.srv.Close()
	r.Close()
	resp, body := post(t, nil, relayURL+"/sworn/v1/ohttp", wire.MediaTypeRequest, plainBody(s.keys[0], nil), nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "node "+NodeID(s.url)+" did not answer") || strings.Contains(string(body), "127.0.0.1") {
		t.Errorf("the node down: %d %q", resp.StatusCode, body)
	}
}

// TestIdleTimeout: a stream that stops moving is cut after the idle
// timeout, so that the client sees it truncated, not ended.
func TestIdleTimeout(t *testing.T) {
	s := newStub(t, 1, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", wire.MediaTypeChunkedRes)
		w.Write([]byte("first"))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	_, relayURL, logs := startRelay(t, Config{IdleTimeout: 300 * time.Millisecond}, s.url)
	req, _ := http.NewRequest(http.MethodPost, relayURL+"/sworn/v1/ohttp", bytes.NewReader(plainBody(s.keys[0], []byte("x"))))
	req.Header.Set("Content-Type", wire.MediaTypeChunkedReq)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if string(got) != "first" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %q, %v; want the first chunk and a cut stream", got, err)
	}
	if !strings.Contains(logs.String(), `"outcome":"idle_timeout"`) {
		t.Errorf("logs: %s", logs.String())
	}
}

// TestFullDuplex: a request body keeps streaming to the node while the
// node's answer streams back: the client sends its second part only after
// it read the node's answer to the first.
func TestFullDuplex(t *testing.T) {
	s := newStub(t, 1, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		w.Header().Set("Content-Type", wire.MediaTypeChunkedRes)
		w.WriteHeader(200)
		rc.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(bytes.ToUpper(buf[:n]))
				rc.Flush()
			}
			if err != nil {
				return
			}
		}
	})
	_, relayURL, _ := startRelay(t, Config{IdleTimeout: 10 * time.Second}, s.url)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, relayURL+"/sworn/v1/ohttp", pr)
	req.Header.Set("Content-Type", wire.MediaTypeChunkedReq)
	go pw.Write(plainBody(s.keys[0], []byte("part one;")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := string(bytes.ToUpper(plainBody(s.keys[0], []byte("part one;"))))
	got := make([]byte, len(want))
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, got); done <- err }()
	select {
	case err := <-done:
		if err != nil || string(got) != want {
			t.Fatalf("%q %v", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the node's answer to the first part did not come back while the request was open")
	}
	pw.Write([]byte("part two"))
	pw.Close()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "PART TWO" {
		t.Fatalf("%q %v", rest, err)
	}
}

// TestManyStreams: a few hundred streams in a row over kept-alive
// connections, each answered before the node read all of its request,
// all arrive whole.
func TestManyStreams(t *testing.T) {
	s := newStub(t, 1, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", wire.MediaTypeChunkedRes)
		w.Write([]byte("early"))
		http.NewResponseController(w).Flush()
		io.Copy(io.Discard, r.Body)
		w.Write(bytes.Repeat([]byte("x"), 40<<10))
	})
	_, relayURL, _ := startRelay(t, Config{}, s.url)
	body := plainBody(s.keys[0], bytes.Repeat([]byte("y"), 8<<10))
	for i := range 300 {
		resp, data := post(t, nil, relayURL+"/sworn/v1/ohttp", wire.MediaTypeChunkedReq, body, nil)
		if resp.StatusCode != 200 || len(data) != 5+40<<10 {
			t.Fatalf("stream %d: %d, %d bytes", i, resp.StatusCode, len(data))
		}
	}
}
