package bhttp

import (
	"bytes"
	"strings"
	"testing"
)

// chatRequest is a typical chat completion request: a 2 KiB JSON body and
// 10 header fields.
func chatRequest(f Framing) *Request {
	body := `{"model":"llama-3.1-70b-instruct","stream":true,"max_tokens":512,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"`
	body += strings.Repeat("Explain Binary HTTP. ", (2048-len(body)-4)/21)
	body += `"}]}`
	body += strings.Repeat(" ", 2048-len(body))
	return &Request{
		Framing: f, Method: "POST", Scheme: "https", Authority: "node.sworn.example", Path: "/v1/chat/completions",
		Header: Fields{
			{"content-type", "application/json"},
			{"accept", "text/event-stream"},
			{"accept-encoding", "identity"},
			{"user-agent", "sworn-client/0.1"},
			{"authorization", "Bearer sk-0123456789abcdef0123456789abcdef"},
			{"x-request-id", "7f9c1e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"},
			{"openai-organization", "org-example"},
			{"x-sworn-policy", "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
			{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			{"content-length", "2048"},
		},
		Content: []byte(body),
	}
}

func benchmarkChat(b *testing.B, f Framing) {
	req := chatRequest(f)
	if len(req.Content) != 2048 || len(req.Header) != 10 {
		b.Fatalf("request has %d bytes of content and %d fields", len(req.Content), len(req.Header))
	}
	enc, err := req.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		enc, err := req.Encode()
		if err != nil {
			b.Fatal(err)
		}
		got, err := DecodeRequest(enc, nil)
		if err != nil || !bytes.Equal(got.Content, req.Content) {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatRequestKnownLength encodes and decodes a known-length chat
// completion request.
func BenchmarkChatRequestKnownLength(b *testing.B) { benchmarkChat(b, KnownLength) }

// BenchmarkChatRequestIndeterminate encodes and decodes the same request in
// indeterminate-length form.
func BenchmarkChatRequestIndeterminate(b *testing.B) { benchmarkChat(b, IndeterminateLength) }
