module github.com/sworn-dev/sworn/seal/interop

go 1.26.8

replace github.com/sworn-dev/sworn => ../..

require (
	github.com/sworn-dev/sworn v0.0.0-00010101000000-000000000000
	github.com/tink-crypto/tink-go/v2 v2.9.0
)

require (
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
