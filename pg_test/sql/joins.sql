-- Joins on id: a join of another table's column to a synced table's `id`
-- is planned as a nested loop whose inner side probes the shadow table's
-- primary key once per outer row (a parameterized foreign scan), as a join
-- of the shadow tables themselves would be, and returns the same rows.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_joins
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=20000"; echo
\! curl -s -X POST "$MOCK_URL/_admin/stripe/subscriptions/seed?account=$ACCOUNT&count=30"; echo
CREATE SERVER regress_joins FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1h');
CREATE USER MAPPING FOR PUBLIC SERVER regress_joins OPTIONS (api_key 'sk_test_regress_joins');
CREATE SCHEMA regress_joins;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, subscriptions) FROM SERVER regress_joins INTO regress_joins;
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental') AND sum(rows) = 20060 FROM sequin.sync_status WHERE server = 'regress_joins'$$, 60) AS backfilled;
ANALYZE sequin_shadow.regress_joins_customers, sequin_shadow.regress_joins_subscriptions;
-- No sync from here on: every request the mock sees now would be a read's.
SELECT sequin.pause('regress_joins');
SELECT pg_sleep(0.5);
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`

-- The plan: a nested loop probing the customers' primary key.
-- (PostgreSQL 18 writes the join clause the other way round, "id =
-- s.customer": its output is expected/joins_1.out, otherwise the same.)
EXPLAIN (COSTS OFF)
SELECT count(*), sum(c.balance) FROM regress_joins.subscriptions s
  JOIN regress_joins.customers c ON c.id = s.customer WHERE s.status = 'active';
-- Either side written first, and as a semi-join.
EXPLAIN (COSTS OFF)
SELECT c.email FROM regress_joins.customers c, regress_joins.subscriptions s WHERE s.customer = c.id;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM regress_joins.customers c
 WHERE c.id IN (SELECT customer FROM regress_joins.subscriptions);

-- Estimates come from the shadow tables' statistics (a foreign table has
-- none of its own): the same as for the shadow table itself.
CREATE FUNCTION pg_temp.plan_figure(figure text, query text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> figure)::float8;
END $$;
SELECT condition,
       pg_temp.plan_figure('Plan Rows', 'SELECT * FROM regress_joins.customers WHERE ' || condition) AS foreign_table,
       pg_temp.plan_figure('Plan Rows', 'SELECT * FROM sequin_shadow.regress_joins_customers WHERE ' || condition) AS shadow_table
  FROM (VALUES ('email = ''customer1@example.com'''), ('name LIKE ''Customer 1%'''), ('currency IS NULL'),
               ('balance > 0')) AS c(condition);
-- A sequential scan costs what the shadow table's own does, checking its
-- conditions on every row included: the planner weighs it fairly against
-- the primary key's index.
SELECT condition,
       pg_temp.plan_figure('Total Cost', 'SELECT id FROM regress_joins.customers WHERE ' || condition)
     = pg_temp.plan_figure('Total Cost', 'SELECT id FROM sequin_shadow.regress_joins_customers WHERE ' || condition) AS same_cost
  FROM (VALUES ('name LIKE ''Customer 1%'''), ('balance > 0 AND currency IS NULL'), ('true')) AS c(condition);


SELECT count(*), sum(c.balance), md5(string_agg(c.email, ',' ORDER BY c.email)) AS emails
  FROM regress_joins.subscriptions s JOIN regress_joins.customers c ON c.id = s.customer
 WHERE s.status = 'active';
SELECT count(*), sum(c.balance), md5(string_agg(c.email, ',' ORDER BY c.email)) AS emails
  FROM sequin_shadow.regress_joins_subscriptions s JOIN sequin_shadow.regress_joins_customers c ON c.id = s.customer
 WHERE s.status = 'active';
-- An outer join keeps subscriptions whose customer is unknown locally.
CREATE TEMP TABLE orphan AS SELECT 'sub_orphan' AS id, 'cus_missing' AS customer;
SELECT o.id, c.id AS customer FROM orphan o LEFT JOIN regress_joins.customers c ON c.id = o.customer;
-- A lateral reference is a parameter of the probe, too.
SELECT s.id IS NOT NULL AS has_subscription, x.email IS NOT NULL AS found
  FROM regress_joins.subscriptions s,
       LATERAL (SELECT email FROM regress_joins.customers c WHERE c.id = s.customer) x
 LIMIT 3;
-- Indexes made on a shadow table serve conditions on their first column
-- and ORDER BY it; with LIMIT only the first rows are read.
CREATE INDEX regress_joins_email ON sequin_shadow.regress_joins_customers (email);
CREATE INDEX regress_joins_created ON sequin_shadow.regress_joins_customers (created DESC);
ANALYZE sequin_shadow.regress_joins_customers;
EXPLAIN (COSTS OFF) SELECT id FROM regress_joins.customers WHERE email = 'customer7@example.com';
EXPLAIN (COSTS OFF) SELECT id FROM regress_joins.customers WHERE 'customer1999' <= email AND email < 'customer19995';
EXPLAIN (COSTS OFF) SELECT id FROM regress_joins.customers ORDER BY created DESC LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM regress_joins.customers ORDER BY created LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM regress_joins.customers WHERE id > 'cus_z' ORDER BY id LIMIT 3;
-- The same rows as the shadow table gives, in the same order.
SELECT cardinality(f.same) AS rows, f.same = s.same AS same
  FROM (SELECT array_agg(id) AS same FROM (SELECT id FROM regress_joins.customers
          WHERE 'customer1999' <= email AND email < 'customer19995' ORDER BY id) x) f,
       (SELECT array_agg(id) AS same FROM (SELECT id FROM sequin_shadow.regress_joins_customers
          WHERE 'customer1999' <= email AND email < 'customer19995' ORDER BY id) x) s
;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM regress_joins.customers ORDER BY created DESC LIMIT 5) x)
     = (SELECT array_agg(id) FROM (SELECT id FROM sequin_shadow.regress_joins_customers ORDER BY created DESC LIMIT 5) x) AS newest_first,
       (SELECT array_agg(id) FROM (SELECT id FROM regress_joins.customers ORDER BY created LIMIT 5) x)
     = (SELECT array_agg(id) FROM (SELECT id FROM sequin_shadow.regress_joins_customers ORDER BY created LIMIT 5) x) AS oldest_first,
       (SELECT count(*) FROM regress_joins.customers WHERE created >= current_date - 1)
     = (SELECT count(*) FROM sequin_shadow.regress_joins_customers WHERE created >= current_date - 1) AS against_a_date;
-- A NULL value matches nothing; a condition the index cannot take (a
-- function of the column) reads the table.
PREPARE by_email(text) AS SELECT count(*) FROM regress_joins.customers WHERE email = $1;
EXECUTE by_email(NULL);
EXECUTE by_email('customer7@example.com');
-- A cached plan that used an index is planned again once the index is gone.
SET plan_cache_mode = force_generic_plan;
EXECUTE by_email('customer7@example.com');
EXPLAIN (COSTS OFF) EXECUTE by_email('customer7@example.com');
EXPLAIN (COSTS OFF) SELECT id FROM regress_joins.customers WHERE lower(email) = 'customer7@example.com';
DROP INDEX sequin_shadow.regress_joins_email;
EXECUTE by_email('customer7@example.com');
EXPLAIN (COSTS OFF) EXECUTE by_email('customer7@example.com');
RESET plan_cache_mode;

-- None of it asked the API.
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
SELECT :after - :before AS api_requests;

DROP SCHEMA regress_joins CASCADE;
DROP SERVER regress_joins CASCADE;
