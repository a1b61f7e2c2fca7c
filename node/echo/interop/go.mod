module github.com/sworn-dev/sworn/node/echo/interop

go 1.26.8

replace github.com/sworn-dev/sworn => ../../..

require (
	github.com/openai/openai-go/v3 v3.102.0
	github.com/sworn-dev/sworn v0.0.0-00010101000000-000000000000
)

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/tidwall/gjson v1.20.0 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.1 // indirect
	github.com/tidwall/sjson v1.2.5 // indirect
)
