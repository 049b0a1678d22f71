#!/usr/bin/env bash
# The GitHub walkthrough against the local stack (`make demo-github` starts
# it first): a repository's issues and pull requests in sequin-mock's GitHub
# become tables; writes go one request per row, a second apart; DELETE
# closes an issue; a poll that finds nothing is a 304.
set -euo pipefail
cd "$(dirname "$0")/.."
source "${STACK_ENV:-target/stack.env}"
account=ghp_demo_github
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sql() { echo "$1" | sed 's/^/  > /'; psql -X -v ON_ERROR_STOP=1 -c "$1"; }
sql_may_fail() { echo "$1" | sed 's/^/  > /'; psql -X -c '\set VERBOSITY verbose' -c "$1" 2>&1 | grep -v '^LOCATION' || true; }
admin() { curl -s -X "$1" "$MOCK_URL/_admin/github/$2?account=$account" -H 'content-type: application/json' ${3:+-d "$3"} -o /dev/null; }

step "Reset: a fresh GitHub account in the mock with a repository of 300 issues and 40 pull requests"
curl -s -X POST "$MOCK_URL/_admin/reset?account=$account" -o /dev/null
psql -Xq -c "DROP SCHEMA IF EXISTS gh CASCADE" -c "DROP SERVER IF EXISTS github CASCADE" 2>/dev/null
admin POST repos '{"full_name": "octo/demo"}'
admin POST repos/octo/demo/seed '{"issues": 300, "pull_requests": 40, "step_s": 1}'
admin POST repos/octo/demo/labels '{"name": "bug", "color": "d73a4a"}'

step "One server per repository, a token, and the tables"
sql "CREATE SERVER github FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'github', base_url '$MOCK_URL', repository 'octo/demo', poll_interval '1s');"
sql "CREATE USER MAPPING FOR PUBLIC SERVER github OPTIONS (api_key '$account');"
sql "CREATE SCHEMA gh;"
sql "IMPORT FOREIGN SCHEMA github FROM SERVER github INTO gh;"

step "The sync worker backfills (pages of 100, by the Link header); pull requests get their own table"
for _ in $(seq 200); do
  line=$(psql -XtA -F ' ' -c "SELECT bool_and(phase = 'incremental'), sum(rows) FROM sequin.sync_status WHERE server = 'github'")
  [[ "$line" == t* ]] && break
  sleep 0.3
done
sql "SELECT \"table\", phase, rows FROM sequin.sync_status WHERE server = 'github' ORDER BY 1;"
sql "SELECT number, title, state, author FROM gh.issues ORDER BY number LIMIT 3;"

step "Writes: INSERT creates an issue, UPDATE labels it; three rows take two seconds (a second between writes)"
sql "INSERT INTO gh.issues (title, body) SELECT 'From SQL ' || i, 'Made by sequin_fdw' FROM generate_series(1, 3) i RETURNING number, title;"
sql "UPDATE gh.issues SET labels = '{bug}' WHERE title = 'From SQL 1' RETURNING number, labels;"

step "DELETE closes the issue (GitHub's REST API deletes no issues): the row stays, closed"
sql "DELETE FROM gh.issues WHERE title = 'From SQL 2';"
sql "SELECT number, title, state, state_reason FROM gh.issues WHERE title LIKE 'From SQL %' ORDER BY number;"

step "Someone edits an issue on GitHub: it arrives; polls that find nothing are 304s"
admin PATCH repos/octo/demo/issues/1 '{"title": "Edited on GitHub"}'
for _ in $(seq 100); do
  [ "$(psql -XtAc "SELECT title FROM gh.issues WHERE number = 1")" = "Edited on GitHub" ] && break
  sleep 0.1
done
sql "SELECT number, title FROM gh.issues WHERE number = 1;"
sleep 3
echo "  recent polls: $(curl -s "$MOCK_URL/_admin/requests/recent?account=$account&limit=12" | python3 -c 'import json,sys; r = json.load(sys.stdin); print(sum(1 for x in r if x["status"] == 304), "of", len(r), "answered 304 Not Modified")')"

step "A 101-row statement is refused before any request"
sql_may_fail "INSERT INTO gh.issues (title) SELECT 'Bulk ' || i FROM generate_series(1, 101) i;"

echo
echo "Done. Explore with: source ${STACK_ENV:-target/stack.env} && psql   (make down stops the stack)"
