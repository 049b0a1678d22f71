#!/usr/bin/env bash
# Without shared_preload_libraries, CREATE EXTENSION must fail with a HINT
# saying what to add (the sync worker and shared memory would be missing).
# Starts a throwaway cluster without the library preloaded, then removes it.
set -euo pipefail
# The PostgreSQL of $PG_CONFIG (the Makefile's PG=15|18), default the machine's 15.
pgbin=$("${PG_CONFIG:-/usr/bin/pg_config}" --bindir)
dir=$(mktemp -d /tmp/sequin_fdw_nopreload.XXXXXX)
chown postgres: "$dir"
as_postgres() { env -u RUST_BACKTRACE runuser -u postgres -- "$@"; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { as_postgres "$pgbin/pg_ctl" -D "$dir/data" -w stop -m immediate >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
as_postgres "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
as_postgres "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -o "-p $port -k $dir -c listen_addresses=''" -w start >/dev/null
if output=$("$pgbin/psql" -X -h "$dir" -p "$port" -U postgres -d postgres -c "CREATE EXTENSION sequin_fdw" 2>&1); then
  echo "FAIL: CREATE EXTENSION succeeded without shared_preload_libraries"; exit 1
fi
echo "$output"
if grep -q "must be loaded via shared_preload_libraries" <<<"$output" && grep -q "HINT:.*shared_preload_libraries" <<<"$output"; then
  echo "preload: 1 passed, 0 failed"
else
  echo "preload: 0 passed, 1 failed (unexpected error above)"; exit 1
fi
