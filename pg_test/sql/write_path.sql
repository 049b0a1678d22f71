-- The write path's SQL semantics: per-statement limits checked before any
-- request, any WHERE, RETURNING from the API, partial failures, rollbacks
-- and savepoints, ON CONFLICT, a local apply that fails (40003), records
-- deleted upstream, shadow tables closed to direct writes, and roles.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_write_path
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=120"; echo

CREATE SERVER regress_write FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s', timeout '2s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_write OPTIONS (api_key 'sk_test_regress_write_path');
CREATE SCHEMA regress_write;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_write INTO regress_write;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 120 FROM sequin.sync_status WHERE server = 'regress_write'$$, 20) AS backfilled;

-- Per-statement limits (100 rows for Stripe): refused before any request.
-- Write requests the mock has seen (the sync's GETs excluded).
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(sum(n for k, n in json.load(sys.stdin)["by_route"].items() if not k.startswith("GET")))'`
SELECT pg_temp.error_of($$UPDATE regress_write.customers SET name = 'too many'$$);
SELECT pg_temp.error_of($$INSERT INTO regress_write.customers (email) SELECT 'bulk' || g || '@example.com' FROM generate_series(1, 101) g$$);
SELECT pg_temp.error_of($$DELETE FROM regress_write.customers WHERE email LIKE 'customer%'$$);
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(sum(n for k, n in json.load(sys.stdin)["by_route"].items() if not k.startswith("GET")))'`
SELECT :after - :before AS requests_sent, count(*) FILTER (WHERE name = 'too many') AS renamed FROM regress_write.customers;
-- COPY hands rows over one by one, so they cannot be counted first: refused.
SELECT pg_temp.error_of($$COPY regress_write.customers (email) FROM PROGRAM 'echo copied@example.com'$$);
-- A table option lowers the limit.
ALTER FOREIGN TABLE regress_write.customers OPTIONS (ADD max_rows_per_statement '3');
SELECT pg_temp.error_of($$UPDATE regress_write.customers SET name = 'four' WHERE id IN (SELECT id FROM regress_write.customers ORDER BY id LIMIT 4)$$);
ALTER FOREIGN TABLE regress_write.customers OPTIONS (SET max_rows_per_statement 'many');
ALTER FOREIGN TABLE regress_write.customers OPTIONS (DROP max_rows_per_statement);

-- Any WHERE: subqueries, joins, IN lists. RETURNING comes from the API.
CREATE TEMP TABLE vip (email text);
INSERT INTO vip VALUES ('customer1@example.com'), ('customer2@example.com');
UPDATE regress_write.customers c SET description = 'vip' FROM vip WHERE vip.email = c.email
  RETURNING c.email, c.description, c.raw->>'description' AS api_description;
UPDATE regress_write.customers SET metadata = '{"tier":"gold"}'
  WHERE id IN (SELECT id FROM regress_write.customers WHERE email IN ('customer3@example.com', 'customer4@example.com'))
  RETURNING email, metadata;
INSERT INTO regress_write.customers (email, name)
  SELECT 'copy-' || email, name FROM regress_write.customers WHERE email IN ('customer5@example.com', 'customer6@example.com')
  RETURNING id LIKE 'cus_%' AS api_id, email, deleted, upstream_updated_at IS NOT NULL AS stamped;
DELETE FROM regress_write.customers WHERE email LIKE 'copy-%' RETURNING email, deleted;

-- Row k of a statement fails: the DETAIL lists the rows already applied
-- upstream, exactly those the API has.
SELECT id AS third FROM regress_write.customers WHERE email = 'customer9@example.com' \gset
\setenv THIRD :third
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d "{\"account\": \"$ACCOUNT\", \"path_prefix\": \"/v1/customers/$THIRD\", \"kind\": \"status\", \"status\": 400, \"count\": 1}" -o /dev/null
SELECT pg_temp.error_of($$UPDATE regress_write.customers SET name = 'batch'
                          WHERE email IN ('customer7@example.com', 'customer8@example.com', 'customer9@example.com', 'customer10@example.com')$$) AS error \gset
SELECT split_part(:'error', E'\n', 1) AS error;
\set api_state `curl -s "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.dumps({c["id"]: c["name"] for c in json.load(sys.stdin)["data"]}))'`
-- Each of the four: renamed in the API exactly when the DETAIL lists it.
SELECT bool_and((:'api_state'::jsonb->>id = 'batch') = (strpos(substring(:'error' from 'Already applied.*'), id) > 0)) AS detail_matches_api,
       count(*) FILTER (WHERE :'api_state'::jsonb->>id = 'batch') BETWEEN 0 AND 3 AS stopped_at_the_failure
  FROM regress_write.customers WHERE email IN ('customer7@example.com', 'customer8@example.com', 'customer9@example.com', 'customer10@example.com');
-- They were rolled back locally with the statement, then re-read.
SELECT pg_temp.wait_for(format($$SELECT bool_and(name = coalesce(%L::jsonb->>id, name)) FROM regress_write.customers
                                  WHERE email IN ('customer7@example.com', 'customer8@example.com')$$, :'api_state'), 3) AS reread;

-- A rolled-back transaction: the API keeps its changes; a WARNING says so
-- and the records are re-read, so the table matches the API again.
BEGIN;
INSERT INTO regress_write.customers (email, name) VALUES ('rolled-back@example.com', 'Kept upstream');
UPDATE regress_write.customers SET name = 'Renamed in a rollback' WHERE email = 'customer11@example.com';
ROLLBACK;
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_write.customers WHERE email = 'rolled-back@example.com'$$, 3) AS insert_reread,
       pg_temp.wait_for($$SELECT name = 'Renamed in a rollback' FROM regress_write.customers WHERE email = 'customer11@example.com'$$, 3) AS update_reread;
-- A savepoint: only its own changes are reported.
BEGIN;
UPDATE regress_write.customers SET name = 'Committed' WHERE email = 'customer12@example.com';
SAVEPOINT s;
DELETE FROM regress_write.customers WHERE email = 'customer13@example.com';
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT pg_temp.wait_for($$SELECT deleted FROM regress_write.customers WHERE email = 'customer13@example.com'$$, 3) AS delete_reread,
       (SELECT name FROM regress_write.customers WHERE email = 'customer12@example.com') AS committed_name;

-- ON CONFLICT: DO UPDATE is refused before any request; DO NOTHING skips a
-- row the API reports as a duplicate.
SELECT pg_temp.error_of($$INSERT INTO regress_write.customers (email) VALUES ('x@example.com') ON CONFLICT (id) DO UPDATE SET name = 'x'$$);
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d "{\"account\": \"$ACCOUNT\", \"method\": \"POST\", \"kind\": \"status\", \"status\": 409, \"count\": 1}" -o /dev/null
INSERT INTO regress_write.customers (email) VALUES ('duplicate@example.com') ON CONFLICT DO NOTHING RETURNING email;
INSERT INTO regress_write.customers (email) VALUES ('unique@example.com') ON CONFLICT (id) DO NOTHING RETURNING email;

-- Applied upstream, refused locally (a CHECK a DBA added): 40003, and the
-- record arrives once the table accepts it.
ALTER TABLE sequin_shadow.regress_write_customers ADD CONSTRAINT no_blocked CHECK (name IS DISTINCT FROM 'Blocked locally') NOT VALID;
SELECT regexp_replace(pg_temp.error_of($$INSERT INTO regress_write.customers (email, name) VALUES ('blocked@example.com', 'Blocked locally')$$), 'cus_[A-Za-z0-9]+', 'cus_…');
\! curl -s "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" | python3 -c 'import json,sys; print("in the API:", [c["name"] for c in json.load(sys.stdin)["data"] if c["email"] == "blocked@example.com"])'
ALTER TABLE sequin_shadow.regress_write_customers DROP CONSTRAINT no_blocked;
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_write.customers WHERE email = 'blocked@example.com'$$, 10) AS arrived_after_sync;

-- Deleted upstream: an UPDATE fails with HV000 and the row is marked
-- deleted at once (no need to wait for the change feed); a DELETE succeeds.
ALTER SERVER regress_write OPTIONS (SET poll_interval '1h');
SELECT pg_sleep(1.5);
SELECT id AS gone1 FROM regress_write.customers WHERE email = 'customer20@example.com' \gset
SELECT id AS gone2 FROM regress_write.customers WHERE email = 'customer21@example.com' \gset
\setenv GONE1 :gone1
\setenv GONE2 :gone2
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$GONE1?account=$ACCOUNT" -o /dev/null
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$GONE2?account=$ACCOUNT" -o /dev/null
SELECT regexp_replace(pg_temp.error_of(format($$UPDATE regress_write.customers SET name = 'late' WHERE id = %L$$, :'gone1')), 'cus_[A-Za-z0-9]+', 'cus_…', 'g');
SELECT pg_temp.wait_for(format($$SELECT deleted FROM regress_write.customers WHERE id = %L$$, :'gone1'), 2) AS marked_deleted;
DELETE FROM regress_write.customers WHERE id = :'gone2' RETURNING email, deleted;
ALTER SERVER regress_write OPTIONS (SET poll_interval '1s');

-- Shadow tables are written only by the extension, even for superusers.
SELECT pg_temp.error_of($$INSERT INTO sequin_shadow.regress_write_customers (id) VALUES ('cus_fake')$$);
SELECT pg_temp.error_of($$UPDATE sequin_shadow.regress_write_customers SET name = 'direct'$$);
SELECT pg_temp.error_of($$DELETE FROM sequin_shadow.regress_write_customers$$);
SELECT pg_temp.error_of($$TRUNCATE sequin_shadow.regress_write_customers$$);
SELECT count(*) > 0 AS readable FROM sequin_shadow.regress_write_customers;

-- A single-row write finds its row by the primary key, however large the
-- shadow table has grown since its statements were planned: no sequential
-- scan of it (the apply's join with the records, planned while the table
-- was small, went on scanning all of it for every record). On a table
-- large enough that the statement's own scan is a lookup too.
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=sk_test_regress_write_big" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=sk_test_regress_write_big&count=1500"; echo
CREATE SERVER regress_write_big FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s', timeout '2s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_write_big OPTIONS (api_key 'sk_test_regress_write_big');
CREATE SCHEMA regress_write_big;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_write_big INTO regress_write_big;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 1500 FROM sequin.sync_status WHERE server = 'regress_write_big'$$, 30) AS backfilled;
ANALYZE sequin_shadow.regress_write_big_customers;
SELECT id AS by_id1 FROM regress_write_big.customers WHERE email = 'customer50@example.com' \gset
SELECT id AS by_id2 FROM regress_write_big.customers WHERE email = 'customer51@example.com' \gset
SELECT id AS by_id3 FROM regress_write_big.customers WHERE email = 'customer52@example.com' \gset
EXPLAIN (COSTS OFF) DELETE FROM regress_write_big.customers WHERE id = 'cus_x';
BEGIN;
-- (The statistics count since they were last reported, not per transaction.)
SELECT seq_scan AS scans_before FROM pg_stat_xact_user_tables WHERE relid = 'sequin_shadow.regress_write_big_customers'::regclass \gset
UPDATE regress_write_big.customers SET name = 'by id' WHERE id = :'by_id1';
DELETE FROM regress_write_big.customers WHERE id = :'by_id2';
DELETE FROM regress_write_big.customers WHERE id = :'by_id3' RETURNING deleted;
SELECT seq_scan - :scans_before AS shadow_scans FROM pg_stat_xact_user_tables
 WHERE relid = 'sequin_shadow.regress_write_big_customers'::regclass;
COMMIT;
DROP SCHEMA regress_write_big CASCADE;
DROP SERVER regress_write_big CASCADE;

-- Roles: a non-superuser with privileges on the foreign table and a user
-- mapping reads and writes with its own key; without a mapping of its own
-- it falls back to PUBLIC's; with neither it gets 28000 naming the server.
CREATE ROLE regress_writer;
CREATE ROLE regress_stranger;
GRANT USAGE ON SCHEMA regress_write TO regress_writer, regress_stranger;
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_write.customers TO regress_writer, regress_stranger;
CREATE USER MAPPING FOR regress_writer SERVER regress_write OPTIONS (api_key 'sk_test_regress_write_path');
SET ROLE regress_writer;
SELECT count(*) > 100 AS reads FROM regress_write.customers;
INSERT INTO regress_write.customers (email) VALUES ('writer@example.com') RETURNING email;
UPDATE regress_write.customers SET name = 'Writer' WHERE email = 'writer@example.com' RETURNING name;
DELETE FROM regress_write.customers WHERE email = 'writer@example.com' RETURNING deleted;
SET ROLE regress_stranger;
UPDATE regress_write.customers SET name = 'Via PUBLIC' WHERE email = 'customer30@example.com' RETURNING name;
RESET ROLE;
DROP USER MAPPING FOR PUBLIC SERVER regress_write;
SET ROLE regress_stranger;
SELECT pg_temp.error_of($$UPDATE regress_write.customers SET name = 'nobody' WHERE email = 'customer30@example.com'$$);
RESET ROLE;
DROP OWNED BY regress_writer, regress_stranger;
DROP ROLE regress_writer;
DROP ROLE regress_stranger;

SELECT server, phase, last_error, consecutive_failures FROM sequin.sync_status WHERE server = 'regress_write';
DROP SCHEMA regress_write CASCADE;
DROP SERVER regress_write CASCADE;
