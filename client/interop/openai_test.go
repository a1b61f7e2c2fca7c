package interop

import (
	"context"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sworn-dev/sworn/up"
)

// TestOpenAIGoThroughSworn: a streaming and a non-streaming chat
// completion with the official SDK, first through the proxy of a whole
// `sworn up` stack, then with the SDK's own HTTP client using sworn's
// Transport (no proxy at all).
func TestOpenAIGoThroughSworn(t *testing.T) {
	ctx := context.Background()
	s, err := up.Start(ctx, up.Config{Dir: t.TempDir(), Nodes: 2, GPUs: 1, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for name, c := range map[string]openai.Client{
		"proxy":     openai.NewClient(option.WithBaseURL(s.ProxyURL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0)),
		"transport": openai.NewClient(option.WithBaseURL("https://sworn.invalid/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0), option.WithHTTPClient(&http.Client{Transport: s.Transport()})),
	} {
		t.Run(name, func(t *testing.T) {
			var raw *http.Response
			got, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    "echo",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello through sworn")},
			}, option.WithResponseInto(&raw))
			if err != nil {
				t.Fatal(err)
			}
			if got.Choices[0].Message.Content != "echo: Hello through sworn" {
				t.Fatalf("answer %q", got.Choices[0].Message.Content)
			}
			if name == "proxy" && len(raw.Header.Get("Sworn-Receipt")) != 32 {
				t.Fatalf("no Sworn-Receipt header: %v", raw.Header)
			}
			stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
				Model:         "echo",
				Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream it")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if acc.Choices[0].Message.Content != "echo: stream it" || acc.Usage.CompletionTokens == 0 {
				t.Fatalf("stream %q usage %+v", acc.Choices[0].Message.Content, acc.Usage)
			}
		})
	}
}
