package echo

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeChat: no body makes the chat decoder or the chat endpoint panic,
// and what the decoder accepts is within bounds.
func FuzzDecodeChat(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"}]}],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"messages":[{"role":"assistant","content":null}],"max_tokens":2,"max_completion_tokens":1,"n":1}`,
		`{"messages":[{"role":"user","content":7}]}`,
		`{"messages":"x"}`, `[]`, `{`, "", `{"messages":[{"role":"user","content":"\ud800"}]} x`,
	} {
		f.Add([]byte(s))
	}
	h := New(Options{MaxTokens: 64})
	f.Fuzz(func(t *testing.T, body []byte) {
		in, aerr := decodeChat(body)
		if aerr != nil {
			if aerr.status != http.StatusBadRequest || aerr.message == "" {
				t.Fatalf("bad error %+v", aerr)
			}
		} else if in.limit != nil && *in.limit < 1 || in.promptTokens < 0 {
			t.Fatalf("accepted out-of-bounds input %+v", in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(string(body))))
		if (aerr == nil) != (rec.Code == http.StatusOK) {
			t.Fatalf("decoder says %v, endpoint answers %d", aerr, rec.Code)
		}
	})
}
