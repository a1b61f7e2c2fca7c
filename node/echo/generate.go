package echo

import (
	"encoding/json"
	"net/http"
	"time"
)

// answerPrefix starts every answer.
const answerPrefix = "echo: "

// usage is OpenAI's token accounting.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// answer is what the engine says to one completion request.
type answer struct {
	tokens []string
	finish string // "stop" or "length"
	usage  usage
}

// text is the whole answer.
func (a answer) text() string {
	n := 0
	for _, t := range a.tokens {
		n += len(t)
	}
	b := make([]byte, 0, n)
	for _, t := range a.tokens {
		b = append(b, t...)
	}
	return string(b)
}

// answer echoes text, cut to the smaller of limit (if set) and MaxTokens.
func (e *engine) answer(text string, promptTokens int, limit *int) answer {
	max := e.opts.MaxTokens
	if limit != nil && *limit < max {
		max = *limit
	}
	toks := Tokenize(answerPrefix + text)
	a := answer{tokens: toks, finish: "stop"}
	if len(toks) > max {
		a.tokens, a.finish = toks[:max], "length"
	}
	a.usage = usage{PromptTokens: promptTokens, CompletionTokens: len(a.tokens), TotalTokens: promptTokens + len(a.tokens)}
	return a
}

// checkLimit checks an optional max_tokens-like field.
func checkLimit(param string, v *int) *apiError {
	if v != nil && *v < 1 {
		return badRequest(param, "invalid_value", "%s is %d; it must be at least 1", param, *v)
	}
	return nil
}

// streamUsage is the usage field of a stream chunk: absent without
// include_usage; with it, null on every chunk but the last, which has u
// (OpenAI's documented behaviour).
func streamUsage(includeUsage bool, u *usage) json.RawMessage {
	switch {
	case u != nil:
		data, _ := json.Marshal(u) // four ints: cannot fail
		return data
	case includeUsage:
		return json.RawMessage("null")
	}
	return nil
}

// streamOptions is the request's stream_options.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// The events of a stream, in order: one start, one per token, one finish and,
// if asked, one usage.
const (
	eventStart = iota
	eventToken
	eventFinish
	eventUsage
)

// chunkFunc builds the JSON object of one stream event; for eventStart it may
// return nil (no such event).
type chunkFunc func(event int, token string) any

// stream sends a as server-sent events built by chunk, then "data: [DONE]",
// flushing after each; it stops when the client goes away, paces tokens by
// TokensPerSecond and aborts as FailAfterTokens says.
func (e *engine) stream(w http.ResponseWriter, r *http.Request, a answer, includeUsage bool, chunk chunkFunc) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	ctx := r.Context()
	var buf []byte
	send := func(v any) bool {
		buf = append(buf[:0], "data: "...)
		if v == nil {
			buf = append(buf, "[DONE]"...)
		} else {
			data, err := json.Marshal(v)
			if err != nil { // only our own types are marshalled; this is a bug
				panic("echo: marshalling a chunk: " + err.Error())
			}
			buf = append(buf, data...)
		}
		buf = append(buf, '\n', '\n')
		if _, err := w.Write(buf); err != nil {
			return false
		}
		rc.Flush() // an unflushable writer still gets every event, at the end
		return ctx.Err() == nil
	}

	if c := chunk(eventStart, ""); c != nil && !send(c) {
		return
	}
	var timer *time.Timer
	if e.opts.TokensPerSecond > 0 {
		timer = time.NewTimer(0)
		defer timer.Stop()
		<-timer.C
	}
	start := time.Now()
	for i, tok := range a.tokens {
		if timer != nil {
			due := start.Add(time.Duration(float64(i+1) / e.opts.TokensPerSecond * float64(time.Second)))
			timer.Reset(time.Until(due))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if !send(chunk(eventToken, tok)) {
			return
		}
		if n := e.opts.FailAfterTokens; n > 0 && (i+1 == n || i+1 == len(a.tokens)) {
			panic(http.ErrAbortHandler)
		}
	}
	if !send(chunk(eventFinish, "")) {
		return
	}
	if includeUsage && !send(chunk(eventUsage, "")) {
		return
	}
	send(nil)
}
