-- A write waiting on the API is interrupted by statement_timeout, by
-- pg_cancel_backend() and by the server's "timeout" option within 200 ms;
-- the backend stays usable and the shadow table is left as it was.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_cancel
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=5"; echo
CREATE SERVER regress_cancel FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s', timeout '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_cancel OPTIONS (api_key 'sk_test_regress_cancel');
CREATE SCHEMA regress_cancel;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_cancel INTO regress_cancel;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 5 FROM sequin.sync_status WHERE server = 'regress_cancel'$$, 20) AS backfilled;
SELECT id AS c1 FROM regress_cancel.customers WHERE email = 'customer1@example.com' \gset
SELECT id AS c2 FROM regress_cancel.customers WHERE email = 'customer2@example.com' \gset

-- From here on the API never answers a write (reads, and so the sync, still work).
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"hang\",\"count\":100,\"account\":\"$ACCOUNT\",\"method\":\"POST\"}" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"hang\",\"count\":100,\"account\":\"$ACCOUNT\",\"method\":\"DELETE\"}" -o /dev/null

-- statement_timeout. Errors are shown as they are and timed from psql (an
-- upper bound), not caught by error_of: after a handler catches the API's
-- 57014, Postgres's own pending cancel still fires at the next check.
SET statement_timeout = '300ms';
SELECT clock_timestamp() AS t0 \gset
UPDATE regress_cancel.customers SET name = 'Never' WHERE id = :'c1';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate,
       clock_timestamp() - :'t0' BETWEEN interval '300 ms' AND interval '500 ms' AS within_200ms_of_statement_timeout;
RESET statement_timeout;
SELECT 1 AS usable;
SELECT name FROM regress_cancel.customers WHERE id = :'c1';

-- The server's timeout (1 s) ends the wait by itself.
SELECT clock_timestamp() AS t0 \gset
INSERT INTO regress_cancel.customers (email) VALUES ('never@example.com');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate,
       clock_timestamp() - :'t0' BETWEEN interval '1000 ms' AND interval '1200 ms' AS within_200ms_of_server_timeout;
-- ALTER SERVER applies to the next statement.
ALTER SERVER regress_cancel OPTIONS (SET timeout '500ms');
\set VERBOSITY default
SELECT clock_timestamp() AS t0 \gset
INSERT INTO regress_cancel.customers (email) VALUES ('never@example.com');
\set VERBOSITY terse
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate,
       clock_timestamp() - :'t0' BETWEEN interval '500 ms' AND interval '700 ms' AS within_200ms_of_server_timeout;
SELECT 1 AS usable;
SELECT count(*) AS inserted_locally FROM regress_cancel.customers WHERE email = 'never@example.com';

-- pg_cancel_backend() from another session, 0.4 s into a DELETE that could
-- wait 10 s. The canceller logs when it sent the cancel into a regular table.
-- It is given our pid: a pg_stat_activity filter next to pg_cancel_backend()
-- in WHERE may be reordered by the planner and cancel every backend.
CREATE TABLE public.regress_cancel_log (at timestamptz);
ALTER SERVER regress_cancel OPTIONS (SET timeout '10s');
SELECT pg_backend_pid() AS victim \gset
\setenv VICTIM :victim
\setenv PGHOST :HOST
\setenv PGPORT :PORT
\setenv PGUSER :USER
\setenv PGDATABASE :DBNAME
\! (sleep 0.4; psql -Xq -c "INSERT INTO public.regress_cancel_log SELECT clock_timestamp() WHERE pg_cancel_backend($VICTIM)") &
SELECT clock_timestamp() AS t0 \gset
DELETE FROM regress_cancel.customers WHERE id = :'c2';
SELECT clock_timestamp() AS failed_at, :'LAST_ERROR_SQLSTATE' AS sqlstate \gset
SELECT :'sqlstate' AS sqlstate;
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM public.regress_cancel_log$$, 5) AS canceller_done;
SELECT count(*) AS cancels_sent,
       bool_and(at - :'t0' > interval '300 ms') AS delete_was_waiting,
       bool_and(:'failed_at' - at < interval '200 ms') AS failed_within_200ms_of_cancel
  FROM public.regress_cancel_log;
SELECT 1 AS usable;
SELECT deleted FROM regress_cancel.customers WHERE id = :'c2';

-- Each interrupted write was sent once: none was retried.
\! curl -s "$MOCK_URL/_admin/requests/log?account=$ACCOUNT" | python3 -c 'import json,sys,collections; print(sorted(collections.Counter(r["route"] for r in json.load(sys.stdin)["requests"] if r["fault"] == "hang").items()))'

-- Once the API answers again, the same backend writes normally.
\! curl -s -X DELETE "$MOCK_URL/_admin/faults?account=$ACCOUNT" -o /dev/null
UPDATE regress_cancel.customers SET name = 'Renamed' WHERE id = :'c1' RETURNING name, email;
SELECT name FROM regress_cancel.customers WHERE id = :'c1';

DROP TABLE public.regress_cancel_log;
DROP SCHEMA regress_cancel CASCADE;
DROP SERVER regress_cancel CASCADE;
