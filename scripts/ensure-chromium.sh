#!/usr/bin/env bash
# ensure-chromium.sh: prerequisites of the browser tests (web/e2e): a
# headless Chromium from the distribution and playwright-core from npm.
#
# Browser tests only exist once web/e2e/package.json does; until then (and
# on a machine without them) this installs nothing and needs no network.
# Playwright never downloads its own browsers: the tests drive the system
# Chromium named by HUSHFLOW_CHROMIUM.
#
# Source it (test.sh does) to get the variables in the current shell, or run
# it directly.

hf_chromium_as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
  else
    echo "ensure-chromium: need root to run: $* (no sudo found)" >&2
    return 1
  fi
}

ensure_chromium() {
  local root=${1:-.}
  local e2e=$root/web/e2e
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

  if [[ ! -f $e2e/package.json ]]; then
    echo "==> browser tests: none yet (no web/e2e/package.json), skipping Chromium" >&2
    if [[ -z ${HUSHFLOW_CHROMIUM:-} && -x /usr/bin/chromium ]]; then
      export HUSHFLOW_CHROMIUM=/usr/bin/chromium
    fi
    return 0
  fi

  if [[ -n ${HUSHFLOW_CHROMIUM:-} ]]; then
    echo "==> browser tests: using HUSHFLOW_CHROMIUM=$HUSHFLOW_CHROMIUM" >&2
  else
    if [[ ! -x /usr/bin/chromium ]]; then
      echo "==> installing Chromium (apt-get)" >&2
      hf_chromium_as_root apt-get update
      hf_chromium_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
    else
      echo "==> browser tests: Chromium at /usr/bin/chromium" >&2
    fi
    export HUSHFLOW_CHROMIUM=/usr/bin/chromium
  fi

  if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-chromium: npm not found; install Node.js (apt-get install -y nodejs npm)" >&2
    return 1
  fi
  # Skip npm when node_modules is already newer than the manifests (npm
  # writes node_modules/.package-lock.json on every install).
  local stamp=$e2e/node_modules/.package-lock.json
  if [[ -f $stamp && ! $e2e/package.json -nt $stamp &&
    (! -f $e2e/package-lock.json || ! $e2e/package-lock.json -nt $stamp) ]]; then
    echo "==> browser tests: web/e2e/node_modules up to date" >&2
    return 0
  fi
  if [[ -f $e2e/package-lock.json ]]; then
    echo "==> browser tests: npm ci in web/e2e" >&2
    (cd "$e2e" && npm ci --no-audit --no-fund </dev/null)
  else
    echo "==> browser tests: npm install in web/e2e (no package-lock.json)" >&2
    (cd "$e2e" && npm install --no-audit --no-fund </dev/null)
  fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  ensure_chromium "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
