-- Reconciliation sweeps: a table with a sweep_interval is listed in full
-- now and then and compared with its shadow table. Changes the change feed
-- never reported (made upstream without an event) are found: a record
-- missing locally or different is corrected, one gone upstream is marked
-- deleted, and sync_status counts them as drift with the sweep's requests.
-- When the API refuses the change feed, the backfill runs anyway and sweeps
-- keep the table current at its poll interval, with a WARNING saying why.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_sweep
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=250"; echo
CREATE SERVER regress_sweep FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '300ms');
CREATE USER MAPPING FOR PUBLIC SERVER regress_sweep OPTIONS (api_key 'sk_test_regress_sweep');
CREATE SCHEMA regress_sweep;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_sweep INTO regress_sweep;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 250 FROM sequin.sync_status WHERE server = 'regress_sweep'$$, 20) AS backfilled;
-- Sweeps are off by default: Stripe's change feed reports every change.
SELECT sweep, next_sweep_at, last_sweep_at FROM sequin.sync_status WHERE server = 'regress_sweep';

-- Three changes upstream that leave no event: the feed never sees them.
SELECT id AS quiet_update FROM regress_sweep.customers ORDER BY id LIMIT 1 OFFSET 10 \gset
SELECT id AS quiet_delete FROM regress_sweep.customers ORDER BY id LIMIT 1 OFFSET 20 \gset
\setenv QUIET_UPDATE :quiet_update
\setenv QUIET_DELETE :quiet_delete
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$QUIET_UPDATE?account=$ACCOUNT&events=false" -d '{"name":"Changed quietly"}' -o /dev/null
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$QUIET_DELETE?account=$ACCOUNT&events=false" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT&events=false" -d '{"email":"quiet@example.com"}' -o /dev/null
-- And one with an event, which the feed brings as usual.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"loud@example.com"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_sweep.customers WHERE email = 'loud@example.com'$$, 10) AS feed_works;
SELECT pg_sleep(1);
SELECT (SELECT name FROM regress_sweep.customers WHERE id = :'quiet_update') AS name_before_sweep,
       (SELECT deleted FROM regress_sweep.customers WHERE id = :'quiet_delete') AS deleted_before_sweep,
       (SELECT count(*) FROM regress_sweep.customers WHERE email = 'quiet@example.com') AS quiet_rows_before_sweep;

-- A sweep every 2 s finds all three.
ALTER FOREIGN TABLE regress_sweep.customers OPTIONS (ADD sweep_interval '2s');
SELECT sweep FROM sequin.sync_status WHERE server = 'regress_sweep';
SELECT pg_temp.wait_for($$SELECT last_sweep_at IS NOT NULL FROM sequin.sync_status WHERE server = 'regress_sweep'$$, 20) AS swept;
SELECT (SELECT name FROM regress_sweep.customers WHERE id = :'quiet_update') AS name_after_sweep,
       (SELECT deleted FROM regress_sweep.customers WHERE id = :'quiet_delete') AS deleted_after_sweep,
       (SELECT count(*) FROM regress_sweep.customers WHERE email = 'quiet@example.com') AS quiet_rows_after_sweep;
-- 251 live customers at 100 a page: 3 requests; drift 3.
SELECT last_sweep_requests, last_sweep_drift, next_sweep_at > last_sweep_at AS next_one_scheduled
  FROM sequin.sync_status WHERE server = 'regress_sweep';
-- The next sweep finds nothing to correct, and changes no row.
SELECT max(updated_idx) AS idx_before FROM sequin_shadow.regress_sweep_customers \gset
SELECT last_sweep_at AS first_sweep FROM sequin.sync_status WHERE server = 'regress_sweep' \gset
SELECT pg_temp.wait_for(format($$SELECT last_sweep_at > %L FROM sequin.sync_status WHERE server = 'regress_sweep'$$, :'first_sweep'), 20) AS swept_again;
SELECT last_sweep_requests, last_sweep_drift FROM sequin.sync_status WHERE server = 'regress_sweep';
SELECT max(updated_idx) = :idx_before AS no_row_touched FROM sequin_shadow.regress_sweep_customers;
-- Off again: no further sweep is scheduled.
ALTER FOREIGN TABLE regress_sweep.customers OPTIONS (SET sweep_interval 'off');
SELECT pg_temp.wait_for($$SELECT sweep = 'off' AND next_sweep_at IS NULL FROM sequin.sync_status WHERE server = 'regress_sweep'$$, 10) AS sweeps_off;
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_sweep.customers OPTIONS (SET sweep_interval '10ms')$$);
-- How many ranges of its backfill are listed at once: 1 to 16.
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_sweep.customers OPTIONS (ADD backfill_ranges '0')$$);
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_sweep.customers OPTIONS (ADD backfill_ranges 'all')$$);

-- The change feed refused: a restricted key without the Events permission
-- (403 on /v1/events). The backfill runs anyway ...
\setenv ACCOUNT sk_test_regress_sweep_restricted
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=120"; echo
\! curl -s -X POST "$MOCK_URL/_admin/stripe/events/access?account=$ACCOUNT&mode=forbidden"; echo
CREATE SERVER regress_sweep_restricted FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_sweep_restricted OPTIONS (api_key 'sk_test_regress_sweep_restricted');
CREATE SCHEMA regress_sweep_restricted;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_sweep_restricted INTO regress_sweep_restricted;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 120 FROM sequin.sync_status WHERE server = 'regress_sweep_restricted'$$, 20) AS backfilled_without_feed;
-- ... and sweeps at the poll interval bring every change, with a warning
-- that says why and what it costs.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"new@example.com"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_sweep_restricted.customers WHERE email = 'new@example.com'$$, 20) AS created_found;
SELECT id AS gone FROM regress_sweep_restricted.customers ORDER BY id LIMIT 1 \gset
\setenv GONE :gone
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$GONE?account=$ACCOUNT" -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT deleted FROM regress_sweep_restricted.customers WHERE id = %L$$, :'gone'), 20) AS delete_found;
SELECT sweep ~ '^(every poll interval \(change feed refused\)|running)' AS sweeping, last_sweep_requests,
       regexp_replace(last_warning, 'acct_[A-Za-z0-9]+', 'acct_…') AS last_warning
  FROM sequin.sync_status WHERE server = 'regress_sweep_restricted';
-- No events request after the refusal: the feed is not polled while refused.
\! curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print("events requests:", sum(n for k, n in json.load(sys.stdin)["by_route"].items() if "/v1/events" in k))'

-- An imitation of Stripe without the types[] filter (400): the same.
\setenv ACCOUNT sk_test_regress_sweep_imitation
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=30"; echo
\! curl -s -X POST "$MOCK_URL/_admin/stripe/events/access?account=$ACCOUNT&mode=no_types_filter"; echo
CREATE SERVER regress_sweep_imitation FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_sweep_imitation OPTIONS (api_key 'sk_test_regress_sweep_imitation');
CREATE SCHEMA regress_sweep_imitation;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_sweep_imitation INTO regress_sweep_imitation;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 30 FROM sequin.sync_status WHERE server = 'regress_sweep_imitation'$$, 20) AS backfilled_without_feed;
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"new@example.com"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_sweep_imitation.customers WHERE email = 'new@example.com'$$, 20) AS created_found;
SELECT last_warning FROM sequin.sync_status WHERE server = 'regress_sweep_imitation';
-- Once the API offers the feed, resync tries it again.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/events/access?account=$ACCOUNT&mode=full"; echo
SELECT sequin.resync('regress_sweep_imitation.customers');
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND sweep = 'off' FROM sequin.sync_status WHERE server = 'regress_sweep_imitation'$$, 20) AS feed_back;
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"evented@example.com"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_sweep_imitation.customers WHERE email = 'evented@example.com'$$, 10) AS feed_brings_it;

DROP SCHEMA regress_sweep, regress_sweep_restricted, regress_sweep_imitation CASCADE;
DROP SERVER regress_sweep, regress_sweep_restricted, regress_sweep_imitation CASCADE;
