# Hushflow developer commands. `make test` is the one test command; see
# docs/testing.md.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go

.PHONY: test run build bench fmt vet lint

## test: everything the tests need (PostgreSQL, browser prerequisites), then vet, gofmt check and go test -race
test:
	@scripts/test.sh

## run: the server on this machine (embedded SQLite unless HUSHFLOW_DATABASE_URL is set)
run:
	$(GO) run ./cmd/hushflow serve

## build: bin/hushflow
build:
	$(GO) build -o bin/hushflow ./cmd/hushflow

# Packages whose benchmarks `make bench` runs (those not written yet are skipped).
BENCH_PKGS := ./redact/ ./engine/...

## bench: run the benchmarks and print their output
# Once bench/ lands this becomes `$(GO) run ./bench/cmd/report`, which runs
# the benchmarks against their baselines and writes docs/performance.md.
bench:
	@pkgs=(); for p in $(BENCH_PKGS); do d=$${p%/...}; d=$${d%/}; [[ -d $$d ]] && pkgs+=("$$p"); done; \
	if (( $${#pkgs[@]} == 0 )); then echo "bench: none of $(BENCH_PKGS) exists yet" >&2; exit 1; fi; \
	echo "==> $(GO) test -run '^$$' -bench . -benchtime=1s $${pkgs[*]}"; \
	$(GO) test -run '^$$' -bench . -benchtime=1s "$${pkgs[@]}"; \
	if [[ -n "$${HUSHFLOW_TEST_DATABASE_URL:-}" ]]; then \
	  echo "==> flows: end-to-end runs/s on PostgreSQL (flows/bench_test.go)"; \
	  HUSHFLOW_BENCH=1 $(GO) test -count=1 -run '^TestFlowThroughput$$' -v ./flows/; \
	else echo "bench: set HUSHFLOW_TEST_DATABASE_URL to run the flows throughput benchmark" >&2; fi

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
