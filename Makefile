# sworn — build, test, benchmark and fuzz.
GO       ?= go
FUZZTIME ?= 20000x
BENCHTIME ?= 1s

.PHONY: build test check unit interop fuzz bench clean

## build: the sworn binary, in bin/sworn
build:
	$(GO) build -o bin/sworn ./cmd/sworn

## test: what CI runs — static checks, every test, and a brief run of every fuzz target
test: check unit interop
	$(MAKE) fuzz FUZZTIME=3000x

## check: gofmt and go vet
check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## unit: every test
unit:
	$(GO) test -count=1 ./...

## interop: the wire package against an independent OHTTP implementation
## (openpcc/ohttp); the seal package against Tink (tink-go); the echo engine and sworn (proxy and Transport) against
## the official openai-go SDK, each in a module of its own so the main module
## does not need them; and the npm openai package against sworn up
# -mod=mod: each module takes the main module's requirements as they are now
# (it replaces sworn with this tree), without a go mod tidy after each change.
interop:
	for m in wire/interop wire/bhttp/interop seal/interop node/echo/interop client/interop; do \
		(cd $$m && $(GO) vet -mod=mod ./... && $(GO) test -mod=mod -count=1 ./...) || exit 1; \
	done
	./scripts/npm-openai.sh

## fuzz: every fuzz target for FUZZTIME each (executions, default 20000x; a duration such as 30s works too)
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

## bench: every benchmark
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./...

clean:
	rm -rf bin
