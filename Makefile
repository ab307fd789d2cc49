# geoscope — developer entry points. `make test` is what CI runs.

GO       ?= go
OPA      := $(GO) tool opa
PKGS     := ./...
# Rego: the default policy bundle and the engine's built-in registry
# validation rules (embedded in the binary, not part of any bundle).
REGO     := policies engine/registry
# JSON schemas of the policy input and the registry (opa check --schema).
SCHEMAS  := docs/schemas
# Worked extension examples: each directory is copied into a policy bundle
# next to the default policy, and is checked and tested with it.
EXTENSIONS := $(wildcard docs/extensions/*/)

.PHONY: all build test vet gofmt rego-fmt rego-check rego-test registry-check schema-check gotest bench load bundles run image

all: build

## build: the binary, stamped with the module version and git revision
## (`geoscope version`), whatever GOFLAGS says.
build:
	$(GO) build -buildvcs=auto -o bin/geoscope ./cmd/geoscope

## test: everything CI checks — go vet, opa fmt/check/test, go test -race.
test: gofmt vet rego-fmt rego-check rego-test registry-check schema-check gotest

gofmt:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

rego-fmt:
	$(OPA) fmt --list --fail $(REGO) docs/extensions

## rego-check: strict compile with the input type-checked against the
## schema, for the default policy, with each extension example, and with
## all of them at once (extensions must combine in one bundle).
rego-check:
	$(OPA) check --strict --schema $(SCHEMAS) $(REGO)
	@set -e; for d in $(EXTENSIONS); do \
		echo "$(OPA) check --strict --schema $(SCHEMAS) $(REGO) $$d"; \
		$(OPA) check --strict --schema $(SCHEMAS) $(REGO) $$d; \
	done
	$(OPA) check --strict --schema $(SCHEMAS) $(REGO) $(EXTENSIONS)

## rego-test: the default policy's tests, then every extension example's
## tests run with the default policy (and its tests, which must pass
## whatever extension is installed).
rego-test:
	$(OPA) test $(REGO) bundles/registry
	@set -e; for d in $(EXTENSIONS); do \
		echo "$(OPA) test $(REGO) $$d"; \
		$(OPA) test $(REGO) $$d; \
	done

## registry-check: the example registry passes the registry validation rules,
## the built-in ones and any the policy bundle adds (a bad order fails review
## here; servers also refuse it at activation).
registry-check:
	$(OPA) eval --fail-defined $(addprefix -d ,$(REGO)) -d bundles/registry --format pretty 'data.geoscope.registry.violations[v]'

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

## load: bounded loopback load runs against the real server binary.
load:
	$(GO) test -count=1 -run '^TestLoad$$' ./tests -load -v

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
