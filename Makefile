# Tool versions are pinned here; `make tools` installs them into ./bin.
BUF_VERSION              := v1.75.0
PROTOC_GEN_GO_VERSION    := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION      := v0.8.2
GRPCURL_VERSION          := v1.9.4
# promtool of Prometheus v3.16.0 (the Go module numbers Prometheus 3.x as v0.3xx.y)
PROMTOOL_VERSION         := v0.316.0

BIN    := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m
# buf breaking compares the protos with this git ref (on main: the previous commit).
BREAKING_AGAINST ?= $(shell git rev-parse -q --verify main >/dev/null && [ "$$(git rev-parse HEAD)" != "$$(git rev-parse main)" ] && echo main || echo HEAD~1)

.PHONY: all run test test-short bench lint lint-tools lint-deploy generate generate-check tools fmt token

all: lint test

## run: the whole product in one process on embedded stores (EventStoreDB stand-in, FerretDB)
run:
	@echo "building the local stack (the first build on a fresh machine compiles FerretDB and the clients: a few minutes)..." >&2
	@go build -o $(BIN)/cartstack ./cmd/dev/cartstack
	@$(BIN)/cartstack

## test: every test, with the race detector
test:
	go test $(GO_TEST_FLAGS) ./...

## test-short: the fast tests only
test-short:
	go test -short -count=1 ./...

# CARTBENCH_FLAGS adds to cartbench's flags, e.g. CARTBENCH_FLAGS=--json for trends.
CARTBENCH_FLAGS ?=

## bench: benchmarks of the stand-in and of the whole stack through gRPC, each target beside its floor (not in CI; ~10-15 min)
bench:
	go test -run '^$$' -bench . -benchtime 3s ./internal/dev/standin/
	go test -run '^$$' -bench . -benchtime 200x ./internal/command/
	go run ./cmd/dev/cartbench --phases api,ratios,readside --callers 16 --scale 1000,10000,100000 --replay-events 1000000 $(CARTBENCH_FLAGS)

## lint: go.mod tidy, vet, gofmt, staticcheck, buf lint, buf breaking against main, generated code up to date
lint: lint-tools generate-check lint-deploy
	go mod tidy -diff
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1)
	$(BIN)/staticcheck ./...
	$(BIN)/buf lint
	@if git cat-file -e $(BREAKING_AGAINST):buf.yaml 2>/dev/null; then \
		$(BIN)/buf breaking --against '.git#ref=$(BREAKING_AGAINST)'; fi

## lint-deploy: deploy/ files: k8s manifests decoded strictly and hardened, kustomize builds,
## compose loads, Dockerfile pins, alert rules and their unit tests, dashboard PromQL (promtool)
lint-deploy: $(BIN)/promtool
	PROMTOOL=$(BIN)/promtool go test $(GO_TEST_FLAGS) ./deploy/...
	$(BIN)/promtool check rules deploy/prometheus/alerts.yml
	$(BIN)/promtool test rules deploy/prometheus/alerts_test.yml

## generate: Go code from the protos (committed)
generate: lint-tools
	$(BIN)/buf generate

## generate-check: fail if regenerating changes anything
generate-check: generate
	@git diff --exit-code -- proto || (echo 'generated code is stale: run make generate and commit'; exit 1)
	@test -z "$$(git status --porcelain -- proto)" || (git status --porcelain -- proto; echo 'untracked generated files'; exit 1)

## tools: every pinned tool into ./bin, grpcurl for the README walkthrough included
tools: lint-tools $(BIN)/grpcurl

lint-tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/staticcheck

$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/staticcheck:
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(BIN)/promtool:
	GOBIN=$(BIN) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
$(BIN)/grpcurl:
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

## token: a dev bearer token for the local stack: make token SUB=alice [SCOPE='cart:any cart:admin']
.PHONY: token
token:
	@go run ./cmd/dev/carttoken -sub "$(SUB)" -scope "$(SCOPE)"

fmt:
	gofmt -w $$(git ls-files '*.go')
