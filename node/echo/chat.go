package echo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// chatRequest is the part of a chat completion request the engine reads;
// every other field (temperature, top_p, tools, ...) is accepted and ignored.
type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	N                   *int           `json:"n"`
}

// chatMessage is one message; its content is decoded by messageText.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// chatInput is a decoded, checked chat request.
type chatInput struct {
	model        string
	stream       bool
	includeUsage bool
	limit        *int
	lastUser     string // text of the last user message
	promptTokens int    // tokens of every message's text
}

var chatRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

// decodeChat decodes and checks a chat completion request body.
func decodeChat(body []byte) (chatInput, *apiError) {
	var req chatRequest
	if err := decodeJSON(body, &req); err != nil {
		return chatInput{}, err
	}
	if len(req.Messages) == 0 {
		return chatInput{}, badRequest("messages", "missing_messages", "messages is missing or empty; send at least one message")
	}
	if err := checkN(req.N); err != nil {
		return chatInput{}, err
	}
	in := chatInput{model: req.Model, stream: req.Stream, limit: req.MaxTokens}
	if err := checkLimit("max_tokens", req.MaxTokens); err != nil {
		return chatInput{}, err
	}
	if req.MaxCompletionTokens != nil {
		if err := checkLimit("max_completion_tokens", req.MaxCompletionTokens); err != nil {
			return chatInput{}, err
		}
		in.limit = req.MaxCompletionTokens
	}
	in.includeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	for i, m := range req.Messages {
		if !chatRoles[m.Role] {
			return chatInput{}, badRequest(fmt.Sprintf("messages[%d].role", i), "invalid_value",
				"messages[%d].role is %q; it must be one of system, developer, user, assistant, tool, function", i, m.Role)
		}
		text, err := messageText(i, m.Content)
		if err != nil {
			return chatInput{}, err
		}
		in.promptTokens += countTokens(text)
		if m.Role == "user" {
			in.lastUser = text
		}
	}
	return in, nil
}

// messageText is the text of a message's content: a string, null or absent
// (no text), or an array of content parts whose "text" parts are joined;
// parts of other types (images, audio, files) carry no text for the engine.
func messageText(i int, raw json.RawMessage) (string, *apiError) {
	param := fmt.Sprintf("messages[%d].content", i)
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badRequest(param, "invalid_type", "%s is not a valid JSON string: %v", param, err)
		}
		return s, nil
	case '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", badRequest(param, "invalid_type", "%s must be an array of content parts {type, text}: %v", param, err)
		}
		var b strings.Builder
		for j, p := range parts {
			switch {
			case p.Type == "":
				return "", badRequest(fmt.Sprintf("%s[%d].type", param, j), "missing_type", "%s[%d] has no type", param, j)
			case p.Type != "text":
				continue
			case p.Text == nil:
				return "", badRequest(fmt.Sprintf("%s[%d].text", param, j), "missing_text", "%s[%d] is a text part without text", param, j)
			}
			b.WriteString(*p.Text)
		}
		return b.String(), nil
	default:
		return "", badRequest(param, "invalid_type", "%s must be a string or an array of content parts", param)
	}
}

// decodeJSON decodes one JSON object from body into v, naming the field of a
// type mismatch and refusing trailing data.
func decodeJSON(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return badRequest(typeErr.Field, "invalid_type", "%s has the wrong type: got JSON %s, want %s", typeErr.Field, typeErr.Value, typeErr.Type)
		}
		return badRequest("", "invalid_json", "the request body is not a JSON object: %v", err)
	}
	if dec.More() {
		return badRequest("", "invalid_json", "the request body has data after its JSON object")
	}
	return nil
}

// checkN refuses n other than 1: the engine gives one choice.
func checkN(n *int) *apiError {
	if n != nil && *n != 1 {
		return badRequest("n", "unsupported_value", "n is %d; the echo engine gives exactly one choice (n=1)", *n)
	}
	return nil
}

// The chat.completion object.
type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   usage        `json:"usage"`
}

type chatChoice struct {
	Index        int       `json:"index"`
	Message      chatReply `json:"message"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

type chatReply struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

// The chat.completion.chunk object.
type chatChunk struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []chatChunkChoice `json:"choices"`
	Usage   json.RawMessage   `json:"usage,omitempty"`
}

type chatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        chatDelta `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// chat serves POST /v1/chat/completions.
func (e *engine) chat(w http.ResponseWriter, r *http.Request, body []byte) {
	in, aerr := decodeChat(body)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	a := e.answer(in.lastUser, in.promptTokens, in.limit)
	id, created, model := requestID("chatcmpl-echo-", body), e.opts.Now().Unix(), e.modelName(in.model)
	if !in.stream {
		writeJSON(w, http.StatusOK, chatCompletion{
			ID: id, Object: "chat.completion", Created: created, Model: model,
			Choices: []chatChoice{{Message: chatReply{Role: "assistant", Content: a.text()}, FinishReason: a.finish}},
			Usage:   a.usage,
		})
		return
	}
	e.stream(w, r, a, in.includeUsage, func(event int, token string) any {
		c := chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			Choices: []chatChunkChoice{{}}, Usage: streamUsage(in.includeUsage, nil)}
		switch event {
		case eventStart:
			c.Choices[0].Delta.Role = "assistant"
		case eventToken:
			c.Choices[0].Delta.Content = &token
		case eventFinish:
			c.Choices[0].FinishReason = &a.finish
		case eventUsage:
			c.Choices, c.Usage = []chatChunkChoice{}, streamUsage(true, &a.usage)
		}
		return c
	})
}

// modelName is the model a request names, or the engine's own.
func (e *engine) modelName(requested string) string {
	if requested == "" {
		return e.opts.Model
	}
	return requested
}
