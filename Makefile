# geoscope — developer entry points. `make test` is what CI runs.

GO       ?= go
OPA      := $(GO) tool opa
PKGS     := ./...
REGO     := policies

.PHONY: all build test vet gofmt rego-fmt rego-check rego-test gotest bench load run

all: build

build:
	$(GO) build -o bin/geoscope ./cmd/geoscope

## test: everything CI checks — go vet, opa fmt/check/test, go test -race.
test: gofmt vet rego-fmt rego-check rego-test gotest

gofmt:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

rego-fmt:
	$(OPA) fmt --list --fail $(REGO)

rego-check:
	$(OPA) check --strict $(REGO)

rego-test:
	$(OPA) test $(REGO)

gotest:
	$(GO) test -race -count=1 $(PKGS)

## bench: Go benchmarks of the decision path (see docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/...

## load: bounded loopback load runs against the real server binary.
load:
	$(GO) test -count=1 -run '^TestLoad$$' ./tests -load -v

## run: the server on embedded defaults (README's run command).
run:
	$(GO) run ./cmd/geoscope serve
