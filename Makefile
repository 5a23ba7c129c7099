# deployment-tracker. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

include hack/versions.env

MODULE      := github.com/deployment-tracker/deployment-tracker
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X $(MODULE)/internal/version.Version=$(VERSION)
# The flags of the Dockerfile's builder stage: a static, reproducible binary.
BUILD_FLAGS := -trimpath -ldflags '$(LDFLAGS)'
OUT         ?= bin/deployment-tracker
IMG         ?= deployment-tracker:$(VERSION)

# The local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) is built once
# per version into a cache outside the checkout, so clean clones reuse it.
CACHE_DIR   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/deployment-tracker
K8S_BIN_DIR ?= $(CACHE_DIR)/k8s/$(KUBERNETES_VERSION)
export K8S_BIN_DIR
export K8S_BIN_WORK ?= $(CACHE_DIR)/k8s-build
export KUBEBUILDER_ASSETS := $(K8S_BIN_DIR)

# Packages whose tests also run under the race detector (the concurrent core).
RACE_PKGS := ./internal/dispatch/ ./internal/tracker/ ./webhook/ ./internal/githubtest/ ./internal/sink/...

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the static binary into bin/ (CGO_ENABLED=0, -trimpath, version stamped), as the Dockerfile does.
	CGO_ENABLED=0 go build $(BUILD_FLAGS) -o $(OUT) ./cmd/deployment-tracker
	@echo "built $(OUT) ($(VERSION))"

.PHONY: k8s-bin
k8s-bin: ## Build the local control plane into $(K8S_BIN_DIR) (cold: 10-20 minutes; then a no-op).
	hack/k8s-bin.sh

.PHONY: test
test: k8s-bin lint ## Run every test: unit, race, manifests, and end to end against a real control plane.
	go test -count=1 ./...
	go test -count=1 -race $(RACE_PKGS)

.PHONY: unit
unit: ## Run the tests that need no control plane (the e2e package skips itself without binaries).
	KUBEBUILDER_ASSETS=/nonexistent go test -count=1 ./...

.PHONY: e2e
e2e: k8s-bin ## Run the end-to-end suite only, verbosely.
	go test -count=1 -v ./internal/e2e/

.PHONY: demo
demo: k8s-bin ## Run the tracker on a local control plane with sample workloads; records are printed as posted.
	go run ./hack/demo

.PHONY: bench
bench: k8s-bin ## Run the benchmarks and write docs/benchmarks.md.
	hack/bench.sh

.PHONY: lint
lint: ## gofmt and go vet.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [[ -n "$$unformatted" ]]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...

.PHONY: manifests
manifests: ## Check deploy/ and certs/: decode into typed objects and cross-check them.
	go test -count=1 ./deploy/... ./certs/...

.PHONY: docker-build
docker-build: ## Build the container image $(IMG) (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: clean
clean: ## Remove bin/ (the control plane cache in $(CACHE_DIR) stays).
	rm -rf bin/
