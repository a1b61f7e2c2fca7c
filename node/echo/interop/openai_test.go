package interop

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sworn-dev/sworn/node/echo"
)

func client(t *testing.T, o echo.Options) openai.Client {
	t.Helper()
	srv := httptest.NewServer(echo.New(o))
	t.Cleanup(srv.Close)
	return openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
}

var params = openai.ChatCompletionNewParams{
	Model: "echo",
	Messages: []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("be brief"),
		openai.UserMessage("Hello, SDK world!"),
	},
}

func TestChat(t *testing.T) {
	c := client(t, echo.Options{})
	ctx := context.Background()
	got, err := c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Choices) != 1 || got.Choices[0].Message.Content != "echo: Hello, SDK world!" || got.Choices[0].FinishReason != "stop" || got.Model != "echo" {
		t.Fatalf("chat.completion: %s", got.RawJSON())
	}
	if got.Usage.PromptTokens != 10 || got.Usage.CompletionTokens != 10 || got.Usage.TotalTokens != 20 {
		t.Errorf("usage %+v", got.Usage)
	}

	p := params
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(ctx, p)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		if !acc.AddChunk(stream.Current()) {
			t.Fatalf("the accumulator refuses chunk %d: %s", chunks, stream.Current().RawJSON())
		}
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks != 1+10+1+1 {
		t.Errorf("%d chunks", chunks)
	}
	if acc.Choices[0].Message.Content != got.Choices[0].Message.Content || acc.Choices[0].FinishReason != "stop" || acc.Usage.TotalTokens != got.Usage.TotalTokens {
		t.Errorf("accumulated %+v, want %+v", acc.ChatCompletion.Choices, got.Choices)
	}
}

func TestStreamAbort(t *testing.T) {
	c := client(t, echo.Options{FailAfterTokens: 3})
	stream := c.Chat.Completions.NewStreaming(context.Background(), params)
	n := 0
	for stream.Next() {
		n++
	}
	if stream.Err() == nil {
		t.Fatalf("an aborted stream ended without an error after %d chunks", n)
	}
}

func TestCompletion(t *testing.T) {
	c := client(t, echo.Options{})
	got, err := c.Completions.New(context.Background(), openai.CompletionNewParams{
		Model:     "echo",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("one two three")},
		MaxTokens: openai.Int(5),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Choices[0].Text != "echo: one " || got.Choices[0].FinishReason != "length" || got.Usage.CompletionTokens != 5 {
		t.Errorf("%s", got.RawJSON())
	}
	stream := c.Completions.NewStreaming(context.Background(), openai.CompletionNewParams{
		Model:  "echo",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("one two three")},
	})
	var text strings.Builder
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			text.WriteString(ch.Text)
		}
	}
	if err := stream.Err(); err != nil || text.String() != "echo: one two three" {
		t.Errorf("stream %q, %v", text.String(), err)
	}
}

func TestEmbeddings(t *testing.T) {
	c := client(t, echo.Options{})
	var vecs [2][]float64
	for i, f := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		got, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
			Model:          "echo",
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
			EncodingFormat: f,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Data) != 2 || len(got.Data[0].Embedding) != echo.DefaultDimensions || got.Usage.PromptTokens != 2 {
			t.Fatalf("%s: %s", f, got.RawJSON())
		}
		vecs[i] = got.Data[0].Embedding
	}
	for i := range vecs[0] {
		if float32(vecs[0][i]) != float32(vecs[1][i]) {
			t.Errorf("float and base64 differ: %v %v", vecs[0], vecs[1])
		}
	}
}

func TestModelsAndErrors(t *testing.T) {
	c := client(t, echo.Options{Model: "m1"})
	page, err := c.Models.List(context.Background())
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != "m1" {
		t.Fatalf("models %+v, %v", page, err)
	}
	if m, err := c.Models.Get(context.Background(), "m1"); err != nil || m.ID != "m1" {
		t.Errorf("model %+v, %v", m, err)
	}
	p := params
	p.N = openai.Int(2)
	_, err = c.Chat.Completions.New(context.Background(), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "n" || apiErr.Code != "unsupported_value" || apiErr.Type != "invalid_request_error" {
		t.Errorf("n=2: %v", err)
	}
}
