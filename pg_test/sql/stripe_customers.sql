-- Stripe customers end to end, as a user would do it: import, backfill,
-- local reads, API-first writes, a refused write, and changes made in the
-- API "from outside" arriving within the poll interval.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_customers
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=250"; echo

CREATE SERVER regress_stripe FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s',
           external_id 'acct-42', metadata '{"team":"billing"}');
CREATE USER MAPPING FOR PUBLIC SERVER regress_stripe OPTIONS (api_key 'sk_test_regress_customers');
CREATE SCHEMA regress_stripe;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_stripe INTO regress_stripe;
\d regress_stripe.customers
SELECT foreign_table::regclass AS "table", shadow_table FROM sequin.collections WHERE foreign_table = 'regress_stripe.customers'::regclass;

-- The worker backfills all 250 customers, then follows events.
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 250 FROM sequin.sync_status WHERE server = 'regress_stripe'$$, 20) AS backfilled;
SELECT server, "table", phase, rows, backfill, last_error, consecutive_failures
  FROM sequin.sync_status WHERE server = 'regress_stripe';
SELECT count(*), count(DISTINCT id), bool_and(NOT deleted) AS none_deleted,
       bool_and(sync_id = 'regress_stripe' AND sync_external_id = 'acct-42' AND sync_metadata = '{"team":"billing"}') AS stamped
  FROM regress_stripe.customers;
SELECT email, name, raw->>'object' AS object FROM regress_stripe.customers WHERE email = 'customer7@example.com';

-- Reads are served by the shadow table: no API request at all.
\set requests_before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if k != "GET /v1/events"))'`
SELECT count(*) FROM regress_stripe.customers WHERE email LIKE 'customer1%';
SELECT count(*) FROM regress_stripe.customers a JOIN regress_stripe.customers b ON a.id = b.id;
SELECT name FROM regress_stripe.customers ORDER BY created DESC, name DESC LIMIT 2;
-- A scan copies only the columns a query reads; a whole-row reference reads
-- them all.
SELECT to_jsonb(c) ->> 'name' AS name, to_jsonb(c) ->> 'email' AS email, (to_jsonb(c) -> 'raw') ? 'object' AS has_raw
  FROM regress_stripe.customers c WHERE email = 'customer7@example.com';
-- A lookup by id probes the shadow table's primary key.
EXPLAIN (COSTS OFF) SELECT email FROM regress_stripe.customers WHERE id = 'cus_x';
SELECT email FROM regress_stripe.customers
 WHERE id = (SELECT id FROM regress_stripe.customers WHERE email = 'customer7@example.com');
\set requests_after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if k != "GET /v1/events"))'`
SELECT :requests_after - :requests_before AS api_requests_made_by_reads;

-- INSERT goes to the API; RETURNING shows what the API assigned.
INSERT INTO regress_stripe.customers (email, name, metadata)
  VALUES ('ada@example.com', 'Ada', '{"plan":"pro"}')
  RETURNING id LIKE 'cus_%' AS api_id, email, name, metadata, created IS NOT NULL AS has_created, deleted;
SELECT id AS ada FROM regress_stripe.customers WHERE email = 'ada@example.com' \gset
\setenv ADA :ada
\! curl -s "$MOCK_URL/_admin/stripe/customers/$ADA?account=$ACCOUNT" | python3 -c 'import json,sys; c = json.load(sys.stdin); print("in the API:", c["email"], c["name"], c["metadata"])'

-- UPDATE sends the SET list; DELETE marks the row deleted.
UPDATE regress_stripe.customers SET name = 'Ada L.', metadata = '{"plan":"team"}' WHERE id = :'ada'
  RETURNING name, email, metadata;
\! curl -s "$MOCK_URL/_admin/stripe/customers/$ADA?account=$ACCOUNT" | python3 -c 'import json,sys; c = json.load(sys.stdin); print("in the API:", c["email"], c["name"], c["metadata"])'
DELETE FROM regress_stripe.customers WHERE id = :'ada' RETURNING email, deleted;
\! curl -s "$MOCK_URL/_admin/stripe/customers/$ADA?account=$ACCOUNT" | python3 -c 'import json,sys; print("in the API:", json.load(sys.stdin)["error"]["code"])'
SELECT email, deleted FROM regress_stripe.customers WHERE id = :'ada';

-- The API refuses: a normal ERROR with the API's message, and nothing changes.
SELECT pg_temp.error_of($$INSERT INTO regress_stripe.customers (email, name) VALUES ('not-an-email', 'Bad')$$);
SELECT pg_temp.error_of($$INSERT INTO regress_stripe.customers (id, email) VALUES ('cus_mine', 'me@example.com')$$);
SELECT pg_temp.error_of($$UPDATE regress_stripe.customers SET created = now() WHERE email = 'customer1@example.com'$$);
SELECT count(*) FROM regress_stripe.customers WHERE name = 'Bad' OR id = 'cus_mine';

-- Changes made in the API by someone else arrive within poll_interval + 1 s.
SELECT id AS c3 FROM regress_stripe.customers WHERE email = 'customer3@example.com' \gset
SELECT id AS c4 FROM regress_stripe.customers WHERE email = 'customer4@example.com' \gset
\setenv C3 :c3
\setenv C4 :c4
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$C3?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Renamed Outside"}' -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT name = 'Renamed Outside' FROM regress_stripe.customers WHERE id = %L$$, :'c3'), 2) AS update_arrived;
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$C4?account=$ACCOUNT" -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT deleted FROM regress_stripe.customers WHERE id = %L$$, :'c4'), 2) AS delete_arrived;
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -H 'content-type: application/json' -d '{"email": "grace@example.com", "name": "Grace"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_stripe.customers WHERE email = 'grace@example.com'$$, 2) AS create_arrived;
-- Several changes in one second are all applied, the last one winning.
\! for n in 1 2 3 4 5; do curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$C3?account=$ACCOUNT" -H 'content-type: application/json' -d "{\"description\": \"version $n\"}" -o /dev/null; done
SELECT pg_temp.wait_for(format($$SELECT description = 'version 5' FROM regress_stripe.customers WHERE id = %L$$, :'c3'), 2) AS burst_arrived;

-- The shadow table now equals the API, row for row.
\set api_state `curl -s "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.dumps([[c["id"], c["email"], c["name"], c["description"]] for c in json.load(sys.stdin)["data"]]))'`
SELECT count(*) AS differences FROM (
  (SELECT id, email, name, description FROM regress_stripe.customers WHERE NOT deleted
   EXCEPT SELECT * FROM jsonb_to_recordset((SELECT jsonb_agg(jsonb_build_object('id', r->>0, 'email', r->>1, 'name', r->>2, 'description', r->>3)) FROM jsonb_array_elements(:'api_state'::jsonb) r)) AS api(id text, email text, name text, description text))
  UNION ALL
  (SELECT * FROM jsonb_to_recordset((SELECT jsonb_agg(jsonb_build_object('id', r->>0, 'email', r->>1, 'name', r->>2, 'description', r->>3)) FROM jsonb_array_elements(:'api_state'::jsonb) r)) AS api(id text, email text, name text, description text)
   EXCEPT SELECT id, email, name, description FROM regress_stripe.customers WHERE NOT deleted)
) d;
SELECT server, phase, rows, last_error, consecutive_failures FROM sequin.sync_status WHERE server = 'regress_stripe';

DROP SCHEMA regress_stripe CASCADE;
DROP SERVER regress_stripe CASCADE;
SELECT count(*) AS shadow_tables_left FROM pg_class WHERE relnamespace = 'sequin_shadow'::regnamespace AND relname LIKE 'regress_stripe%';
