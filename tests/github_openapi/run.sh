#!/usr/bin/env bash
# Validates sequin-mock's GitHub replies against GitHub's OpenAPI description
# (@octokit/openapi). Dependencies go to target/github_openapi/node_modules
# (npm ci from this folder's lock file), so the source tree stays clean.
# Usage: tests/github_openapi/run.sh   (from anywhere; needs node >= 18, npm)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work="$root/target/github_openapi"
mkdir -p "$work"

if [ ! -d "$work/node_modules" ] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

mock="$root/target/release/sequin-mock"
# Build when cargo is here (a no-op when up to date); else use the binary as it is.
if command -v cargo > /dev/null; then
  (cd "$root" && cargo build --release -q -p sequin-mock)
elif [ ! -x "$mock" ]; then
  echo "no $mock and no cargo to build it" >&2
  exit 2
fi

port_file="$work/mock.url"
rm -f "$port_file"
"$mock" --port-file "$port_file" > "$work/mock.log" 2>&1 &
mock_pid=$!
trap 'kill $mock_pid 2> /dev/null || true' EXIT
for _ in $(seq 100); do
  [ -s "$port_file" ] && break
  sleep 0.1
done
[ -s "$port_file" ] || { echo "sequin-mock did not start; see $work/mock.log" >&2; exit 2; }

NODE_PATH="$work/node_modules" node "$here/validate.js" "$(cat "$port_file")"
