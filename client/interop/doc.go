// Package interop runs the official OpenAI Go SDK (openai-go) through
// sworn: through the client's http.RoundTripper and through the proxy that
// `sworn up` and `sworn proxy` serve. It is a module of its own so that the
// main module does not depend on the SDK; CI runs it (make interop).
package interop
