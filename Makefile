# geoscope — developer entry points. `make test` is what CI runs.

GO       ?= go
OPA      := $(GO) tool opa
PKGS     := ./...
REGO     := policies internal/opacompare/policy

.PHONY: all build test vet gofmt rego-fmt rego-check rego-test registry-check gotest bench bench-vs-opa load bundles run

all: build

build:
	$(GO) build -o bin/geoscope ./cmd/geoscope

## test: everything CI checks — go vet, opa fmt/check/test, go test -race.
test: gofmt vet rego-fmt rego-check rego-test registry-check gotest

gofmt:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

rego-fmt:
	$(OPA) fmt --list --fail $(REGO)

rego-check:
	$(OPA) check --strict $(REGO)

rego-test:
	$(OPA) test policies bundles/registry
	$(OPA) test internal/opacompare/policy

## registry-check: the example registry passes the registry validation rules
## (a bad order fails review here; servers also refuse it at activation).
registry-check:
	$(OPA) eval --fail-defined -d policies -d bundles/registry --format pretty 'data.geoscope.registry.violations[v]'

gotest:
	$(GO) test -race -count=1 $(PKGS)

## bench: Go benchmarks of the decision path (see docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/...

## bench-vs-opa: geoscope's /v1/admission side by side with stock OPA (built
## from this module) answering the same question with an expert's
## pre-indexed policy; prints req/s ratios and p99s (docs/benchmarks.md).
##   make bench-vs-opa [VSOPA_FLAGS="-orders 100000 -n 20000 -c 16 -rounds 3"]
VSOPA_FLAGS ?=
bench-vs-opa:
	$(GO) run ./internal/opacompare $(VSOPA_FLAGS)

## load: bounded loopback load runs against the real server binary
## (throughput; memory and fairness under maximum-size rosters), then the
## side-by-side run against stock OPA (bench-vs-opa).
load:
	$(GO) test -count=1 -run '^TestLoad(Memory)?$$' ./tests -load -v
	$(GO) run ./internal/opacompare $(VSOPA_FLAGS)

## bundles: build the policy and registry bundles with `opa build`, signed.
##   make bundles SIGNING_KEY=bundles/keys/dev-es256.pem [SIGNING_ALG=ES256] [REVISION=...]
SIGNING_ALG ?= ES256
REVISION    ?= $(shell git describe --always --dirty 2>/dev/null || date -u +%Y%m%dT%H%M%SZ)
DIST        ?= dist
bundles:
	@test -n "$(SIGNING_KEY)" || { echo "usage: make bundles SIGNING_KEY=key.pem [SIGNING_ALG=ES256] [REVISION=rev]" >&2; exit 2; }
	mkdir -p $(DIST)
	$(OPA) build -b policies --ignore '*_test.rego' --revision "$(REVISION)" \
		--signing-key $(SIGNING_KEY) --signing-alg $(SIGNING_ALG) -o $(DIST)/policies.tar.gz
	$(OPA) build -b bundles/registry --revision "$(REVISION)" \
		--signing-key $(SIGNING_KEY) --signing-alg $(SIGNING_ALG) -o $(DIST)/registry.tar.gz

## run: the server on embedded defaults (README's run command).
run:
	$(GO) run ./cmd/geoscope serve
