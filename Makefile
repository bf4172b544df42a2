# tend's tasks. `make help` lists them. README.md gives the two a new
# machine needs: `make demo` and `make check` (which .ci/run runs).
GO ?= go
GOLANGCI_LINT_VERSION := v2.15.0
BIN := bin/tend

.PHONY: help build demo test race lint check bench clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## build a static bin/tend
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/tend

demo: ## start the example apps, show them, crash one, show logs, clean up
	./scripts/demo

test: ## run every test
	$(GO) test -count=1 ./...

race: ## run every test with the race detector
	$(GO) test -count=1 -race ./...

lint: ## gofmt, go vet and golangci-lint (installed on first use)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@command -v golangci-lint >/dev/null 2>&1 || test -x "$$($(GO) env GOPATH)/bin/golangci-lint" || \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" golangci-lint run ./...

check: lint race ## everything CI checks: lint, then all tests with the race detector

bench: build ## compare tend with pm2 (installs pm2 with npm into /tmp); see bench/README.md
	./bench/run

clean: ## remove build output
	rm -rf bin
