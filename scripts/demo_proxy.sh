#!/usr/bin/env bash
# The proxy walkthrough against the local stack (`make demo-proxy` starts it
# first): Stripe's own Python SDK, pointed at sequin-proxy instead of
# api.stripe.com, creates, updates and deletes a customer; each change is
# in the table as soon as the SDK call returns.
set -euo pipefail
cd "$(dirname "$0")/.."
source "${STACK_ENV:-target/stack.env}"
account=sk_test_demo_proxy
token=tok_demo_app_2f9c
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sql() { echo "$1" | sed 's/^/  > /'; psql -X -v ON_ERROR_STOP=1 -c "$1"; }

step "Build sequin-proxy, and a venv with Stripe's Python SDK"
cargo build --release -q -p sequin-proxy
venv=target/demo-proxy-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check stripe==16.1.0; }

step "Reset: a fresh Stripe account in the mock with 3 customers"
curl -s -X POST "$MOCK_URL/_admin/reset?account=$account" -o /dev/null
curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$account&count=3" -o /dev/null
psql -Xq -c "DROP SCHEMA IF EXISTS shop CASCADE" -c "DROP SERVER IF EXISTS shop_stripe CASCADE" 2>/dev/null

step "A synced table, an application role with a proxy_token, and the proxy's login role"
sql "CREATE SERVER shop_stripe FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', base_url '$MOCK_URL');"
sql "CREATE USER MAPPING FOR CURRENT_USER SERVER shop_stripe OPTIONS (api_key '$account');"
sql "CREATE SCHEMA shop; IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER shop_stripe INTO shop;"
sql "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_app') THEN CREATE ROLE shop_app; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sequin_proxy') THEN CREATE ROLE sequin_proxy LOGIN; END IF;
END \$\$;
CREATE USER MAPPING FOR shop_app SERVER shop_stripe OPTIONS (api_key '$account', proxy_token '$token');
GRANT USAGE ON FOREIGN SERVER shop_stripe TO shop_app;
GRANT USAGE ON SCHEMA shop TO shop_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.customers TO shop_app;
GRANT EXECUTE ON FUNCTION sequin.proxy_request(text, text, text, text, jsonb, bytea) TO sequin_proxy;"
for _ in $(seq 100); do
  [ "$(psql -XtAc "SELECT phase FROM sequin.sync_status WHERE server = 'shop_stripe'")" = incremental ] && break
  sleep 0.1
done
echo "  The sync is paused from here on: what the table shows next came through the proxy."
sql "SELECT sequin.pause('shop_stripe');"

step "Start sequin-proxy: http://127.0.0.1:<port>/<database>/<server>/ is the API's base URL"
port_file=$(mktemp -u)
target/release/sequin-proxy --listen 127.0.0.1:0 --port-file "$port_file" \
  --conninfo "host=$PGHOST port=$PGPORT user=sequin_proxy" 2>target/demo-proxy.log &
proxy=$!
trap 'kill $proxy 2>/dev/null; wait $proxy 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.05; done
base="$(cat "$port_file")/$PGDATABASE/shop_stripe"
echo "  stripe.api_base = \"$base\""

step "The application: Stripe's SDK, unchanged but for api_base and the key it presents"
STRIPE_BASE="$base" TOKEN="$token" "$venv/bin/python" - <<'PY'
import os, subprocess
import stripe

stripe.api_base = os.environ["STRIPE_BASE"]
stripe.api_key = os.environ["TOKEN"]          # shop_app's proxy_token; the API key stays in the database

def table(where):
    print(subprocess.run(["psql", "-X", "-c", f"SELECT id, email, name, metadata, deleted FROM shop.customers WHERE {where}"],
                         capture_output=True, text=True).stdout)

customer = stripe.Customer.create(email="ada@example.com", name="Ada", metadata={"plan": "pro"})
print(f"  stripe.Customer.create(...) -> {customer.id}; the table, right after:")
table(f"id = '{customer.id}'")
stripe.Customer.modify(customer.id, name="Ada Lovelace")
print("  stripe.Customer.modify(..., name='Ada Lovelace'); the table:")
table(f"id = '{customer.id}'")
try:
    stripe.Customer.create(email="not-an-email")
except stripe.InvalidRequestError as error:
    print(f"  an API refusal reaches the SDK as Stripe's own error: HTTP {error.http_status}: {error.user_message}")
stripe.Customer.delete(customer.id)
print("  stripe.Customer.delete(...); the table:")
table(f"id = '{customer.id}'")
PY

step "A wrong key is the proxy's 403 (its own errors say \"source\": \"proxy\")"
curl -s -H 'Authorization: Bearer tok_wrong' "$base/v1/customers"; echo
echo
echo "  the proxy's log:"; sed 's/^/    /' target/demo-proxy.log | tail -6

sql "SELECT sequin.resume('shop_stripe');"

echo
echo "Done. Explore with: source ${STACK_ENV:-target/stack.env} && psql   (make down stops the stack)"
