-- Many syncs at once: 20 servers (accounts) × 3 collections in one
-- database, plus a server whose API hangs and one whose API fails. Every
-- healthy collection stays within its poll interval: changes made in all
-- 20 accounts at once arrive within poll_interval + 1 s.
\i pg_test/helpers.psql
\! for i in $(seq -w 1 22); do curl -s -X POST "$MOCK_URL/_admin/reset?account=sk_test_many_$i" -o /dev/null; done
\! for i in $(seq -w 1 22); do for c in customers products prices; do curl -s -X POST "$MOCK_URL/_admin/stripe/$c/seed?account=sk_test_many_$i&count=20" -o /dev/null; done; done
-- Server 21's API answers after 10 s; server 22's always fails.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d '{"account": "sk_test_many_21", "kind": "latency", "latency_ms": 10000, "fraction": 1}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d '{"account": "sk_test_many_22", "kind": "status", "status": 500, "fraction": 1}' -o /dev/null

SELECT set_config('regress.mock_url', :'mock_url', false) IS NOT NULL AS configured;
DO $$
BEGIN
    FOR i IN 1..22 LOOP
        EXECUTE format($q$CREATE SERVER many_%1$s FOREIGN DATA WRAPPER sequin_fdw
                          OPTIONS (provider 'stripe', base_url %2$L, poll_interval '1s', timeout '30s')$q$,
                       lpad(i::text, 2, '0'), current_setting('regress.mock_url'));
        EXECUTE format($q$CREATE USER MAPPING FOR PUBLIC SERVER many_%1$s OPTIONS (api_key 'sk_test_many_%1$s')$q$,
                       lpad(i::text, 2, '0'));
        EXECUTE format('CREATE SCHEMA many_%s', lpad(i::text, 2, '0'));
        EXECUTE format('IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, products, prices) FROM SERVER many_%1$s INTO many_%1$s',
                       lpad(i::text, 2, '0'));
    END LOOP;
END $$;
SELECT count(*) AS collections FROM sequin.sync_status WHERE server LIKE 'many_%';

-- The 60 healthy collections backfill while 21 hangs and 22 fails.
SELECT pg_temp.wait_for($$SELECT count(*) = 60 FROM sequin.sync_status
                           WHERE server BETWEEN 'many_01' AND 'many_20' AND phase = 'incremental'$$, 60) AS all_backfilled;
SELECT sum(rows) AS rows, count(*) FILTER (WHERE last_error IS NOT NULL) AS with_errors
  FROM sequin.sync_status WHERE server BETWEEN 'many_01' AND 'many_20';
SELECT pg_temp.wait_for($$SELECT bool_and(consecutive_failures > 0) FROM sequin.sync_status WHERE server = 'many_22'$$, 10) AS failing_recorded;
SELECT server, phase, count(*) AS collections, bool_and(consecutive_failures > 0) AS failing
  FROM sequin.sync_status WHERE server IN ('many_21', 'many_22') GROUP BY 1, 2 ORDER BY 1;

-- A change in each of the 20 accounts, all at once.
\! for i in $(seq -w 1 20); do id=$(curl -s "$MOCK_URL/_admin/stripe/customers?account=sk_test_many_$i" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])'); curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$id?account=sk_test_many_$i" -H 'content-type: application/json' -d '{"name": "changed"}' -o /dev/null; done
SELECT clock_timestamp() AS changed_at \gset
SELECT pg_temp.wait_for($$SELECT count(*) = 20 FROM (
           SELECT 1 FROM many_01.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_02.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_03.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_04.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_05.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_06.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_07.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_08.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_09.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_10.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_11.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_12.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_13.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_14.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_15.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_16.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_17.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_18.customers WHERE name = 'changed'
 UNION ALL SELECT 1 FROM many_19.customers WHERE name = 'changed' UNION ALL SELECT 1 FROM many_20.customers WHERE name = 'changed') t$$,
       2) AS all_arrived_within_2s;
-- Every healthy collection was polled within its interval (1 s) + 1 s.
SELECT count(*) FILTER (WHERE lag <= interval '2 s') AS fresh, count(*) AS collections
  FROM sequin.sync_status WHERE server BETWEEN 'many_01' AND 'many_20';

\! curl -s -X DELETE "$MOCK_URL/_admin/faults?account=sk_test_many_21" -o /dev/null
\! curl -s -X DELETE "$MOCK_URL/_admin/faults?account=sk_test_many_22" -o /dev/null
SET client_min_messages = warning;
DO $$
BEGIN
    FOR i IN 1..22 LOOP
        EXECUTE format('DROP SCHEMA many_%s CASCADE', lpad(i::text, 2, '0'));
        EXECUTE format('DROP SERVER many_%s CASCADE', lpad(i::text, 2, '0'));
    END LOOP;
END $$;
