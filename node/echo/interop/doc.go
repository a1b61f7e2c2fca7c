// Package interop tests the echo engine against OpenAI's official Go SDK
// (github.com/openai/openai-go), in a module of its own so the main module
// does not need the SDK. Run it with
//
//	cd node/echo/interop && go test ./...
package interop
