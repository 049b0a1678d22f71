#!/usr/bin/env bash
# The Salesforce walkthrough against the local stack (`make demo-salesforce`
# starts it first): Contacts in sequin-mock's Salesforce become a table over
# OAuth; a multi-row statement is one all-or-nothing API request, and a
# rejected 200-row batch changes nothing anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
# target/stack18.env with `make demo PG=18`.
source "${STACK_ENV:-target/stack.env}"
account=sk_test_demo_salesforce
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sql() { echo "$1" | sed 's/^/  > /'; psql -X -v ON_ERROR_STOP=1 -c "$1"; }
sql_may_fail() { echo "$1" | sed 's/^/  > /'; psql -X -c '\set VERBOSITY verbose' -c "$1" 2>&1 | grep -v '^LOCATION' || true; }
writes() {  # API requests other than the sync's queries
  curl -s "$MOCK_URL/_admin/requests?account=$account" |
    python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if "query" not in k and "deleted" not in k))'
}

step "Reset: a fresh org in the mock, no demo objects in the database"
curl -s -X POST "$MOCK_URL/_admin/reset?account=$account" -o /dev/null
curl -s -X POST "$MOCK_URL/_admin/salesforce/settings?account=$account" -H 'content-type: application/json' \
  -d '{"deleted_precision_ms": 1}' -o /dev/null
psql -Xq -c "DROP SCHEMA IF EXISTS sf CASCADE" -c "DROP SERVER IF EXISTS salesforce CASCADE" 2>/dev/null

step "Seed 5,000 Contacts and an OAuth grant (a connected app's refresh token)"
curl -s -X POST "$MOCK_URL/_admin/salesforce/Contact/seed?account=$account&count=5000"; echo
refresh_token=$(curl -s -X POST "$MOCK_URL/_admin/oauth/grants?account=$account" -H 'content-type: application/json' \
  -d '{"client_id": "demo-app", "client_secret": "demo-secret"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')

step "Create the server (instance URL + token URL), the user mapping and the tables"
sql "CREATE SERVER salesforce FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'salesforce', base_url '$MOCK_URL',
           token_url '$MOCK_URL/services/oauth2/token', poll_interval '1s');"
psql -Xq -c "CREATE USER MAPPING FOR PUBLIC SERVER salesforce
  OPTIONS (client_id 'demo-app', client_secret 'demo-secret', refresh_token '$refresh_token');"
echo "  > CREATE USER MAPPING FOR PUBLIC SERVER salesforce OPTIONS (client_id 'demo-app', client_secret '…', refresh_token '…');"
sql "CREATE SCHEMA sf;"
sql "IMPORT FOREIGN SCHEMA salesforce FROM SERVER salesforce INTO sf;"

step "The sync worker backfills (SOQL pages of 2,000)"
for _ in $(seq 300); do
  line=$(psql -XtA -F ' ' -c "SELECT phase, rows, backfill FROM sequin.sync_status WHERE \"table\" = 'sf.contacts'::regclass")
  echo "  sync_status of sf.contacts: phase, rows, backfill = $line"
  [[ "$line" == *" done" ]] && break
  sleep 0.3
done
sql "SELECT id, first_name, last_name, email, system_modstamp FROM sf.contacts ORDER BY id LIMIT 3;"

step "A 200-row INSERT is one API request (sObject Collections, allOrNone)"
before=$(writes)
sql "INSERT INTO sf.contacts (first_name, last_name, email)
  SELECT 'Demo', 'Person ' || i, format('demo%s@example.com', i) FROM generate_series(1, 200) i;"
echo "  API requests made: $(( $(writes) - before ))"

step "A 200-row UPDATE with one invalid email: Salesforce rejects the batch, nothing changes anywhere"
before=$(writes)
sql_may_fail "UPDATE sf.contacts SET email = CASE WHEN last_name = 'Person 77' THEN 'andrea__invalid' ELSE replace(email, 'demo', 'moved') END
  WHERE first_name = 'Demo';"
echo "  API requests made: $(( $(writes) - before ))"
sql "SELECT count(*) FILTER (WHERE email LIKE 'moved%') AS moved, count(*) FILTER (WHERE email LIKE 'demo%') AS unchanged
  FROM sf.contacts WHERE first_name = 'Demo';"
echo "  in the API: $(curl -s "$MOCK_URL/_admin/salesforce/Contact?account=$account" |
  python3 -c 'import json,sys; r = json.load(sys.stdin)["records"]; print(sum(1 for c in r if (c.get("Email") or "").startswith("moved")), "moved")')"

step "201 rows: refused before any request"
sql_may_fail "DELETE FROM sf.contacts WHERE id IN (SELECT id FROM sf.contacts ORDER BY id LIMIT 201);"

step "Someone edits a Contact in Salesforce: it arrives within the poll interval"
first=$(psql -XtAc "SELECT id FROM sf.contacts ORDER BY id LIMIT 1")
curl -s -X PATCH "$MOCK_URL/_admin/salesforce/Contact/$first?account=$account" -H 'content-type: application/json' \
  -d '{"Title": "Changed in Salesforce"}' -o /dev/null
start=$(date +%s%N)
for _ in $(seq 100); do
  [ "$(psql -XtAc "SELECT title FROM sf.contacts WHERE id = '$first'")" = "Changed in Salesforce" ] && break
  sleep 0.05
done
echo "  arrived after $(( ($(date +%s%N) - start) / 1000000 )) ms"

step "What every sync is doing"
sql "SELECT server, \"table\", phase, rows, backfill, lag, last_error FROM sequin.sync_status WHERE server = 'salesforce';"
echo
echo "Done. Explore with: source ${STACK_ENV:-target/stack.env} && psql   (make down stops the stack)"
