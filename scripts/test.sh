#!/usr/bin/env bash
# test.sh: the one test command (`make test`). On a fresh machine it
# provides what the tests need (PostgreSQL, and Chromium once browser tests
# exist), then runs go vet, the gofmt check and every Go test with the race
# detector. Safe to run twice, from any directory, with CI=true and no
# stdin. The last lines are go test's own; the exit code is go test's.
# See docs/testing.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

step() { echo "==> $*"; }

# Go: the toolchain's usual home when it is not on PATH (e.g. CI shells).
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null 2>&1 || { echo "test.sh: go not found on PATH" >&2; exit 1; }
step "go: $(go version)"

# The race detector needs cgo and a C compiler.
export CGO_ENABLED=1
if ! command -v "$(go env CC)" >/dev/null 2>&1; then
  echo "test.sh: the race detector needs a C compiler ($(go env CC) not found): apt-get install -y gcc" >&2
  exit 1
fi

# shellcheck source=scripts/ensure-postgres.sh
source "$ROOT/scripts/ensure-postgres.sh"
# shellcheck source=scripts/ensure-chromium.sh
source "$ROOT/scripts/ensure-chromium.sh"

step "PostgreSQL"
ensure_postgres
step "HUSHFLOW_TEST_DATABASE_URL=$(hf_pg_redact "$HUSHFLOW_TEST_DATABASE_URL")"

step "browser test prerequisites"
ensure_chromium "$ROOT"

step "go vet ./..."
go vet ./...

step "gofmt -l"
# gofmt -l . minus third-party trees that may hold .go files.
unformatted=$(gofmt -l . | grep -v -E '(^|/)(node_modules|vendor)/' || true)
if [[ -n $unformatted ]]; then
  echo "test.sh: these files need gofmt (run make fmt):" >&2
  echo "$unformatted" >&2
  exit 1
fi

step "go test -race -count=1 -timeout 20m ./..."
exec go test -race -count=1 -timeout 20m ./...
