package node

import (
	"strings"
	"testing"

	"github.com/sworn-dev/sworn/receipt"
)

// TestUsageScanner: the token counts are found however the engine's
// answer is cut into writes, in an SSE stream (the last event with usage)
// and in a whole JSON answer; a line over 64 KiB is not misread.
func TestUsageScanner(t *testing.T) {
	sse := "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n" +
		"data: [DONE]\n\n"
	whole := `{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":6}}`
	long := "data: {\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":8},\"pad\":\"" + strings.Repeat("x", 70000) + "\"}\n\n"
	for _, tc := range []struct {
		name, in string
		want     receipt.Tokens
	}{
		{"sse", sse, receipt.Tokens{Prompt: 3, Completion: 4}},
		{"whole", whole, receipt.Tokens{Prompt: 5, Completion: 6}},
		{"no usage", "data: {\"choices\":[]}\n\ndata: [DONE]\n\n", receipt.Tokens{}},
		{"usage null, then spaced", "data: {\"usage\":null}\n\ndata: {\"usage\" : {\"prompt_tokens\":9,\"completion_tokens\":1}}\n\n", receipt.Tokens{Prompt: 9, Completion: 1}},
		{"line over 64 KiB", long, receipt.Tokens{}},
	} {
		for _, step := range []int{1, 3, 7, 64, 1 << 20} {
			var u usageScanner
			for in := tc.in; len(in) > 0; {
				k := min(step, len(in))
				u.Write([]byte(in[:k]))
				in = in[k:]
			}
			if u.tokens != tc.want {
				t.Errorf("%s in writes of %d: %+v, want %+v", tc.name, step, u.tokens, tc.want)
			}
		}
	}
}
