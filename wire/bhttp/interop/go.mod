// Module interop tests wire/bhttp against github.com/openpcc/bhttp, in a
// module of its own so that its dependencies (quic-go among them) stay out
// of the sworn module. Run: cd wire/bhttp/interop && go test ./...
module github.com/sworn-dev/sworn/wire/bhttp/interop

go 1.26.8

require (
	github.com/openpcc/bhttp v0.0.37
	github.com/sworn-dev/sworn v0.0.0
)

require (
	github.com/quic-go/quic-go v0.56.0 // indirect
	golang.org/x/net v0.47.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace github.com/sworn-dev/sworn => ../../..
