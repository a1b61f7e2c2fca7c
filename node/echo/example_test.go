package echo_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sworn-dev/sworn/node/echo"
)

func ExampleNew() {
	srv := httptest.NewServer(echo.New(echo.Options{}))
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"echo","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var c struct {
		Choices []struct {
			Message struct{ Content string }
		}
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		panic(err)
	}
	fmt.Println(c.Choices[0].Message.Content, c.Usage.PromptTokens, c.Usage.CompletionTokens)
	// Output: echo: hi 1 4
}
