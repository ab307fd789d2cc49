# geoscope — developer entry points. `make test` is what CI runs.

GO       ?= go
OPA      := $(GO) tool opa
PKGS     := ./...
REGO     := policies

.PHONY: all build test vet rego-fmt rego-check rego-test gotest bench run

all: build

build:
	$(GO) build -o bin/geoscope ./cmd/geoscope

## test: everything CI checks — go vet, opa fmt/check/test, go test -race.
test: vet rego-fmt rego-check rego-test gotest

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

## run: the server on embedded defaults (README's run command).
run:
	$(GO) run ./cmd/geoscope serve
