package echo

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// completionRequest is the part of a legacy completion request the engine
// reads; every other field is accepted and ignored.
type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	MaxTokens     *int            `json:"max_tokens"`
	N             *int            `json:"n"`
}

// decodePrompt is the text of a prompt: a string, or an array of one string.
func decodePrompt(raw json.RawMessage) (string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", badRequest("prompt", "missing_prompt", "prompt is missing; send a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 1 {
		return "", badRequest("prompt", "invalid_type",
			"prompt must be a string or an array of exactly one string (the echo engine takes no token arrays or batches)")
	}
	return list[0], nil
}

// The text_completion object, whole and as a stream chunk.
type textCompletion struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []textChoice    `json:"choices"`
	Usage   json.RawMessage `json:"usage,omitempty"`
}

type textChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// completion serves POST /v1/completions.
func (e *engine) completion(w http.ResponseWriter, r *http.Request, body []byte) {
	var req completionRequest
	if aerr := decodeJSON(body, &req); aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	prompt, aerr := decodePrompt(req.Prompt)
	if aerr == nil {
		aerr = checkN(req.N)
	}
	if aerr == nil {
		aerr = checkLimit("max_tokens", req.MaxTokens)
	}
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	a := e.answer(prompt, countTokens(prompt), req.MaxTokens)
	id, created, model := requestID("cmpl-echo-", body), e.opts.Now().Unix(), e.modelName(req.Model)
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	obj := func(choices []textChoice, u json.RawMessage) textCompletion {
		return textCompletion{ID: id, Object: "text_completion", Created: created, Model: model, Choices: choices, Usage: u}
	}
	if !req.Stream {
		writeJSON(w, http.StatusOK, obj([]textChoice{{Text: a.text(), FinishReason: &a.finish}}, streamUsage(true, &a.usage)))
		return
	}
	e.stream(w, r, a, includeUsage, func(event int, token string) any {
		switch event {
		case eventToken:
			return obj([]textChoice{{Text: token}}, streamUsage(includeUsage, nil))
		case eventFinish:
			return obj([]textChoice{{FinishReason: &a.finish}}, streamUsage(includeUsage, nil))
		case eventUsage:
			return obj([]textChoice{}, streamUsage(true, &a.usage))
		}
		return nil // a legacy stream has no start event
	})
}
