#!/usr/bin/env bash
# The walkthrough of README's quick start, against the local stack
# (`make demo` starts it first): Stripe customers in sequin-mock become a
# table; reads are local, writes go to the API first.
set -euo pipefail
cd "$(dirname "$0")/.."
# target/stack18.env with `make demo PG=18`.
source "${STACK_ENV:-target/stack.env}"
account=sk_test_demo
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sql() { echo "$1" | sed 's/^/  > /'; psql -X -v ON_ERROR_STOP=1 -v mock_url="$MOCK_URL" -c "$1"; }
sql_may_fail() { echo "$1" | sed 's/^/  > /'; psql -X -c '\set VERBOSITY verbose' -c "$1" 2>&1 | grep -v '^LOCATION' || true; }

step "Reset: a fresh demo account in the mock, no demo objects in the database"
curl -s -X POST "$MOCK_URL/_admin/reset?account=$account" -o /dev/null
psql -Xq -c "DROP SCHEMA IF EXISTS stripe CASCADE" -c "DROP SERVER IF EXISTS stripe CASCADE" 2>/dev/null

step "Seed 1,000 customers in the mock Stripe API ($MOCK_URL)"
curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$account&count=1000"; echo

step "Create the server, the user mapping and the tables"
sql "CREATE SERVER stripe FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url '$MOCK_URL', poll_interval '1s',
           external_id 'acct-42', metadata '{\"team\":\"billing\"}');"
sql "CREATE USER MAPPING FOR PUBLIC SERVER stripe OPTIONS (api_key '$account');"
sql "CREATE SCHEMA stripe;"
sql "IMPORT FOREIGN SCHEMA stripe FROM SERVER stripe INTO stripe;"

step "The sync worker backfills in the background"
for _ in $(seq 300); do
  line=$(psql -XtA -F ' ' -c "SELECT phase, rows, backfill FROM sequin.sync_status WHERE \"table\" = 'stripe.customers'::regclass")
  echo "  sync_status of stripe.customers: phase, rows, backfill = $line"
  [[ "$line" == *" done" ]] && break
  sleep 0.2
done

step "Reads are served by the local shadow table: full SQL, no API calls"
sql "SELECT count(*) FROM stripe.customers;"
sql "SELECT id, email, name, created FROM stripe.customers ORDER BY created DESC LIMIT 3;"

step "INSERT goes to the API first; RETURNING shows the id Stripe assigned"
sql "INSERT INTO stripe.customers (email, name) VALUES ('ada@example.com', 'Ada') RETURNING id, email, name, created;"
ada=$(psql -XtAc "SELECT id FROM stripe.customers WHERE email = 'ada@example.com'")

step "UPDATE and DELETE, also API-first"
sql "UPDATE stripe.customers SET name = 'Ada L.' WHERE id = '$ada' RETURNING id, name;"
sql "DELETE FROM stripe.customers WHERE id = '$ada' RETURNING id, deleted;"
echo "  the mock now says: $(curl -s "$MOCK_URL/_admin/stripe/customers/$ada?account=$account" | head -c 120)"

step "The API refuses a write: a normal Postgres ERROR with Stripe's own message"
sql_may_fail "INSERT INTO stripe.customers (email) VALUES ('not-an-email');"
sql "SELECT count(*) FROM stripe.customers WHERE email = 'not-an-email';"

step "Someone changes a customer in Stripe: it arrives within the poll interval"
first=$(psql -XtAc "SELECT id FROM stripe.customers WHERE email = 'customer1@example.com'")
curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$first?account=$account" \
  -H 'content-type: application/json' -d '{"name": "Changed in Stripe"}' -o /dev/null
start=$(date +%s%N)
for _ in $(seq 100); do
  [ "$(psql -XtAc "SELECT name FROM stripe.customers WHERE id = '$first'")" = "Changed in Stripe" ] && break
  sleep 0.05
done
echo "  arrived after $(( ($(date +%s%N) - start) / 1000000 )) ms"
sql "SELECT id, name, updated_idx FROM stripe.customers WHERE id = '$first';"

step "A consumer follows the change feed: every applied change has a new updated_idx"
sql "SELECT id, name, deleted, updated_idx FROM stripe.customers WHERE updated_idx > (SELECT max(updated_idx) - 3 FROM stripe.customers) ORDER BY updated_idx;"

step "Invoices are Stripe's: writing them is refused before any request"
sql_may_fail "DELETE FROM stripe.invoices;"

step "Pause the sync (writes still work), poll one table now, resume"
sql "SELECT sequin.pause('stripe');"
sql "SELECT \"table\", phase FROM sequin.sync_status WHERE server = 'stripe';"
sql "SELECT sequin.resume('stripe'), sequin.sync_now('stripe.customers');"

step "What every sync is doing"
sql "SELECT server, \"table\", phase, rows, backfill, lag, last_error, requests FROM sequin.sync_status;"
echo
echo "Done. Explore with: source ${STACK_ENV:-target/stack.env} && psql   (make down stops the stack)"
