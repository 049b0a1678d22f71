#!/usr/bin/env bash
# The framework tests (make test): psycopg, SQLAlchemy and Django from a
# venv made here from requirements.txt, node-postgres from package-lock.json,
# and sequin-proxy (raw HTTP, then Stripe's and Salesforce's Python SDKs and
# Octokit), each against the local stack (target/stack.env must be sourced).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/target/venv"

# The venv is made again when requirements.txt changes.
want=$(md5sum "$here/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$venv/requirements.md5" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" \
    || { echo "apps: could not make the venv"; exit 1; }
  echo "$want" >"$venv/requirements.md5"
fi
want=$(md5sum "$here/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$here/node_modules/.lock.md5" 2>/dev/null)" != "$want" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --silent) || { echo "apps: npm ci failed"; exit 1; }
  echo "$want" >"$here/node_modules/.lock.md5"
fi

# The proxy tests drive target/release/sequin-proxy.
(cd "$root" && cargo build --release -q -p sequin-proxy) || { echo "apps: could not build sequin-proxy"; exit 1; }

failed=()
for test in test_psycopg.py test_sqlalchemy.py test_django.py test_proxy.py test_proxy_sdks.py; do
  "$venv/bin/python" "$here/$test" || failed+=("$test")
done
node "$here/node_pg.mjs" || failed+=(node_pg.mjs)
node "$here/proxy_octokit.mjs" || failed+=(proxy_octokit.mjs)
if [ ${#failed[@]} -gt 0 ]; then
  echo "apps: FAILED: ${failed[*]}"
  exit 1
fi
echo "apps: all passed"
