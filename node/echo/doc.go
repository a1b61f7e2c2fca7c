// Package echo is sworn's built-in inference engine: an OpenAI-compatible HTTP
// server that answers deterministically, for trying sworn without a GPU and for
// tests of the node, which forwards decrypted requests to an engine on its
// loopback exactly as it would to vLLM, llama.cpp's server or Ollama.
//
// Endpoints (paths are exact; anything else is 404, a wrong method 405):
//
//	POST /v1/chat/completions  chat.completion, or chat.completion.chunk events with stream:true
//	POST /v1/completions       text_completion (legacy), streamed too
//	POST /v1/embeddings        deterministic unit vectors (8 dimensions unless "dimensions" asks)
//	GET  /v1/models            the one model, Options.Model
//	GET  /v1/models/{model}    that model, or 404
//
// The answer to a chat request is "echo: " followed by the text of the last
// user message; to a legacy completion, "echo: " followed by the prompt. It is
// cut to max_completion_tokens (or max_tokens) tokens, and never exceeds
// Options.MaxTokens; a cut answer has finish_reason "length", a whole one
// "stop". Tokens are those of [Tokenize]; they are both the pieces a stream
// carries (one content delta per token) and what usage counts, so a streamed
// answer reports the same usage as the same request unstreamed.
//
// A stream is "data: {json}" events, flushed one by one: for chat, a
// chat.completion.chunk with delta {"role":"assistant"}, one chunk per token
// with delta {"content":token}, one with an empty delta and the finish_reason,
// then, if stream_options.include_usage, one with empty choices and the usage,
// and last "data: [DONE]". A legacy stream is the same without the role event,
// its chunks text_completion objects with choices [{"text":token}].
//
// Identifiers are derived from the request body ("chatcmpl-echo-", or
// "cmpl-echo-" for legacy completions, and the first 12 hex digits of its
// SHA-256), and created times come from Options.Now, so a response is a pure
// function of the request and the clock. Embeddings are unit vectors drawn
// from SHA-256 of each input, as floats or, with encoding_format "base64",
// little-endian float32s in base64.
//
// Errors have OpenAI's shape, {"error":{"message","type","param","code"}}:
// 400 for malformed JSON or missing or invalid fields, 404 for an unknown path
// or model, 405 for a wrong method, 413 for a body over Options.MaxBody.
//
// The engine never logs request contents: with Options.Logger set it logs one
// line per request with method, path, status and duration, and nothing
// otherwise.
//
// To run it in a test:
//
//	srv := httptest.NewServer(echo.New(echo.Options{}))
//	defer srv.Close()
//	// POST srv.URL+"/v1/chat/completions" with
//	// {"model":"echo","messages":[{"role":"user","content":"hi"}]}
//	// answers "echo: hi".
//
// or as a server on loopback:
//
//	http.ListenAndServe("127.0.0.1:8000", echo.New(echo.Options{TokensPerSecond: 50}))
package echo
