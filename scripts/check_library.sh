#!/usr/bin/env bash
# The installed library must load with dlopen wherever Postgres runs: it may
# not need static TLS (the STATIC_TLS flag: initial-exec thread-locals),
# which glibc keeps only a little of for libraries loaded late, shared with
# every other preloaded library. mimalloc's thread-locals would ask for it
# unless built as .cargo/config.toml says.
set -euo pipefail
so="$("${PG_CONFIG:-/usr/bin/pg_config}" --pkglibdir)/sequin_fdw.so"
flags=$(readelf -dW "$so" | grep -E '\((FLAGS|FLAGS_1)\)' || true)
if grep -q STATIC_TLS <<<"$flags"; then
  echo "library: 0 passed, 1 failed ($so needs static TLS: $flags)"; exit 1
fi
echo "library: 1 passed, 0 failed (no static TLS needed)"
