#!/usr/bin/env bash
# The Salesforce walkthrough against the local stack (`make demo-salesforce`
# starts it first): Contacts in sequin-mock's Salesforce become a table over
# OAuth; a multi-row statement is one all-or-nothing API request, and a
# rejected 200-row batch changes nothing anywhere; a custom object and a
# custom field come from describe, are written, and a field added upstream
# becomes a column with sequin.refresh_schema().
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
sql "IMPORT FOREIGN SCHEMA salesforce LIMIT TO (contacts, invoice__c) FROM SERVER salesforce INTO sf;"

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

step "A custom object from describe: Invoice__c, its custom fields typed and named in snake_case"
sql "SELECT column_name, data_type, (SELECT option_value FROM pg_options_to_table(a.attfdwoptions) WHERE option_name = 'field') AS field
  FROM information_schema.columns c JOIN pg_attribute a ON a.attrelid = 'sf.invoice__c'::regclass AND a.attname = c.column_name
  WHERE c.table_schema = 'sf' AND c.table_name = 'invoice__c' AND c.column_name LIKE '%\_\_c' ORDER BY c.ordinal_position LIMIT 8;"

step "Write the custom object and a custom field of Contact (Score__c)"
sql "INSERT INTO sf.invoice__c (name, amount__c, quantity__c, tags__c, status__c)
  VALUES ('INV-42', 120, 3, '{Urgent,Export}', 'Sent') RETURNING name, total__c, tags__c, status__c;"
sql "UPDATE sf.contacts SET score__c = 97.5 WHERE id = '$first' RETURNING first_name, last_name, score__c;"
echo "  in the API: $(curl -s "$MOCK_URL/_admin/salesforce/Contact/$first?account=$account" | python3 -c 'import json,sys; print("Score__c =", json.load(sys.stdin)["Score__c"])')"
sql_may_fail "UPDATE sf.invoice__c SET total__c = 1 WHERE name = 'INV-42';"

step "An admin adds a field in Salesforce: it reaches raw, then sequin.refresh_schema() adds the column"
curl -s -X POST "$MOCK_URL/_admin/salesforce/Invoice__c/fields?account=$account" -H 'content-type: application/json' \
  -d '{"name": "Region__c", "type": "string", "length": 40, "createable": true, "updateable": true, "nillable": true}' -o /dev/null
sql "SELECT sequin.refresh_schema('sf.invoice__c');"
sql "UPDATE sf.invoice__c SET region__c = 'EMEA' WHERE name = 'INV-42' RETURNING name, region__c;"

step "What every sync is doing"
sql "SELECT server, \"table\", phase, rows, backfill, lag, last_error FROM sequin.sync_status WHERE server = 'salesforce';"
echo
echo "Done. Explore with: source ${STACK_ENV:-target/stack.env} && psql   (make down stops the stack)"
