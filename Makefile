# geoscope — developer entry points. `make test` is what CI runs.

GO       ?= go
OPA      := $(GO) tool opa
PKGS     := ./...
# Rego: the default policy bundle and the engine's built-in registry
# validation rules (embedded in the binary, not part of any bundle).
REGO     := policies engine/registry
# The policy stock OPA answers with in the side-by-side benchmark.
COMPARE_REGO := internal/opacompare/policy
# JSON schemas of the policy input and the registry (opa check --schema).
SCHEMAS  := docs/schemas
# Worked extension examples: each directory is copied into a policy bundle
# next to the default policy, and is checked and tested with it.
EXTENSIONS := $(wildcard docs/extensions/*/)
# An extension that exempts everyone and withholds every order: the default
# policy's tests must pass beside it too (they test its own answers).
ACTS_ON_NOTHING := tests/testdata/extension-acts-on-nothing

.PHONY: all build test vet gofmt rego-fmt rego-check rego-test registry-check schema-check gotest bench bench-vs-opa load bundles run image

all: build

## build: the binary, stamped with the module version and git revision
## (`geoscope version`), whatever GOFLAGS says.
build:
	$(GO) build -buildvcs=auto -o bin/geoscope ./cmd/geoscope

## test: everything CI checks — go vet, opa fmt/check/test, go test -race.
test: gofmt vet rego-fmt rego-check rego-test registry-check schema-check gotest

gofmt:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## vet: also for macOS (the packages and their tests), and a Windows build
## of the binary: the journal's flush and locks, and the test helpers'
## process handling, are per system (engine/ledger/*_linux.go, *_unix.go,
## *_other.go). macOS takes the files every Unix but Linux takes, so the
## BSDs are not vetted apart: each system costs a build of every
## dependency for it on an empty build cache (3-4 minutes here).
vet:
	$(GO) vet $(PKGS)
	GOOS=darwin GOARCH=arm64 $(GO) vet $(PKGS)
	GOOS=windows $(GO) build -o /dev/null ./cmd/geoscope

rego-fmt:
	$(OPA) fmt --list --fail $(REGO) $(COMPARE_REGO) docs/extensions $(ACTS_ON_NOTHING)

## rego-check: strict compile with the input type-checked against the
## schema, for the default policy, with each extension example, and with
## all of them at once (extensions must combine in one bundle).
rego-check:
	$(OPA) check --strict --schema $(SCHEMAS) $(REGO)
	$(OPA) check --strict --schema $(SCHEMAS) policies
	@set -e; for d in $(EXTENSIONS); do \
		echo "$(OPA) check --strict --schema $(SCHEMAS) $(REGO) $$d"; \
		$(OPA) check --strict --schema $(SCHEMAS) $(REGO) $$d; \
	done
	$(OPA) check --strict --schema $(SCHEMAS) $(REGO) $(EXTENSIONS)
	$(OPA) check --strict --schema $(SCHEMAS) $(REGO) $(ACTS_ON_NOTHING)
	$(OPA) check --strict $(COMPARE_REGO)

## rego-test: the default policy's tests, then every extension example's
## tests run with the default policy (and its tests, which must pass
## whatever extension is installed), each example alone and all of them at
## once (each example's tests assert only what it adds).
rego-test:
	$(OPA) test $(REGO) bundles/registry
	@set -e; for d in $(EXTENSIONS); do \
		echo "$(OPA) test $(REGO) $$d"; \
		$(OPA) test $(REGO) $$d; \
	done
	$(OPA) test $(REGO) $(EXTENSIONS)
	$(OPA) test $(REGO) $(ACTS_ON_NOTHING)
	$(OPA) test $(COMPARE_REGO)

## registry-check: the example registry passes the registry validation rules,
## the built-in ones and any the policy bundle adds (a bad order fails review
## here; servers also refuse it at activation). Then its warnings, which do
## not fail the check (a subdivision jurisdiction needs a City database).
## Each set is compiled on its own, as the server compiles it: a rule of
## the policy bundle can neither silence the built-in ones nor call their
## helpers.
registry-check:
	$(OPA) eval --fail-defined -d engine/registry -d bundles/registry --format pretty 'data.geoscope.registry.violations[v]'
	$(OPA) eval --fail-defined -d policies -d bundles/registry --format pretty 'data.geoscope.registry.violations[v]'
	$(OPA) eval -d engine/registry -d bundles/registry --format pretty 'warnings := data.geoscope.registry.warnings'
	@# geoscope loads the bundles as a server does from files: a name given
	@# twice in one object of a data.json, which opa eval reads as the last
	@# one, is refused (exit 2).
	echo '{"meeting": {"id": "registry-check", "host": {"account_id": "registry-check"}, "participants": []}}' | \
		$(GO) run ./cmd/geoscope decide --bundle policies --bundle bundles/registry > /dev/null

## schema-check: the example registry matches the registry schemas (the
## negative checks, a misspelt field failing opa check --schema, are
## tests/policy_schema_test.go).
schema-check:
	$(OPA) eval --fail-defined --format pretty -d bundles/registry \
		-d schemas.authorities:$(SCHEMAS)/registry/authorities.json \
		-d schemas.orders:$(SCHEMAS)/registry/orders.json \
		'some root in ["authorities", "orders"]; [ok, errors] := json.match_schema(data[root], data.schemas[root]); not ok'

# -timeout: the container image test compiles a static binary inside the
# image build, which takes minutes on a cold build cache.
gotest:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

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
## The tests are left out of the policy bundle: they are for CI, not for
## servers. (A bundle signed with its tests included loads too; the server
## verifies them and leaves them out of the activated policy.)
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

## image: the container image, built offline with podman (see Containerfile):
##   make image [IMAGE=geoscope:dev] [VERSION=...]
IMAGE   ?= localhost/geoscope:dev
VERSION ?= $(REVISION)
image:
	$(GO) list -deps ./cmd/geoscope >/dev/null # the modules the build needs, into the module cache
	podman build --isolation chroot --format docker \
		--build-arg BUILDER_IMAGE=scratch --build-arg GOPROXY=off --build-arg VERSION=$(VERSION) \
		-v "$$($(GO) env GOROOT):/usr/local/go:ro" \
		-v "$$($(GO) env GOMODCACHE):/go/pkg/mod:ro" \
		-v "$$($(GO) env GOCACHE):/root/.cache/go-build" \
		-f Containerfile -t $(IMAGE) .
