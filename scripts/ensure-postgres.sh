#!/usr/bin/env bash
# ensure-postgres.sh: make sure a PostgreSQL server the tests can use is
# reachable, and export HUSHFLOW_TEST_DATABASE_URL (an administrative URL:
# store/storetest creates a fresh database per test from it and drops it
# afterwards).
#
#   - HUSHFLOW_TEST_DATABASE_URL already set: use it as is (only wait for it).
#   - otherwise: postgres@127.0.0.1:5432 with trust auth. If it is not up,
#     start the newest local cluster; if PostgreSQL is not installed, install
#     it with apt-get (sudo only when not root), let the test user in over
#     loopback without a password, and start it.
#
# Source it (test.sh does) to get the variable in the current shell, or run
# it: it then prints the URL on stdout.
#
# Idempotent: running it against a server that is already up changes nothing.

HF_PG_DEFAULT_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
HF_PG_WAIT_SECONDS=${HF_PG_WAIT_SECONDS:-30}
HF_PG_ETC=${HF_PG_ETC:-/etc/postgresql} # Debian's cluster configs (a variable for tests)

hf_pg_log() { echo "    $*" >&2; }

# hf_pg_as_root CMD...: run CMD as root (sudo only when not root; never
# prompt for a password when there is no terminal).
hf_pg_as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
  else
    echo "ensure-postgres: need root to run: $* (no sudo found)" >&2
    return 1
  fi
}

# hf_pg_isready [pg_isready args...]: one quick readiness probe.
hf_pg_isready() {
  pg_isready -q -t 2 "$@" >/dev/null 2>&1
}

# hf_pg_wait ARGS...: wait up to HF_PG_WAIT_SECONDS for readiness.
hf_pg_wait() {
  local deadline=$((SECONDS + HF_PG_WAIT_SECONDS))
  until hf_pg_isready "$@"; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 1
  done
}

# hf_pg_version: the newest installed server version (e.g. 15), or empty.
hf_pg_version() {
  [[ -d $HF_PG_ETC ]] || return 0
  # shellcheck disable=SC2012 # version directory names are plain numbers
  ls "$HF_PG_ETC" 2>/dev/null | sort -V | tail -1
}

hf_pg_install() {
  echo "==> installing PostgreSQL (apt-get)" >&2
  hf_pg_as_root apt-get update
  hf_pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
  local ver
  ver=$(hf_pg_version)
  if [[ -z $ver ]]; then
    echo "ensure-postgres: postgresql installed but no cluster in $HF_PG_ETC" >&2
    return 1
  fi
  if [[ ! -d $HF_PG_ETC/$ver/main ]]; then
    hf_pg_as_root pg_createcluster "$ver" main
  fi
  # A fresh Debian cluster asks for a password over TCP (scram-sha-256).
  # This cluster was installed for the tests: let local connections over
  # loopback in without a password, as the test URL expects. hba rules
  # match first to last, so the lines go on top. Done once (marker line).
  local hba=$HF_PG_ETC/$ver/main/pg_hba.conf
  if ! hf_pg_as_root grep -q 'hushflow-test' "$hba"; then
    hf_pg_log "trust auth for loopback connections in $hba"
    local tmp
    tmp=$(mktemp)
    {
      echo '# hushflow-test: added by scripts/ensure-postgres.sh for local tests'
      echo 'host all all 127.0.0.1/32 trust'
      echo 'host all all ::1/128 trust'
      hf_pg_as_root cat "$hba"
    } >"$tmp"
    hf_pg_as_root cp "$tmp" "$hba"
    rm -f "$tmp"
    # Reload if the package scripts already started it; harmless otherwise.
    hf_pg_as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >/dev/null 2>&1 || true
  fi
}

hf_pg_start() {
  local ver
  ver=$(hf_pg_version)
  if [[ -z $ver ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    hf_pg_install
    ver=$(hf_pg_version)
  fi
  echo "==> starting PostgreSQL $ver cluster main" >&2
  # "already running" is not an error here: the probe may have raced it.
  if ! hf_pg_as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start; then
    hf_pg_isready -h 127.0.0.1 -p 5432 || {
      echo "ensure-postgres: could not start cluster $ver/main; see /var/log/postgresql/postgresql-$ver-main.log" >&2
      return 1
    }
  fi
}

# hf_pg_check_login URL: can the tests log in and create databases?
hf_pg_check_login() {
  local url=$1 out
  command -v psql >/dev/null 2>&1 || return 0 # no client: the tests will say
  if ! out=$(PGCONNECT_TIMEOUT=5 psql -w -X -Atq "$url" \
    -c "select rolsuper or rolcreatedb from pg_roles where rolname = current_user" 2>&1 </dev/null); then
    echo "ensure-postgres: cannot log in to $(hf_pg_redact "$url"): $out" >&2
    echo "  set HUSHFLOW_TEST_DATABASE_URL to an admin URL that works, or allow" >&2
    echo "  'host all all 127.0.0.1/32 trust' in pg_hba.conf of the local cluster" >&2
    return 1
  fi
  if [[ $out != t ]]; then
    echo "ensure-postgres: the role in $(hf_pg_redact "$url") cannot CREATE DATABASE (tests need it)" >&2
    return 1
  fi
}

# hf_pg_redact URL: the URL without its password, for messages.
hf_pg_redact() {
  sed -E 's#(://[^:/@]+):[^@/]*@#\1:xxxxx@#' <<<"$1"
}

ensure_postgres() {
  if [[ -n ${HUSHFLOW_TEST_DATABASE_URL:-} ]]; then
    echo "==> PostgreSQL: using HUSHFLOW_TEST_DATABASE_URL ($(hf_pg_redact "$HUSHFLOW_TEST_DATABASE_URL"))" >&2
    if command -v pg_isready >/dev/null 2>&1; then
      hf_pg_wait -d "$HUSHFLOW_TEST_DATABASE_URL" || {
        echo "ensure-postgres: $(hf_pg_redact "$HUSHFLOW_TEST_DATABASE_URL") not ready after ${HF_PG_WAIT_SECONDS}s" >&2
        return 1
      }
    fi
    hf_pg_check_login "$HUSHFLOW_TEST_DATABASE_URL"
    export HUSHFLOW_TEST_DATABASE_URL
    return 0
  fi

  echo "==> PostgreSQL: checking 127.0.0.1:5432" >&2
  if ! command -v pg_isready >/dev/null 2>&1 || ! hf_pg_isready -h 127.0.0.1 -p 5432 -U postgres; then
    hf_pg_start
    hf_pg_wait -h 127.0.0.1 -p 5432 -U postgres || {
      echo "ensure-postgres: PostgreSQL on 127.0.0.1:5432 not ready after ${HF_PG_WAIT_SECONDS}s" >&2
      return 1
    }
  fi
  hf_pg_check_login "$HF_PG_DEFAULT_URL"
  export HUSHFLOW_TEST_DATABASE_URL=$HF_PG_DEFAULT_URL
  hf_pg_log "ready: $HUSHFLOW_TEST_DATABASE_URL"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  ensure_postgres
  echo "$HUSHFLOW_TEST_DATABASE_URL"
fi
