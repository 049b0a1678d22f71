#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test sequin_fdw.
# Idempotent: every step checks first, so a warm machine passes in seconds.
set -euo pipefail

PGRX_VERSION=0.18.0
PG_CONFIG=/usr/bin/pg_config
need_apt=()
[ -f /usr/include/postgresql/15/server/postgres.h ] || need_apt+=(postgresql-server-dev-15)
dpkg -s libclang-dev >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v sudo >/dev/null 2>&1 || need_apt+=(sudo)
command -v initdb >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# The framework tests (tests/apps) run Python libraries from a venv and
# node-postgres.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "setup: installing cargo-pgrx $PGRX_VERSION"
  # A debug build: cargo-pgrx only orchestrates builds, and compiling it
  # without optimisation takes minutes less on a fresh machine.
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --debug
fi

if ! grep -qs "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  echo "setup: cargo pgrx init"
  cargo pgrx init --pg15 "$PG_CONFIG"
fi
