# Hushflow developer commands. `make test` is the one test command; see
# docs/testing.md.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go

.PHONY: test run build bench fmt vet lint ui

## test: everything the tests need (PostgreSQL, browser prerequisites), then vet, gofmt check and go test -race
test:
	@scripts/test.sh

## run: the server on this machine (embedded SQLite unless HUSHFLOW_DATABASE_URL is set)
run:
	$(GO) run ./cmd/hushflow serve

## build: bin/hushflow, its version from git describe (hushflow version)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
build:
	$(GO) build -ldflags "-X github.com/hushflow/hushflow/internal/buildinfo.version=$(VERSION)" -o bin/hushflow ./cmd/hushflow

## bench: run the benchmarks of redact, engine, secrets and the end-to-end flow beside their
## baselines (PostgreSQL as for make test), print the summary table and write it to docs/performance.md
bench:
	@source scripts/ensure-postgres.sh; ensure_postgres; \
	GO=$(GO) $(GO) run ./bench/cmd/report
# The report also runs the flows throughput test (HUSHFLOW_BENCH=1 go test
# -run TestFlowThroughput -v ./flows/) and passes its log lines through.

## fmt: gofmt -w every Go file
fmt:
	gofmt -l -w .

## vet: go vet ./...
vet:
	$(GO) vet ./...

## lint: gofmt check + go vet
lint: vet
	@out=$$(gofmt -l . | grep -v -E '(^|/)(node_modules|vendor)/' || true); \
	if [[ -n $$out ]]; then echo "these files need gofmt (run make fmt):"; echo "$$out"; exit 1; fi

## ui: rebuild the web UI into web/dist (committed, embedded by package web). npm install, not
## npm ci: npm 11 writes a lock without the other platforms' optional rollup packages and
## then refuses it in npm ci; install keeps the locked versions.
ui:
	cd web/ui && npm install --no-audit --no-fund && npm run build
