-- The sync engine: the change feed, soft and hard deletes, a record that
-- does not fit its table, sync_now, pause/resume, resync (and the deletes it
-- finds), an API outage and its recovery, and who may call what.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_sync
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=30" -o /dev/null

CREATE SERVER regress_sync FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '500ms');
CREATE USER MAPPING FOR PUBLIC SERVER regress_sync OPTIONS (api_key 'sk_test_regress_sync');
CREATE SCHEMA regress_sync;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_sync INTO regress_sync;
-- The same collection with hard deletes, and with a column narrower than
-- the API's values (balance as smallint).
CREATE FOREIGN TABLE regress_sync.customers_hard (id text, email text, name text)
  SERVER regress_sync OPTIONS (collection 'customers', delete_mode 'hard');
CREATE FOREIGN TABLE regress_sync.customers_narrow (id text, email text, balance smallint)
  SERVER regress_sync OPTIONS (collection 'customers');
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental') AND sum(rows) = 90
                            FROM sequin.sync_status WHERE server = 'regress_sync'$$, 20) AS backfilled;
SELECT "table", phase, rows, backfill, last_error, last_warning, poisoned_records
  FROM sequin.sync_status WHERE server = 'regress_sync';

-- Changes made in the API by someone else arrive within the poll interval
-- (+ 1 s), each with a new updated_idx: a consumer reading
-- WHERE updated_idx > last ORDER BY updated_idx sees them in order.
SELECT max(updated_idx) AS feed_start FROM regress_sync.customers \gset
SELECT id AS c2 FROM regress_sync.customers WHERE email = 'customer2@example.com' \gset
SELECT id AS c3 FROM regress_sync.customers WHERE email = 'customer3@example.com' \gset
\setenv C2 :c2
\setenv C3 :c3
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -H 'content-type: application/json' -d '{"email": "new@example.com", "name": "New"}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$C3?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Renamed"}' -o /dev/null
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$C2?account=$ACCOUNT" -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT count(*) = 3 FROM regress_sync.customers WHERE updated_idx > %s$$, :feed_start), 1.5) AS arrived_in_time;
SELECT email, name, deleted FROM regress_sync.customers WHERE updated_idx > :feed_start ORDER BY updated_idx;
-- Soft deletes keep the row, flagged; hard deletes remove it.
SELECT pg_temp.wait_for(format($$SELECT count(*) = 0 FROM regress_sync.customers_hard WHERE id = %L$$, :'c2'), 1.5) AS hard_deleted,
       (SELECT deleted FROM regress_sync.customers WHERE id = :'c2') AS soft_deleted;

-- A record whose values do not fit the table's columns is stored with its
-- id and raw only and reported; it does not hold up the records after it.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -H 'content-type: application/json' -d '{"email": "rich@example.com", "balance": 100000}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -H 'content-type: application/json' -d '{"email": "after@example.com", "balance": 7}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_sync.customers_narrow WHERE email = 'after@example.com'$$, 1.5) AS later_record_arrived;
SELECT email, balance, raw->>'email' AS raw_email, raw->>'balance' AS raw_balance
  FROM sequin_shadow.regress_sync_customers_narrow
 WHERE raw->>'email' IN ('rich@example.com', 'after@example.com') ORDER BY 3;
SELECT phase, poisoned_records, regexp_replace(last_warning, 'cus_[A-Za-z0-9]+', 'cus_…') AS last_warning,
       last_warning_at IS NOT NULL AS warned_at
  FROM sequin.sync_status WHERE "table" = 'regress_sync.customers_narrow'::regclass;
SELECT balance FROM regress_sync.customers WHERE email = 'rich@example.com';

-- sync_now: with a one-hour poll interval, a change waits for it.
ALTER SERVER regress_sync OPTIONS (SET poll_interval '1h');
SELECT pg_sleep(1);
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$C3?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Renamed again"}' -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT name = 'Renamed again' FROM regress_sync.customers WHERE id = %L$$, :'c3'), 1) AS arrived_without_sync_now;
SELECT sequin.sync_now('regress_sync.customers');
SELECT pg_temp.wait_for(format($$SELECT name = 'Renamed again' FROM regress_sync.customers WHERE id = %L$$, :'c3'), 1) AS arrived_after_sync_now;
ALTER SERVER regress_sync OPTIONS (SET poll_interval '500ms');
SELECT sequin.sync_now('regress_sync.customers_hard'), sequin.sync_now('regress_sync.customers_narrow');

-- pause / resume: nothing is polled while paused.
SELECT sequin.pause('regress_sync');
SELECT DISTINCT phase FROM sequin.sync_status WHERE server = 'regress_sync';
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$C3?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Renamed while paused"}' -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT name = 'Renamed while paused' FROM regress_sync.customers WHERE id = %L$$, :'c3'), 1.5) AS arrived_while_paused;
SELECT sequin.resume('regress_sync');
SELECT pg_temp.wait_for(format($$SELECT name = 'Renamed while paused' FROM regress_sync.customers WHERE id = %L$$, :'c3'), 1.5) AS arrived_after_resume;

-- resync reads everything again without dropping rows, and finds deletes
-- whose events are gone (here: expired in the API while paused).
SELECT sequin.pause('regress_sync');
SELECT id AS c4 FROM regress_sync.customers WHERE email = 'customer4@example.com' \gset
\setenv C4 :c4
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$C4?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/events/expire?account=$ACCOUNT&before=9999999999" -o /dev/null
SELECT sequin.resync('regress_sync.customers');
SELECT phase, backfill FROM sequin.sync_status WHERE "table" = 'regress_sync.customers'::regclass;
SELECT sequin.resume('regress_sync');
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' FROM sequin.sync_status WHERE "table" = 'regress_sync.customers'::regclass$$, 5) AS backfilled_again;
SELECT deleted FROM regress_sync.customers WHERE id = :'c4';
SELECT count(*) FILTER (WHERE NOT deleted) AS live, count(*) AS kept FROM regress_sync.customers;

-- Stripe keeps events for 30 days: when the cursor's event is gone, the
-- collection is backfilled again, with a WARNING in the log and the status,
-- and a delete whose event expired is still found.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$C3?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Before the expiry"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT bool_and(c.cursor->>'after' IS NOT NULL) FROM sequin.collections c
                           JOIN sequin.sync_status s ON s."table" = c.foreign_table::regclass WHERE s.server = 'regress_sync'$$, 5) AS cursors_on_events;
SELECT id AS c5 FROM regress_sync.customers WHERE email = 'customer5@example.com' \gset
\setenv C5 :c5
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$C5?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/events/expire?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -H 'content-type: application/json' -d '{"email": "after-expiry@example.com"}' -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT deleted FROM regress_sync.customers WHERE id = %L$$, :'c5'), 10) AS delete_found,
       pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_sync.customers WHERE email = 'after-expiry@example.com'$$, 5) AS new_record_found;
-- (The three find their cursor events gone in different polls, a second
-- apart, and the other two start over once more when customers does: all
-- three incremental is the end of it only once customers has restarted.)
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental')
                                 AND bool_or("table" = 'regress_sync.customers'::regclass AND last_warning LIKE 'Stripe keeps events%')
                            FROM sequin.sync_status WHERE server = 'regress_sync'$$, 10) AS all_incremental;
-- (The narrow table's backfill met its poisoned record again.)
SELECT "table", phase, regexp_replace(regexp_replace(last_warning, 'evt_[A-Za-z0-9]+', 'evt_…'), 'cus_[A-Za-z0-9]+', 'cus_…') AS last_warning
  FROM sequin.sync_status WHERE server = 'regress_sync' ORDER BY 1;

-- An API outage: errors are recorded and retried with backoff; the sync
-- recovers by itself once the API answers again. (The outage lasts until it
-- is lifted below: a fixed number of failing requests could all go to the
-- other two tables' polls of the same feed.)
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d "{\"account\": \"$ACCOUNT\", \"method\": \"GET\", \"path_prefix\": \"/v1/events\", \"kind\": \"status\", \"status\": 503, \"fraction\": 1.0}" -o /dev/null
SELECT pg_temp.wait_for($$SELECT consecutive_failures >= 1 FROM sequin.sync_status WHERE "table" = 'regress_sync.customers'::regclass$$, 10) AS failing;
SELECT phase, regexp_replace(last_error, 'req_[A-Za-z0-9]+', 'req_…') AS last_error, last_error_at IS NOT NULL AS has_time, next_retry_at > now() AS retry_scheduled
  FROM sequin.sync_status WHERE "table" = 'regress_sync.customers'::regclass;
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$C3?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Renamed during the outage"}' -o /dev/null
\! curl -s -X DELETE "$MOCK_URL/_admin/faults?account=$ACCOUNT" -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT name = 'Renamed during the outage' FROM regress_sync.customers WHERE id = %L$$, :'c3'), 20) AS recovered;
SELECT phase, consecutive_failures, next_retry_at FROM sequin.sync_status WHERE "table" = 'regress_sync.customers'::regclass;

-- A transaction holding a lock on the shadow table does not stall the
-- worker: the page fails after the worker's 2 s lock timeout (recorded in
-- sync_status, retried with backoff) and is applied once the lock is gone.
BEGIN;
LOCK TABLE sequin_shadow.regress_sync_customers IN EXCLUSIVE MODE;
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$C3?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Renamed behind a lock"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT last_error ~ 'lock timeout' FROM sequin.sync_status WHERE "table" = 'regress_sync.customers'::regclass$$, 15) AS timed_out;
COMMIT;
SELECT pg_temp.wait_for(format($$SELECT name = 'Renamed behind a lock' FROM regress_sync.customers WHERE id = %L$$, :'c3'), 20) AS applied_after;

-- Control functions check what they are given and who calls them.
SELECT pg_temp.error_of($$SELECT sequin.sync_now('pg_class')$$);
SELECT pg_temp.error_of($$SELECT sequin.pause('no_such_server')$$);
CREATE ROLE regress_sync_user;
GRANT USAGE ON SCHEMA regress_sync TO regress_sync_user;
SET ROLE regress_sync_user;
SELECT pg_temp.error_of($$SELECT sequin.resync('regress_sync.customers')$$);
SELECT pg_temp.error_of($$SELECT sequin.pause('regress_sync')$$);
RESET ROLE;

DROP SCHEMA regress_sync CASCADE;
DROP SERVER regress_sync CASCADE;
DROP ROLE regress_sync_user;
SELECT count(*) AS paused_servers_left FROM sequin.paused_servers;
