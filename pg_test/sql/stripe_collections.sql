-- Stripe products, prices, subscriptions and invoices end to end: import the
-- whole schema, backfill what the API has (canceled subscriptions too),
-- create and change records through the FDW, a price's amount fixed once
-- created, DELETE of a subscription as Stripe's cancellation, invoices
-- refused as read-only before any request, changes made "from outside"
-- arriving, and a sync whose event cursor Stripe no longer keeps.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_collections
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
-- 30 products; 20 monthly prices, each of a product of its own; 25
-- subscriptions, each of a new customer to one shared monthly price, each
-- with its paid first invoice. Customer 1's subscription is canceled before
-- the sync starts: Stripe still has it, so the table must have it too.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/products/seed?account=$ACCOUNT&count=30"; echo
\! curl -s -X POST "$MOCK_URL/_admin/stripe/prices/seed?account=$ACCOUNT&count=20"; echo
\! curl -s -X POST "$MOCK_URL/_admin/stripe/subscriptions/seed?account=$ACCOUNT&count=25"; echo
\set canceled_early `python3 -c 'import json, os, urllib.request as r; get = lambda p: json.load(r.urlopen(os.environ["MOCK_URL"] + "/_admin/stripe/" + p + "?account=" + os.environ["ACCOUNT"]))["data"]; c = [c["id"] for c in get("customers") if c["name"] == "Customer 1"]; print([s["id"] for s in get("subscriptions") if s["customer"] in c][0])'`
\setenv CANCELED_EARLY :canceled_early
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/subscriptions/$CANCELED_EARLY?account=$ACCOUNT" | python3 -c 'import json,sys; print("canceled before the sync:", json.load(sys.stdin)["status"])'

CREATE SERVER regress_collections FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_collections OPTIONS (api_key 'sk_test_regress_collections');
CREATE SCHEMA regress_collections;
IMPORT FOREIGN SCHEMA stripe FROM SERVER regress_collections INTO regress_collections;
\d regress_collections.prices
\d regress_collections.subscriptions
SELECT "table", collection FROM sequin.sync_status WHERE server = 'regress_collections';
-- What each table accepts, as information_schema and views see it.
SELECT c.relname AS "table",
       pg_relation_is_updatable(c.oid, false) & 8 > 0 AS insert,
       pg_relation_is_updatable(c.oid, false) & 4 > 0 AS update,
       pg_relation_is_updatable(c.oid, false) & 16 > 0 AS delete
  FROM pg_class c WHERE c.relnamespace = 'regress_collections'::regnamespace AND c.relkind = 'f' ORDER BY 1;

-- The worker backfills every collection, then follows its events.
SELECT pg_temp.wait_for($$SELECT count(*) = 5 AND bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'regress_collections'$$, 30) AS backfilled;
SELECT collection, phase, rows, last_error FROM sequin.sync_status WHERE server = 'regress_collections' ORDER BY collection;

-- How many rows differ between a local query and the same columns of the
-- API's objects (missing on either side, or different).
CREATE FUNCTION pg_temp.differences(local text, api text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((%1$s EXCEPT %2$s) UNION ALL (%2$s EXCEPT %1$s)) d', local, api) INTO n;
    RETURN n;
END $$;
-- The API's objects, as the mock's admin interface lists them.
CREATE TEMP TABLE api (state jsonb);
\set api_state `python3 -c 'import json, os, urllib.request as r; get = lambda p: json.load(r.urlopen(os.environ["MOCK_URL"] + "/_admin/stripe/" + p + "?account=" + os.environ["ACCOUNT"]))["data"]; print(json.dumps({p: get(p) for p in ["products", "prices", "subscriptions", "invoices"]}))'`
INSERT INTO api VALUES (:'api_state');
-- Every table equals the API, row for row; timestamps compare as timestamptz.
CREATE TEMP VIEW differences AS SELECT
  pg_temp.differences(
    $$SELECT id, name, description, active, metadata, created, updated FROM regress_collections.products WHERE NOT deleted$$,
    $$SELECT id, name, description, active, metadata, to_timestamp(created), to_timestamp(updated)
        FROM api, jsonb_to_recordset(state->'products') AS o(id text, name text, description text, active boolean, metadata jsonb, created bigint, updated bigint)$$) AS products,
  pg_temp.differences(
    $$SELECT id, product, active, currency, unit_amount, nickname, recurring, type, created FROM regress_collections.prices$$,
    $$SELECT id, product, active, currency, unit_amount, nickname, recurring, type, to_timestamp(created)
        FROM api, jsonb_to_recordset(state->'prices') AS o(id text, product text, active boolean, currency text, unit_amount bigint, nickname text, recurring jsonb, type text, created bigint)$$) AS prices,
  pg_temp.differences(
    $$SELECT id, customer, status, items, cancel_at_period_end, current_period_start, current_period_end, canceled_at, latest_invoice, metadata FROM regress_collections.subscriptions$$,
    $$SELECT id, customer, status, items, cancel_at_period_end, to_timestamp(current_period_start), to_timestamp(current_period_end), to_timestamp(canceled_at), latest_invoice, metadata
        FROM api, jsonb_to_recordset(state->'subscriptions') AS o(id text, customer text, status text, items jsonb, cancel_at_period_end boolean, current_period_start bigint, current_period_end bigint, canceled_at bigint, latest_invoice text, metadata jsonb)$$) AS subscriptions,
  pg_temp.differences(
    $$SELECT id, customer, subscription, status, number, currency, amount_due, amount_paid, total, paid, lines, period_start FROM regress_collections.invoices$$,
    $$SELECT id, customer, subscription, status, number, currency, amount_due, amount_paid, total, paid, lines, to_timestamp(period_start)
        FROM api, jsonb_to_recordset(state->'invoices') AS o(id text, customer text, subscription text, status text, number text, currency text, amount_due bigint, amount_paid bigint, total bigint, paid boolean, lines jsonb, period_start bigint)$$) AS invoices;
SELECT * FROM differences;
SELECT count(*) FILTER (WHERE status = 'active') AS active, count(*) FILTER (WHERE status = 'canceled') AS canceled,
       bool_or(id = :'canceled_early' AND status = 'canceled' AND NOT deleted) AS canceled_early_is_a_row
  FROM regress_collections.subscriptions;
-- Joins across the collections, all local.
SELECT p.nickname, p.unit_amount, p.currency, p.recurring->>'interval' AS every, pr.name AS product
  FROM regress_collections.prices p JOIN regress_collections.products pr ON pr.id = p.product
 WHERE p.nickname IN ('Price 1', 'Price 2', 'Price 21') ORDER BY 1;
SELECT c.name AS customer, s.status, pr.nickname AS price, i.status AS invoice, i.amount_paid,
       i.number = c.raw->>'invoice_prefix' || '-0001' AS numbered
  FROM regress_collections.subscriptions s
  JOIN regress_collections.customers c ON c.id = s.customer
  JOIN regress_collections.prices pr ON pr.id = s.items->'data'->0->'price'->>'id'
  JOIN regress_collections.invoices i ON i.id = s.latest_invoice
 WHERE c.name IN ('Customer 2', 'Customer 3') ORDER BY 1;

-- INSERT a product, a price for it and a subscription to that price: each
-- goes to the API first; RETURNING shows what the API made of it.
INSERT INTO regress_collections.products (name, description, metadata)
  VALUES ('Platinum', 'The top plan', '{"tier":"4"}')
  RETURNING id LIKE 'prod_%' AS api_id, name, description, active, metadata, updated = created AS never_updated, deleted;
SELECT id AS platinum FROM regress_collections.products WHERE name = 'Platinum' \gset
INSERT INTO regress_collections.prices (product, currency, unit_amount, recurring, nickname)
  VALUES (:'platinum', 'EUR', 4900, '{"interval": "month"}', 'Platinum monthly')
  RETURNING id LIKE 'price_%' AS api_id, product = :'platinum' AS of_platinum, currency, unit_amount, recurring, type, active;
SELECT id AS platinum_monthly FROM regress_collections.prices WHERE nickname = 'Platinum monthly' \gset
SELECT id AS customer2 FROM regress_collections.customers WHERE name = 'Customer 2' \gset
INSERT INTO regress_collections.subscriptions (customer, items, metadata)
  VALUES (:'customer2', jsonb_build_array(jsonb_build_object('price', :'platinum_monthly', 'quantity', 2)), '{"seats":"2"}')
  RETURNING id LIKE 'sub_%' AS api_id, status, items->'data'->0->'price'->>'nickname' AS price,
            items->'data'->0->'quantity' AS quantity, current_period_end > current_period_start AS has_a_period,
            cancel_at_period_end, metadata, latest_invoice LIKE 'in_%' AS invoiced;
SELECT id AS platinum_sub, latest_invoice AS platinum_invoice FROM regress_collections.subscriptions WHERE metadata->>'seats' = '2' \gset
-- Stripe billed it at once; the invoice arrives through its events
-- (invoice.created, .finalized, .paid), the last one winning.
SELECT pg_temp.wait_for(format($$SELECT status = 'paid' FROM regress_collections.invoices WHERE id = %L$$, :'platinum_invoice'), 3) AS invoice_arrived;
SELECT status, amount_due, amount_paid, currency, paid, subscription = :'platinum_sub' AS of_the_subscription,
       customer = :'customer2' AS of_the_customer, lines->'data'->0->>'quantity' AS quantity
  FROM regress_collections.invoices WHERE id = :'platinum_invoice';

-- UPDATE sends the SET list.
UPDATE regress_collections.products SET name = 'Platinum Plus' WHERE id = :'platinum'
  RETURNING name, description, updated >= created AS stamped;
UPDATE regress_collections.prices SET nickname = 'Platinum (monthly)', metadata = '{"launch":"2026"}' WHERE id = :'platinum_monthly'
  RETURNING nickname, metadata, unit_amount;
UPDATE regress_collections.subscriptions SET cancel_at_period_end = true WHERE id = :'platinum_sub'
  RETURNING status, cancel_at_period_end, cancel_at = current_period_end AS cancels_at_period_end;
\setenv PLATINUM :platinum
\setenv PLATINUM_MONTHLY :platinum_monthly
\! curl -s "$MOCK_URL/_admin/stripe/products/$PLATINUM?account=$ACCOUNT" | python3 -c 'import json,sys; p = json.load(sys.stdin); print("in the API:", p["name"])'
\! curl -s "$MOCK_URL/_admin/stripe/prices/$PLATINUM_MONTHLY?account=$ACCOUNT" | python3 -c 'import json,sys; p = json.load(sys.stdin); print("in the API:", p["nickname"], p["metadata"], p["unit_amount"])'

-- Refused before any request: a price's amount (fixed once created), a
-- price's DELETE (Stripe archives prices), any write to invoices.
\set requests_before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if k != "GET /v1/events"))'`
SELECT pg_temp.error_of(format($$UPDATE regress_collections.prices SET unit_amount = 5900 WHERE id = %L$$, :'platinum_monthly'));
SELECT pg_temp.error_of(format($$UPDATE regress_collections.subscriptions SET items = '[]' WHERE id = %L$$, :'platinum_sub'));
SELECT pg_temp.error_of(format($$DELETE FROM regress_collections.prices WHERE id = %L$$, :'platinum_monthly'));
SELECT pg_temp.error_of(format($$INSERT INTO regress_collections.invoices (customer) VALUES (%L)$$, :'customer2'));
SELECT pg_temp.error_of($$UPDATE regress_collections.invoices SET description = 'changed'$$);
SELECT pg_temp.error_of($$DELETE FROM regress_collections.invoices WHERE status = 'paid'$$);
SELECT pg_temp.error_of($$DELETE FROM regress_collections.invoices WHERE false$$);
\set requests_after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if k != "GET /v1/events"))'`
SELECT :requests_after - :requests_before AS api_requests_made_by_refused_statements;
SELECT unit_amount, nickname FROM regress_collections.prices WHERE id = :'platinum_monthly';
SELECT count(*) FILTER (WHERE description = 'changed') AS invoices_changed, count(*) FILTER (WHERE deleted) AS invoices_deleted
  FROM regress_collections.invoices;

-- DELETE of a subscription is Stripe's cancellation: the subscription stays
-- (in Stripe and in the table), canceled, and is not marked deleted.
DELETE FROM regress_collections.subscriptions WHERE id = :'platinum_sub'
  RETURNING status, canceled_at IS NOT NULL AS has_canceled_at, ended_at IS NOT NULL AS has_ended_at, deleted;
\setenv PLATINUM_SUB :platinum_sub
\! curl -s "$MOCK_URL/_admin/stripe/subscriptions/$PLATINUM_SUB?account=$ACCOUNT" | python3 -c 'import json,sys; print("in the API:", json.load(sys.stdin)["status"])'
SELECT status, deleted FROM regress_collections.subscriptions WHERE id = :'platinum_sub';

-- Changes made in the API by someone else arrive within the poll interval:
-- a subscription canceled (customer.subscription.deleted brings the
-- canceled subscription, not a deletion), a price archived, a product renamed.
SELECT s.id AS outside_sub FROM regress_collections.subscriptions s JOIN regress_collections.customers c ON c.id = s.customer
 WHERE c.name = 'Customer 3' \gset
SELECT id AS price_1 FROM regress_collections.prices WHERE nickname = 'Price 1' \gset
SELECT product AS product_1 FROM regress_collections.prices WHERE nickname = 'Price 1' \gset
\setenv OUTSIDE_SUB :outside_sub
\setenv PRICE_1 :price_1
\setenv PRODUCT_1 :product_1
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/subscriptions/$OUTSIDE_SUB?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/prices/$PRICE_1?account=$ACCOUNT" -H 'content-type: application/json' -d '{"active": false}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/products/$PRODUCT_1?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Renamed Outside"}' -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT status = 'canceled' FROM regress_collections.subscriptions WHERE id = %L$$, :'outside_sub'), 3) AS cancel_arrived,
       pg_temp.wait_for(format($$SELECT NOT active FROM regress_collections.prices WHERE id = %L$$, :'price_1'), 3) AS archive_arrived,
       pg_temp.wait_for(format($$SELECT name = 'Renamed Outside' FROM regress_collections.products WHERE id = %L$$, :'product_1'), 3) AS rename_arrived;
SELECT status, deleted FROM regress_collections.subscriptions WHERE id = :'outside_sub';

-- Stripe keeps events 30 days. Once the event a sync's cursor names is gone,
-- the sync starts a new backfill instead of failing forever, and a change
-- made meanwhile still arrives.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/events/expire?account=$ACCOUNT" | python3 -c 'import json,sys; print("events expired:", json.load(sys.stdin)["expired"] > 0)'
\! curl -s -X POST "$MOCK_URL/_admin/stripe/products/$PLATINUM?account=$ACCOUNT" -H 'content-type: application/json' -d '{"description": "After the events expired"}' -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT description = 'After the events expired' FROM regress_collections.products WHERE id = %L$$, :'platinum'), 10) AS change_arrived;
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'regress_collections'$$, 10) AS syncing_again;

-- In the end every table equals the API again, row for row.
\set api_state `python3 -c 'import json, os, urllib.request as r; get = lambda p: json.load(r.urlopen(os.environ["MOCK_URL"] + "/_admin/stripe/" + p + "?account=" + os.environ["ACCOUNT"]))["data"]; print(json.dumps({p: get(p) for p in ["products", "prices", "subscriptions", "invoices"]}))'`
UPDATE api SET state = :'api_state';
SELECT * FROM differences;
SELECT collection, phase, rows, consecutive_failures FROM sequin.sync_status WHERE server = 'regress_collections' ORDER BY collection;

DROP SCHEMA regress_collections CASCADE;
DROP SERVER regress_collections CASCADE;
SELECT count(*) AS shadow_tables_left FROM pg_class WHERE relnamespace = 'sequin_shadow'::regnamespace AND relname LIKE 'regress_collections%';
