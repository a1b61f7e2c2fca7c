module github.com/sworn-dev/sworn/wire/interop

go 1.26.8

replace github.com/sworn-dev/sworn => ../..

require (
	github.com/cloudflare/circl v1.6.1
	github.com/openpcc/ohttp v0.0.37
	github.com/sworn-dev/sworn v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/openpcc/bhttp v0.0.37 // indirect
	github.com/openpcc/twoway v0.0.22 // indirect
	github.com/quic-go/quic-go v0.56.0 // indirect
	go.opentelemetry.io/otel v1.40.0 // indirect
	go.opentelemetry.io/otel/trace v1.40.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
