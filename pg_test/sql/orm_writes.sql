-- Writes the way ORMs send them: IMPORT declares the columns the API
-- assigns with a server default (reflection sees it; RETURNING brings the
-- API's value), an INSERT may name them with NULL or DEFAULT, an UPDATE may
-- name a read-only column with the value it has; only a real change is
-- refused. \d+ says who owns each column; EXPLAIN ANALYZE of a write shows
-- what it asked the API.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_orm
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
CREATE SERVER regress_orm FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1h');
CREATE USER MAPPING FOR PUBLIC SERVER regress_orm OPTIONS (api_key 'sk_test_regress_orm');
CREATE SCHEMA regress_orm;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, products, prices) FROM SERVER regress_orm INTO regress_orm;
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'regress_orm'$$, 20) AS backfilled;
\d+ regress_orm.customers

-- INSERT with the API's columns as DEFAULT or NULL: they are not sent.
INSERT INTO regress_orm.customers (id, email, name, created, deleted, raw)
VALUES (DEFAULT, 'ada@example.com', 'Ada', NULL, DEFAULT, NULL)
RETURNING id LIKE 'cus_%' AS api_id, email, created IS NOT NULL AS api_created, deleted;
-- Setting one for real is refused.
SELECT pg_temp.error_of($$INSERT INTO regress_orm.customers (id, email) VALUES ('cus_mine', 'x@example.com')$$);

-- An UPDATE that names every column, as Django's save() does: the
-- read-only ones keep their values and are not sent.
UPDATE regress_orm.customers c SET
  id = c.id, email = c.email, name = 'Ada Lovelace', description = c.description, phone = c.phone,
  balance = c.balance, currency = c.currency, delinquent = c.delinquent, metadata = c.metadata,
  address = c.address, created = c.created, deleted = c.deleted, updated_idx = c.updated_idx,
  upstream_updated_at = c.upstream_updated_at, sync_id = c.sync_id, sync_external_id = c.sync_external_id,
  sync_metadata = c.sync_metadata, raw = c.raw
 WHERE email = 'ada@example.com'
RETURNING name;
-- The same value written another way is the same value.
UPDATE regress_orm.customers SET created = created::text::timestamptz, deleted = 'f' WHERE email = 'ada@example.com';
-- Only read-only columns, all unchanged: nothing to send, no request.
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
UPDATE regress_orm.customers SET id = id, created = created WHERE email = 'ada@example.com' RETURNING name;
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
SELECT :after - :before AS requests_sent;
-- A real change of a read-only column is refused: a standard field here,
-- a provider's column by the provider (with the columns one may set).
SELECT pg_temp.error_of($$UPDATE regress_orm.customers SET deleted = true WHERE email = 'ada@example.com'$$);
SELECT pg_temp.error_of($$UPDATE regress_orm.customers SET name = 'X', created = now() - interval '1 day' WHERE email = 'ada@example.com'$$);
SELECT name FROM regress_orm.customers WHERE email = 'ada@example.com';
-- A column fixed at creation may be named unchanged, not changed.
INSERT INTO regress_orm.products (name) VALUES ('Plan') RETURNING name;
INSERT INTO regress_orm.prices (product, currency, unit_amount)
SELECT id, 'usd', 1200 FROM regress_orm.products WHERE name = 'Plan' RETURNING currency, unit_amount;
UPDATE regress_orm.prices SET currency = currency, unit_amount = unit_amount, active = false WHERE unit_amount = 1200
RETURNING active;
SELECT pg_temp.error_of($$UPDATE regress_orm.prices SET unit_amount = 1300 WHERE unit_amount = 1200$$);

-- EXPLAIN ANALYZE of a write shows what it asked the API. Without buffers
-- (PostgreSQL 18 shows them by default); 18 prints row counts with two
-- decimals ("rows=1.00"), shown here as 15 prints a whole number.
CREATE FUNCTION pg_temp.explain_analyze(statement text) RETURNS TABLE ("QUERY PLAN" text)
LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF) ' || statement LOOP
        "QUERY PLAN" := regexp_replace(line, '(rows=[0-9]+)\.00\M', '\1', 'g');
        RETURN NEXT;
    END LOOP;
END $$;
SELECT * FROM pg_temp.explain_analyze($$INSERT INTO regress_orm.customers (email) VALUES ('grace@example.com')$$);
SELECT * FROM pg_temp.explain_analyze($$UPDATE regress_orm.customers SET name = 'Grace' WHERE email LIKE '%@example.com'$$);
-- With timing, the time spent waiting for the API too.
CREATE FUNCTION pg_temp.api_of(statement text) RETURNS TABLE (api_requests text, api_time_measured boolean)
LANGUAGE plpgsql AS $$
DECLARE plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || statement INTO plan;
    RETURN QUERY SELECT plan -> 0 -> 'Plan' ->> 'API Requests', (plan -> 0 -> 'Plan' ->> 'API Time')::float8 > 0;
END $$;
SELECT * FROM pg_temp.api_of($$DELETE FROM regress_orm.customers WHERE email = 'grace@example.com'$$);

DROP SCHEMA regress_orm CASCADE;
DROP SERVER regress_orm CASCADE;
