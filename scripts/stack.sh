#!/usr/bin/env bash
# The local stack: a scratch PostgreSQL cluster with sequin_fdw preloaded
# and installed, plus sequin-mock. `up` is idempotent; `down` leaves nothing
# running. Connection settings go to target/stack.env.
#
# The PostgreSQL is the one of $PG_CONFIG (default /usr/bin/pg_config, the
# machine's 15). Another major version (18: `make up PG=18`, which points
# PG_CONFIG at target/pg18, see scripts/setup.sh) gets a stack of its own,
# target/stack18 with its settings in target/stack18.env, so that both can
# be up at once.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# (SEQUIN_PG_CONFIG: the stack of the env file sourced, e.g. for a restart
# from a test run by hand.)
pg_config=${PG_CONFIG:-${SEQUIN_PG_CONFIG:-/usr/bin/pg_config}}
major=$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
if [ "$major" = 15 ]; then
  stack="$root/target/stack"
  env_file="$root/target/stack.env"
  features=()
else
  stack="$root/target/stack$major"
  env_file="$root/target/stack$major.env"
  # The crate's default feature is pg15. The pgrx configuration that knows
  # this version's pg_config is the project's own (scripts/setup.sh).
  features=(--no-default-features --features "pg$major")
  export PGRX_HOME=${PGRX_HOME:-$root/target/pgrx-home}
fi
pgbin=$("$pg_config" --bindir)
pgdata="$stack/pgdata"
database=app

# The server's environment must not ask Rust for backtraces in error details.
as_postgres() { env -u RUST_BACKTRACE runuser -u postgres -- "$@"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_running() { [ -f "$pgdata/postmaster.pid" ] && as_postgres "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; }
mock_running() { [ -f "$stack/mock.pid" ] && kill -0 "$(cat "$stack/mock.pid")" 2>/dev/null; }

# Renames the installed library before a new one is written: a server
# still running keeps the old file mapped (writing over it in place
# would crash its processes).
retire_library() {
  local so
  so="$("$pg_config" --pkglibdir)/sequin_fdw.so"
  if [ -f "$so" ]; then mv -f "$so" "$so.replaced"; fi
}

install_extension() {
  retire_library
  # Release build: the stack also serves the benchmarks.
  (cd "$root" && cargo pgrx install --release --pg-config "$pg_config" ${features[@]+"${features[@]}"} >"$stack/install.log" 2>&1) || {
    cat "$stack/install.log"; exit 1; }
  # SEQUIN_STACK_KEEP_MOCK=1 keeps the mock built last (while its source
  # is half-edited, say).
  [ -n "${SEQUIN_STACK_KEEP_MOCK:-}" ] || (cd "$root" && cargo build --release -q -p sequin-mock)
}

start_postgres() {
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata"
    chown -R postgres: "$stack"
    as_postgres "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$stack/initdb.log"
    local port
    port=$(free_port)
    cat >>"$pgdata/postgresql.conf" <<CONF
# sequin_fdw local stack
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$stack'
shared_preload_libraries = 'sequin_fdw'
fsync = off
CONF
  fi
  local so_sum
  so_sum=$(md5sum "$("$pg_config" --pkglibdir)/sequin_fdw.so" | cut -d' ' -f1)
  if pg_running; then
    # A rebuilt library only takes effect after a restart (it is preloaded).
    if [ "$(cat "$stack/loaded.md5" 2>/dev/null)" != "$so_sum" ]; then
      as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$stack/postgres.log" -w restart -m fast >/dev/null
    fi
  else
    chown -R postgres: "$stack"
    as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$stack/postgres.log" -w start >/dev/null
  fi
  echo "$so_sum" >"$stack/loaded.md5"
}

start_mock() {
  local mock_sum
  mock_sum=$(md5sum "$root/target/release/sequin-mock" | cut -d' ' -f1)
  if mock_running && [ "$(cat "$stack/mock.md5" 2>/dev/null)" != "$mock_sum" ]; then
    kill "$(cat "$stack/mock.pid")"
    for _ in $(seq 50); do mock_running || break; sleep 0.1; done
  fi
  echo "$mock_sum" >"$stack/mock.md5"
  if ! mock_running; then
    rm -f "$stack/mock.url"
    "$root/target/release/sequin-mock" --listen 127.0.0.1:0 --port-file "$stack/mock.url" \
      >"$stack/mock.log" 2>&1 &
    echo $! >"$stack/mock.pid"
    for _ in $(seq 100); do [ -s "$stack/mock.url" ] && break; sleep 0.05; done
    [ -s "$stack/mock.url" ] || { echo "sequin-mock did not start:"; cat "$stack/mock.log"; exit 1; }
  fi
}

up() {
  mkdir -p "$stack"
  install_extension
  start_postgres
  start_mock
  local port
  port=$(sed -n 's/^port = //p' "$pgdata/postgresql.conf" | tail -1)
  cat >"$env_file" <<ENV
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=postgres
export PGDATABASE=$database
export MOCK_URL=$(cat "$stack/mock.url")
# The stack's PostgreSQL: its programs (psql, pg_ctl, pg_basebackup, ...)
# come first on the PATH; the tests find the stack's files here.
export PGBIN=$pgbin
export PATH="$pgbin:\$PATH"
export SEQUIN_PG_CONFIG=$pg_config
export SEQUIN_STACK=$stack
ENV
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
  export PATH="$pgbin:$PATH"
  if ! psql -XtAq -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
    psql -Xq -d postgres -c "CREATE DATABASE $database" >/dev/null
  fi
  # The SQL of the version under development changes between builds
  # (released versions update with ALTER EXTENSION, tests/upgrade.py): when
  # the installed scripts differ from those the database was created with,
  # the extension is created anew (the stack holds no data worth keeping).
  local sql_sum
  sql_sum=$(cat "$("$pg_config" --sharedir)"/extension/sequin_fdw--*.sql | md5sum | cut -d' ' -f1)
  if [ "$(cat "$stack/extension.md5" 2>/dev/null)" != "$sql_sum" ]; then
    psql -Xq -d "$database" -c "DROP EXTENSION IF EXISTS sequin_fdw CASCADE" >/dev/null 2>&1
  fi
  psql -Xq -d "$database" -c "CREATE EXTENSION IF NOT EXISTS sequin_fdw" >/dev/null
  echo "$sql_sum" >"$stack/extension.md5"
  echo "stack up: postgres $major on 127.0.0.1:$port (database $database), mock at $(cat "$stack/mock.url"); settings in ${env_file#"$root"/}"
}

down() {
  if mock_running; then
    kill "$(cat "$stack/mock.pid")" 2>/dev/null || true
    for _ in $(seq 50); do mock_running || break; sleep 0.1; done
    mock_running && kill -9 "$(cat "$stack/mock.pid")" 2>/dev/null || true
  fi
  rm -f "$stack/mock.pid" "$stack/mock.url"
  if pg_running; then
    as_postgres "$pgbin/pg_ctl" -D "$pgdata" -w stop -m fast >/dev/null
  fi
  rm -f "$env_file"
  echo "stack down"
}

# Restarts Postgres only (tests of what survives a restart); mode
# "immediate" stops it as a crash would, without a checkpoint.
restart() {
  as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$stack/postgres.log" -w restart -m "${1:-fast}" >/dev/null
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) restart "${2:-fast}" ;;
  retire-library) retire_library ;;
  *) echo "usage: $0 up|down|restart [fast|immediate]|retire-library" >&2; exit 2 ;;
esac
