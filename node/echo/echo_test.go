package echo_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sworn-dev/sworn/node/echo"
)

var fixedNow = func() time.Time { return time.Unix(1700000000, 0) }

func newEngine(o echo.Options) http.Handler {
	if o.Now == nil {
		o.Now = fixedNow
	}
	return echo.New(o)
}

// do sends one request straight to h.
func do(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"echo: hi, there", []string{"echo", ":", " ", "hi", ",", " ", "there"}},
		{"  a\n\tb  ", []string{"  ", "a", "\n\t", "b", "  "}},
		{"x2y 42!?", []string{"x2y", " ", "42", "!", "?"}},
		{"héllo wörld", []string{"héllo", " ", "wörld"}},
		{"日本語 テキスト", []string{"日本語", " ", "テキスト"}},
		{"a\xffb", []string{"a", "\xff", "b"}},
		{"💥💥", []string{"💥", "💥"}},
	} {
		got := echo.Tokenize(tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Join(got, "") != tc.in {
			t.Errorf("Tokenize(%q) does not join back: %q", tc.in, got)
		}
	}
}

// chatCompletion is the client's view of a chat.completion.
type chatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func idOf(prefix, body string) string {
	sum := sha256.Sum256([]byte(body))
	return prefix + hex.EncodeToString(sum[:])[:12]
}

func TestChat(t *testing.T) {
	for _, tc := range []struct {
		name, body, model, content, finish string
		prompt                             int
	}{
		{"string content", `{"model":"m1","messages":[{"role":"user","content":"hello, world"}]}`,
			"m1", "echo: hello, world", "stop", 4},
		{"default model", `{"messages":[{"role":"user","content":"hi"}]}`,
			"echo", "echo: hi", "stop", 1},
		{"content parts", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a b"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":" c"}]}]}`,
			"m", "echo: a b c", "stop", 5},
		{"last user message and all prompt tokens", `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"first"},{"role":"assistant","content":null},{"role":"user","content":"second one"}]}`,
			"m", "echo: second one", "stop", 7},
		{"no user message", `{"model":"m","messages":[{"role":"system","content":"sys"}]}`,
			"m", "echo: ", "stop", 1},
		{"max_tokens cuts", `{"model":"m","messages":[{"role":"user","content":"one two three"}],"max_tokens":5}`,
			"m", "echo: one ", "length", 5},
		{"max_completion_tokens wins", `{"model":"m","messages":[{"role":"user","content":"one two three"}],"max_tokens":1,"max_completion_tokens":4}`,
			"m", "echo: one", "length", 5},
		{"max_tokens exactly fits", `{"model":"m","messages":[{"role":"user","content":"one"}],"max_tokens":4}`,
			"m", "echo: one", "stop", 1},
		{"ignored fields", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0.2,"top_p":1,"n":1,"seed":7,"tools":[],"stream":false}`,
			"m", "echo: x", "stop", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, newEngine(echo.Options{}), "POST", "/v1/chat/completions", tc.body)
			if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			var c chatCompletion
			decode(t, rec.Body.Bytes(), &c)
			if c.ID != idOf("chatcmpl-echo-", tc.body) || c.Object != "chat.completion" || c.Created != 1700000000 || c.Model != tc.model {
				t.Errorf("header fields: %+v", c)
			}
			if len(c.Choices) != 1 {
				t.Fatalf("choices: %+v", c.Choices)
			}
			ch := c.Choices[0]
			if ch.Index != 0 || ch.Message.Role != "assistant" || ch.Message.Content != tc.content || ch.FinishReason != tc.finish {
				t.Errorf("choice %+v, want content %q finish %q", ch, tc.content, tc.finish)
			}
			completion := len(echo.Tokenize(tc.content))
			if want := (usage{tc.prompt, completion, tc.prompt + completion}); c.Usage != want {
				t.Errorf("usage %+v, want %+v", c.Usage, want)
			}
		})
	}
}

// TestChatWire pins the exact bytes of a chat.completion and its stream, the
// shapes OpenAI's SDKs parse.
func TestChatWire(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	id := idOf("chatcmpl-echo-", body)
	rec := do(t, newEngine(echo.Options{}), "POST", "/v1/chat/completions", body)
	want := `{"id":"` + id + `","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"echo: hi","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":4,"total_tokens":5}}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("got  %s\nwant %s", rec.Body, want)
	}

	body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`
	id = idOf("chatcmpl-echo-", body)
	rec = do(t, newEngine(echo.Options{}), "POST", "/v1/chat/completions", body)
	head := `{"id":"` + id + `","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":`
	want = "data: " + head + `[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"
	for _, tok := range []string{"echo", ":", " ", "hi"} {
		want += "data: " + head + `[{"index":0,"delta":{"content":"` + tok + `"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"
	}
	want += "data: " + head + `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\n"
	want += "data: " + head + `[],"usage":{"prompt_tokens":1,"completion_tokens":4,"total_tokens":5}}` + "\n\n"
	want += "data: [DONE]\n\n"
	if rec.Body.String() != want {
		t.Errorf("got\n%s\nwant\n%s", rec.Body, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	// Without include_usage no chunk has a usage field.
	rec = do(t, newEngine(echo.Options{}), "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"stream":true}`)
	if strings.Contains(rec.Body.String(), `"usage"`) || !strings.HasSuffix(rec.Body.String(), "data: [DONE]\n\n") {
		t.Errorf("stream without include_usage:\n%s", rec.Body)
	}
}

// readSSE reads server-sent events: the data of each event, and the error
// that ended the stream (nil at a clean EOF).
func readSSE(r io.Reader) ([]string, error) {
	br := bufio.NewReader(r)
	var events []string
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && data == nil {
				return events, nil
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return events, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data != nil {
				events = append(events, strings.Join(data, "\n"))
				data = nil
			}
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		default:
			return events, errors.New("unexpected SSE line " + line)
		}
	}
}

type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         *string `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

// streamed is a parsed stream: its text, finish reason and usage, after
// checking the order of its events.
type streamed struct {
	text, finish string
	usage        *usage
	tokens       int
	id, object   string
}

func parseStream(t *testing.T, events []string, chat bool) streamed {
	t.Helper()
	if len(events) == 0 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", events)
	}
	var s streamed
	const (
		start = iota
		tokens
		finished
		usaged
	)
	state := start
	if !chat {
		state = tokens
	}
	for i, ev := range events[:len(events)-1] {
		var c chunk
		decode(t, []byte(ev), &c)
		if i == 0 {
			s.id, s.object = c.ID, c.Object
		} else if c.ID != s.id || c.Object != s.object {
			t.Fatalf("event %d: id %q object %q differ from the first", i, c.ID, c.Object)
		}
		switch {
		case state == start:
			if len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant" || c.Choices[0].Delta.Content != nil || c.Choices[0].FinishReason != nil {
				t.Fatalf("first event is not the role delta: %s", ev)
			}
			state = tokens
		case len(c.Choices) == 1 && c.Choices[0].FinishReason == nil && state == tokens:
			piece := c.Choices[0].Text
			if chat {
				piece = c.Choices[0].Delta.Content
			}
			if piece == nil || *piece == "" || c.Usage != nil {
				t.Fatalf("event %d is not a token: %s", i, ev)
			}
			s.text += *piece
			s.tokens++
		case len(c.Choices) == 1 && c.Choices[0].FinishReason != nil && state == tokens:
			s.finish = *c.Choices[0].FinishReason
			state = finished
		case len(c.Choices) == 0 && c.Usage != nil && state == finished:
			s.usage = c.Usage
			state = usaged
		default:
			t.Fatalf("event %d out of order (state %d): %s", i, state, ev)
		}
	}
	if state < finished {
		t.Fatalf("stream has no finish event: %q", events)
	}
	return s
}

func TestStreamsMatchUnstreamed(t *testing.T) {
	srv := httptest.NewServer(newEngine(echo.Options{}))
	defer srv.Close()
	for _, tc := range []struct {
		name, path, body string
	}{
		{"chat", "/v1/chat/completions", `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"Hello, streaming world!"}]}`},
		{"chat cut", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"a b c d e f"}],"max_tokens":6}`},
		{"completion", "/v1/completions", `{"model":"m","prompt":"Once upon a time"}`},
		{"completion cut", "/v1/completions", `{"model":"m","prompt":["a b c d"],"max_tokens":2}`},
	} {
		for _, includeUsage := range []bool{false, true} {
			t.Run(tc.name, func(t *testing.T) {
				plain := do(t, newEngine(echo.Options{}), "POST", tc.path, tc.body)
				var want struct {
					ID      string `json:"id"`
					Object  string `json:"object"`
					Choices []struct {
						Text         string `json:"text"`
						FinishReason string `json:"finish_reason"`
						Message      struct {
							Content string `json:"content"`
						} `json:"message"`
					} `json:"choices"`
					Usage usage `json:"usage"`
				}
				decode(t, plain.Body.Bytes(), &want)
				chat := strings.Contains(tc.path, "chat")
				text := want.Choices[0].Text
				if chat {
					text = want.Choices[0].Message.Content
				}

				streamBody := strings.TrimSuffix(tc.body, "}") + `,"stream":true`
				if includeUsage {
					streamBody += `,"stream_options":{"include_usage":true}`
				}
				streamBody += "}"
				resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(streamBody))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
					t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				events, err := readSSE(resp.Body)
				if err != nil {
					t.Fatalf("reading the stream: %v", err)
				}
				s := parseStream(t, events, chat)
				wantObject := "text_completion"
				if chat {
					wantObject = "chat.completion.chunk"
				}
				wantID := idOf(want.ID[:strings.LastIndex(want.ID, "-")+1], streamBody)
				if s.object != wantObject || s.id != wantID {
					t.Errorf("stream id %q object %q, want %q %q", s.id, s.object, wantID, wantObject)
				}
				if s.text != text || s.finish != want.Choices[0].FinishReason {
					t.Errorf("stream says %q (%s), unstreamed %q (%s)", s.text, s.finish, text, want.Choices[0].FinishReason)
				}
				if s.tokens != want.Usage.CompletionTokens {
					t.Errorf("stream has %d tokens, usage counts %d", s.tokens, want.Usage.CompletionTokens)
				}
				switch {
				case includeUsage && (s.usage == nil || *s.usage != want.Usage):
					t.Errorf("stream usage %+v, unstreamed %+v", s.usage, want.Usage)
				case !includeUsage && s.usage != nil:
					t.Errorf("usage sent without include_usage: %+v", s.usage)
				}
			})
		}
	}
}

func TestCompletion(t *testing.T) {
	body := `{"model":"m","prompt":"Say this"}`
	rec := do(t, newEngine(echo.Options{}), "POST", "/v1/completions", body)
	want := `{"id":"` + idOf("cmpl-echo-", body) + `","object":"text_completion","created":1700000000,"model":"m","choices":[{"text":"echo: Say this","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":6,"total_tokens":9}}` + "\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("status %d\ngot  %s\nwant %s", rec.Code, rec.Body, want)
	}
}

type embeddingList struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func embeddings(t *testing.T, body string) (embeddingList, [][]float32) {
	t.Helper()
	rec := do(t, newEngine(echo.Options{}), "POST", "/v1/embeddings", body)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var l embeddingList
	decode(t, rec.Body.Bytes(), &l)
	var vs [][]float32
	for _, d := range l.Data {
		var v []float32
		var b64 string
		if json.Unmarshal(d.Embedding, &b64) == nil {
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(raw)%4 != 0 {
				t.Fatalf("bad base64 embedding %q: %v", b64, err)
			}
			for i := 0; i < len(raw); i += 4 {
				v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
			}
		} else {
			decode(t, d.Embedding, &v)
		}
		vs = append(vs, v)
	}
	return l, vs
}

func TestEmbeddings(t *testing.T) {
	l, vs := embeddings(t, `{"model":"e","input":["alpha beta","gamma","alpha beta"]}`)
	if l.Object != "list" || l.Model != "e" || len(l.Data) != 3 || l.Usage.PromptTokens != 7 || l.Usage.TotalTokens != 7 {
		t.Fatalf("list %+v", l)
	}
	for i, v := range vs {
		if l.Data[i].Object != "embedding" || l.Data[i].Index != i || len(v) != echo.DefaultDimensions {
			t.Errorf("item %d: %+v, %d floats", i, l.Data[i], len(v))
		}
		var norm float64
		for _, f := range v {
			norm += float64(f) * float64(f)
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("item %d has norm² %v, want 1", i, norm)
		}
	}
	if !reflect.DeepEqual(vs[0], vs[2]) || reflect.DeepEqual(vs[0], vs[1]) {
		t.Errorf("same inputs must embed the same, different ones differently: %v", vs)
	}
	_, single := embeddings(t, `{"model":"e","input":"alpha beta"}`)
	_, b64 := embeddings(t, `{"model":"e","input":"alpha beta","encoding_format":"base64"}`)
	if !reflect.DeepEqual(single[0], vs[0]) || !reflect.DeepEqual(b64[0], vs[0]) {
		t.Errorf("string, array and base64 forms differ: %v %v %v", single[0], vs[0], b64[0])
	}
	_, long := embeddings(t, `{"input":"alpha beta","dimensions":100}`)
	if len(long[0]) != 100 || reflect.DeepEqual(long[0][:8], long[0][8:16]) {
		t.Errorf("100 dimensions: %v", long[0])
	}
}

func TestModels(t *testing.T) {
	h := newEngine(echo.Options{Model: "llama-echo"})
	rec := do(t, h, "GET", "/v1/models", "")
	want := `{"object":"list","data":[{"id":"llama-echo","object":"model","created":0,"owned_by":"sworn"}]}` + "\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	rec = do(t, h, "GET", "/v1/models/llama-echo", "")
	if rec.Code != 200 || rec.Body.String() != `{"id":"llama-echo","object":"model","created":0,"owned_by":"sworn"}`+"\n" {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	rec = do(t, newEngine(echo.Options{}), "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`)
	var c chatCompletion
	decode(t, rec.Body.Bytes(), &c)
	if c.Model != echo.DefaultModel {
		t.Errorf("default model %q", c.Model)
	}
}

func TestErrors(t *testing.T) {
	user := `"messages":[{"role":"user","content":"x"}]`
	big := `{"messages":[{"role":"user","content":"` + strings.Repeat("a", 2000) + `"}]}`
	many := `{"input":[` + strings.TrimSuffix(strings.Repeat(`"a",`, echo.MaxEmbeddingInputs+1), ",") + `]}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		param, code              string // "" is null
	}{
		{"unknown path", "POST", "/v1/chat", "{}", 404, "", "unknown_url"},
		{"trailing slash", "GET", "/v1/models/", "", 404, "", "unknown_url"},
		{"unknown model", "GET", "/v1/models/gpt-4", "", 404, "model", "model_not_found"},
		{"GET chat", "GET", "/v1/chat/completions", "", 405, "", "method_not_allowed"},
		{"POST models", "POST", "/v1/models", "{}", 405, "", "method_not_allowed"},
		{"too large", "POST", "/v1/chat/completions", big, 413, "", "request_too_large"},
		{"too large completion", "POST", "/v1/completions", `{"prompt":"` + strings.Repeat("a", 2000) + `"}`, 413, "", "request_too_large"},
		{"bad JSON", "POST", "/v1/chat/completions", `{"messages":`, 400, "", "invalid_json"},
		{"not an object", "POST", "/v1/chat/completions", `[]`, 400, "", "invalid_json"},
		{"empty body", "POST", "/v1/chat/completions", ``, 400, "", "invalid_json"},
		{"trailing data", "POST", "/v1/chat/completions", `{` + user + `} {}`, 400, "", "invalid_json"},
		{"missing messages", "POST", "/v1/chat/completions", `{"model":"m"}`, 400, "messages", "missing_messages"},
		{"empty messages", "POST", "/v1/chat/completions", `{"messages":[]}`, 400, "messages", "missing_messages"},
		{"messages wrong type", "POST", "/v1/chat/completions", `{"messages":"hi"}`, 400, "messages", "invalid_type"},
		{"stream wrong type", "POST", "/v1/chat/completions", `{` + user + `,"stream":"yes"}`, 400, "stream", "invalid_type"},
		{"bad role", "POST", "/v1/chat/completions", `{"messages":[{"role":"root","content":"x"}]}`, 400, "messages[0].role", "invalid_value"},
		{"missing role", "POST", "/v1/chat/completions", `{"messages":[{"content":"x"}]}`, 400, "messages[0].role", "invalid_value"},
		{"content number", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":7}]}`, 400, "messages[0].content", "invalid_type"},
		{"content part without type", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"text":"x"}]}]}`, 400, "messages[0].content[0].type", "missing_type"},
		{"text part without text", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text"}]}]}`, 400, "messages[0].content[1].text", "missing_text"},
		{"content parts not objects", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":["x"]}]}`, 400, "messages[0].content", "invalid_type"},
		{"n=2", "POST", "/v1/chat/completions", `{` + user + `,"n":2}`, 400, "n", "unsupported_value"},
		{"max_tokens 0", "POST", "/v1/chat/completions", `{` + user + `,"max_tokens":0}`, 400, "max_tokens", "invalid_value"},
		{"max_completion_tokens -1", "POST", "/v1/chat/completions", `{` + user + `,"max_completion_tokens":-1}`, 400, "max_completion_tokens", "invalid_value"},
		{"max_tokens float", "POST", "/v1/chat/completions", `{` + user + `,"max_tokens":1.5}`, 400, "max_tokens", "invalid_type"},
		{"missing prompt", "POST", "/v1/completions", `{"model":"m"}`, 400, "prompt", "missing_prompt"},
		{"prompt batch", "POST", "/v1/completions", `{"prompt":["a","b"]}`, 400, "prompt", "invalid_type"},
		{"prompt tokens", "POST", "/v1/completions", `{"prompt":[1,2,3]}`, 400, "prompt", "invalid_type"},
		{"completion n=3", "POST", "/v1/completions", `{"prompt":"a","n":3}`, 400, "n", "unsupported_value"},
		{"completion max_tokens 0", "POST", "/v1/completions", `{"prompt":"a","max_tokens":0}`, 400, "max_tokens", "invalid_value"},
		{"missing input", "POST", "/v1/embeddings", `{}`, 400, "input", "missing_input"},
		{"empty input array", "POST", "/v1/embeddings", `{"input":[]}`, 400, "input", "missing_input"},
		{"empty input", "POST", "/v1/embeddings", `{"input":["a",""]}`, 400, "input[1]", "empty_input"},
		{"token input", "POST", "/v1/embeddings", `{"input":[[1,2]]}`, 400, "input", "invalid_type"},
		{"too many inputs", "POST", "/v1/embeddings", many, 400, "input", "too_many_inputs"},
		{"dimensions 0", "POST", "/v1/embeddings", `{"input":"a","dimensions":0}`, 400, "dimensions", "invalid_value"},
		{"dimensions huge", "POST", "/v1/embeddings", `{"input":"a","dimensions":4097}`, 400, "dimensions", "invalid_value"},
		{"encoding_format", "POST", "/v1/embeddings", `{"input":"a","encoding_format":"int8"}`, 400, "encoding_format", "invalid_value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := echo.Options{}
			if tc.status == 413 {
				o.MaxBody = 1000
			}
			rec := do(t, newEngine(o), tc.method, tc.path, tc.body)
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d type %q, want %d: %s", rec.Code, rec.Header().Get("Content-Type"), tc.status, rec.Body)
			}
			var e map[string]map[string]any
			decode(t, rec.Body.Bytes(), &e)
			if len(e) != 1 || len(e["error"]) != 4 {
				t.Fatalf("not OpenAI's error shape: %s", rec.Body)
			}
			er := e["error"]
			if msg, _ := er["message"].(string); msg == "" || er["type"] != "invalid_request_error" {
				t.Errorf("message/type: %s", rec.Body)
			}
			for field, want := range map[string]string{"param": tc.param, "code": tc.code} {
				if want == "" && er[field] != nil || want != "" && er[field] != want {
					t.Errorf("%s is %v, want %q", field, er[field], want)
				}
			}
			if tc.status == 405 && rec.Header().Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	h := echo.New(echo.Options{TokensPerSecond: -5, MaxBody: -1, MaxTokens: -1})
	msg := func(size int) string {
		return `{"messages":[{"role":"user","content":"` + strings.Repeat("a ", size/2) + `"}]}`
	}
	if rec := do(t, h, "POST", "/v1/chat/completions", msg(echo.DefaultMaxBody-100)); rec.Code != 200 {
		t.Errorf("a body under DefaultMaxBody: %d", rec.Code)
	} else {
		var c chatCompletion
		decode(t, rec.Body.Bytes(), &c)
		if c.Usage.CompletionTokens != echo.DefaultMaxTokens || c.Choices[0].FinishReason != "length" || c.Created == fixedNow().Unix() {
			t.Errorf("defaults: usage %+v finish %q created %d", c.Usage, c.Choices[0].FinishReason, c.Created)
		}
	}
	if rec := do(t, h, "POST", "/v1/chat/completions", msg(echo.DefaultMaxBody)); rec.Code != 413 {
		t.Errorf("a body over DefaultMaxBody: %d", rec.Code)
	}
	start := time.Now()
	do(t, h, "POST", "/v1/chat/completions", longPrompt(50, true))
	if d := time.Since(start); d > time.Second {
		t.Errorf("a negative TokensPerSecond paces: %v", d)
	}
}

func TestMaxTokensOption(t *testing.T) {
	h := newEngine(echo.Options{MaxTokens: 3})
	rec := do(t, h, "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a b c"}],"max_tokens":100}`)
	var c chatCompletion
	decode(t, rec.Body.Bytes(), &c)
	if c.Choices[0].Message.Content != "echo: " || c.Choices[0].FinishReason != "length" || c.Usage.CompletionTokens != 3 {
		t.Errorf("MaxTokens 3: %+v", c)
	}
}

// longPrompt makes a chat request whose answer has n tokens.
func longPrompt(n int, stream bool) string {
	// "echo: " is 3 tokens; each "w " is 2 more.
	words := strings.Repeat("w ", (n-3)/2)
	if (n-3)%2 == 1 {
		words += "w"
	}
	return `{"model":"m","messages":[{"role":"user","content":"` + words + `"}],"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
}

func TestLongPrompt(t *testing.T) {
	for _, n := range []int{3, 4, 5, 10, 256} {
		rec := do(t, newEngine(echo.Options{}), "POST", "/v1/chat/completions", longPrompt(n, false))
		var c chatCompletion
		decode(t, rec.Body.Bytes(), &c)
		if c.Usage.CompletionTokens != n {
			t.Errorf("longPrompt(%d) answers %d tokens", n, c.Usage.CompletionTokens)
		}
	}
}

func TestPacing(t *testing.T) {
	const n, tps = 20, 100.0
	srv := httptest.NewServer(newEngine(echo.Options{TokensPerSecond: tps}))
	defer srv.Close()
	start := time.Now()
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(longPrompt(n, true)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if s := parseStream(t, events, true); s.tokens != n {
		t.Fatalf("%d tokens, want %d", s.tokens, n)
	}
	want := time.Duration(n / tps * float64(time.Second))
	if elapsed < want*9/10 || elapsed > want+2*time.Second {
		t.Errorf("%d tokens at %v/s took %v, want about %v", n, tps, elapsed, want)
	}
	// Unpaced, the same stream is much faster.
	start = time.Now()
	do(t, newEngine(echo.Options{}), "POST", "/v1/chat/completions", longPrompt(n, true))
	if fast := time.Since(start); fast > want/2 {
		t.Errorf("an unpaced stream took %v", fast)
	}
}

// TestCancel: a client that goes away ends a slow stream at once.
func TestCancel(t *testing.T) {
	for _, tps := range []float64{0.25, 0} {
		done := make(chan struct{})
		var tokens atomic.Int64
		h := newEngine(echo.Options{TokensPerSecond: tps, MaxTokens: 1 << 20})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(done)
			h.ServeHTTP(&countingWriter{ResponseWriter: w, n: &tokens}, r)
		}))
		ctx, cancel := context.WithCancel(context.Background())
		// At 0.25 tokens/s a token is due every 4s; unpaced,
		// 200000 tokens are more than the socket buffers hold unread.
		n := 1000
		if tps == 0 {
			n = 200000
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(longPrompt(n, true)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if _, err := br.ReadString('\n'); err != nil { // the role event
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("tps %v: the handler still runs 2s after the client went away", tps)
		}
		if got := tokens.Load(); got >= int64(n) {
			t.Errorf("tps %v: the handler wrote all %d events", tps, got)
		}
		srv.Close()
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.ResponseWriter.Write(p)
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func TestFailAfterTokens(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fail, n    int
		wantTokens int
		path       string
	}{
		{"mid-stream", 5, 20, 5, "/v1/chat/completions"},
		{"first token", 1, 20, 1, "/v1/chat/completions"},
		{"shorter answer", 50, 10, 10, "/v1/chat/completions"},
		{"legacy completion", 3, 20, 3, "/v1/completions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(newEngine(echo.Options{FailAfterTokens: tc.fail}))
			defer srv.Close()
			body := longPrompt(tc.n, true)
			if tc.path == "/v1/completions" {
				body = `{"prompt":"` + strings.Repeat("w ", tc.n) + `","stream":true}`
			}
			resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			events, err := readSSE(resp.Body)
			if err == nil {
				t.Fatalf("the stream ended cleanly: %q", events)
			}
			tokens := 0
			for _, ev := range events {
				if ev == "[DONE]" || strings.Contains(ev, `"finish_reason":"`) {
					t.Fatalf("an aborted stream sent %s", ev)
				}
				if strings.Contains(ev, `"content":`) || strings.Contains(ev, `"text":"`) {
					tokens++
				}
			}
			if tokens != tc.wantTokens {
				t.Errorf("%d tokens before the abort, want %d", tokens, tc.wantTokens)
			}
			// Unstreamed answers are whole.
			rec := do(t, newEngine(echo.Options{FailAfterTokens: tc.fail}), "POST", "/v1/chat/completions", longPrompt(tc.n, false))
			if rec.Code != 200 {
				t.Errorf("unstreamed: %d %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestLogsNoContents(t *testing.T) {
	var buf bytes.Buffer
	h := newEngine(echo.Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	secret := "attack at dawn"
	do(t, h, "POST", "/v1/chat/completions", `{"model":"secret-model","messages":[{"role":"user","content":"`+secret+`"}]}`)
	do(t, h, "POST", "/v1/chat/completions", `{"model":"secret-model","messages":[{"role":"user","content":"`+secret+`"}],"stream":true}`)
	do(t, h, "POST", "/v1/completions", `{"prompt":"`+secret+`"}`)
	do(t, h, "POST", "/v1/embeddings", `{"input":7, "x":"`+secret+`"}`)
	out := buf.String()
	if strings.Contains(out, "attack") || strings.Contains(out, "secret") {
		t.Errorf("the log shows request contents:\n%s", out)
	}
	for _, want := range []string{"method=POST path=/v1/chat/completions status=200", "path=/v1/completions status=200", "path=/v1/embeddings status=400"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("%d log lines, want 4:\n%s", n, out)
	}
}

// discard is a flushable writer that keeps nothing.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Flush()                      {}

// BenchmarkStream256 streams a 256-token chat answer, unpaced, straight
// through the handler and over a loopback HTTP connection; it reports tokens/s.
func BenchmarkStream256(b *testing.B) {
	h := echo.New(echo.Options{})
	body := longPrompt(256, true)
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
			h.ServeHTTP(&discard{h: http.Header{}}, req)
		}
		b.ReportMetric(float64(256*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("loopback", func(b *testing.B) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			events, err := readSSE(resp.Body)
			resp.Body.Close()
			if err != nil || len(events) != 256+3 {
				b.Fatalf("%d events, %v", len(events), err)
			}
		}
		b.ReportMetric(float64(256*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
}
