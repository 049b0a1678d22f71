-- A randomized run of more than 1,000 mixed writes (single and multi-row
-- INSERT, UPDATE, DELETE; some in rolled-back savepoints and transactions)
-- while about 10% of the API's write requests fail (5xx, 429, refusals,
-- lost replies). Whatever happened, once the faults stop and the worker has
-- synced, the shadow table equals the API row by row.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_random
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=50"; echo

CREATE SERVER regress_random FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s', timeout '2s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_random OPTIONS (api_key 'sk_test_regress_random');
CREATE SCHEMA regress_random;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_random INTO regress_random;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 50 FROM sequin.sync_status WHERE server = 'regress_random'$$, 20) AS backfilled;

-- About 10% of this account's POST and DELETE requests fail (faults are
-- tried in order, so together 1 - 0.97*0.98*0.98*0.99*0.98 ≈ 9.6%):
--   500 (3%)                transient: retried, nearly always succeeds in the end
--   400 (2%)                a refusal: not retried, the statement fails (23514)
--   reset, applied (2%)     the API made the change but the reply was lost: the
--                           retry is de-duplicated by the Idempotency-Key (a
--                           DELETE retried finds the customer gone)
--   malformed, applied (1%) the API made the change, the reply is garbage:
--                           58000, and the record is re-read
--   429 (2%)                rate limited with Retry-After 0: retried
-- Only writes are faulted: this test is about the write path and what it
-- leaves behind; the worker's GETs (events, re-reads) run undisturbed, so
-- "after one sync" means one sync, not one sync plus its own backoff.
-- The faults are removed by id, leaving other tests' faults alone.
\set fault_ids `for m in POST DELETE; do for f in '"kind":"status","status":500,"fraction":0.03' '"kind":"status","status":400,"fraction":0.02,"body":{"error":{"type":"invalid_request_error","code":"email_invalid","message":"Invalid email address: injected refusal","param":"email"}}' '"kind":"reset","applied":true,"fraction":0.02' '"kind":"malformed","applied":true,"fraction":0.01' '"kind":"status","status":429,"headers":{"Retry-After":"0"},"fraction":0.02'; do curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"account\":\"$ACCOUNT\",\"method\":\"$m\",$f}"; echo; done; done | python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin))'`
\setenv FAULT_IDS :fault_ids
\! curl -s "$MOCK_URL/_admin/faults" | python3 -c 'import json,os,sys; ids = set(map(int, os.environ["FAULT_IDS"].split())); f = [x for x in json.load(sys.stdin)["faults"] if x["id"] in ids]; print(len(f), "faults,", round(sum(x["fraction"] for x in f) / 2, 2), "of the writes")'

-- The run: each iteration is one statement, or (10%) a unit that is rolled
-- back after writing: a savepoint (BEGIN … EXCEPTION) or the whole
-- transaction with one or two statements. Every other unit commits. Errors
-- are caught per statement and counted by SQLSTATE.
CREATE TEMP TABLE run_stats (statements int, failed int, errors jsonb, rolled_back_savepoints int,
                             rolled_back_transactions int, started timestamptz, finished timestamptz);
SET client_min_messages = error;
DO $$
DECLARE
    statements int := 0;
    failed int := 0;
    errors jsonb := '{}';
    rolled_back_savepoints int := 0;
    rolled_back_transactions int := 0;
    started timestamptz := clock_timestamp();
    unit int := 0;
    mode float8;
    n int;
    k int;
    op float8;
    ids text[];
    stmt text;
    changed int;
    state text;
BEGIN
    PERFORM setseed(0.42);
    WHILE statements < 1000 LOOP
        unit := unit + 1;
        mode := random();
        -- 6% a savepoint rolled back, 4% a transaction rolled back, else commit.
        FOR n IN 1 .. CASE WHEN mode >= 0.96 THEN 1 + floor(random() * 2)::int ELSE 1 END LOOP
            op := random();
            k := 1 + floor(random() * 3)::int;
            IF op < 0.30 THEN
                stmt := format($q$INSERT INTO regress_random.customers (email, name) VALUES (%L, %L)$q$,
                               format('u%s@example.com', unit), format('Single %s', unit));
            ELSIF op < 0.42 THEN
                stmt := format($q$INSERT INTO regress_random.customers (email, name, description)
                                  SELECT format('u%s_%%s@example.com', g), format('Multi %s.%%s', g), 'batch'
                                    FROM generate_series(1, %s) g$q$, unit, unit, k);
            ELSIF op < 0.92 THEN
                -- An UPDATE of one (single) or 1-3 (multi) live customers.
                IF op >= 0.70 THEN k := 1; END IF;
                SELECT array_agg(id) INTO ids FROM (
                    SELECT id FROM regress_random.customers WHERE NOT deleted ORDER BY random() LIMIT k) c;
                stmt := CASE floor(random() * 3)::int
                    WHEN 0 THEN format($q$UPDATE regress_random.customers SET name = %L WHERE id = ANY (%L)$q$,
                                       format('Renamed %s', unit), ids)
                    WHEN 1 THEN format($q$UPDATE regress_random.customers SET email = %L, description = %L WHERE id = ANY (%L)$q$,
                                       format('e%s@example.com', unit), format('changed in %s', unit), ids)
                    ELSE format($q$UPDATE regress_random.customers SET name = name || '+', description = NULL WHERE id = ANY (%L)$q$, ids)
                END;
            ELSE
                SELECT id INTO stmt FROM regress_random.customers WHERE NOT deleted ORDER BY random() LIMIT 1;
                stmt := format($q$DELETE FROM regress_random.customers WHERE id = %L$q$, stmt);
            END IF;
            statements := statements + 1;
            BEGIN
                EXECUTE stmt;
                GET DIAGNOSTICS changed = ROW_COUNT;
                IF mode >= 0.90 AND mode < 0.96 THEN
                    RAISE SQLSTATE 'XRB01';
                END IF;
            EXCEPTION
                WHEN SQLSTATE 'XRB01' THEN
                    IF changed > 0 THEN rolled_back_savepoints := rolled_back_savepoints + 1; END IF;
                WHEN query_canceled OR OTHERS THEN  -- an API timeout is a 57014
                    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
                    failed := failed + 1;
                    errors := jsonb_set(errors, ARRAY[state], to_jsonb(coalesce((errors->>state)::int, 0) + 1));
            END;
        END LOOP;
        IF mode >= 0.96 THEN
            ROLLBACK;
            rolled_back_transactions := rolled_back_transactions + 1;
        ELSE
            COMMIT;
        END IF;
    END LOOP;
    INSERT INTO run_stats VALUES (statements, failed, errors, rolled_back_savepoints, rolled_back_transactions,
                                  started, clock_timestamp());
END $$;
RESET client_min_messages;
SELECT statements >= 1000 AS over_1000_writes, failed > 0 AS some_failed,
       rolled_back_savepoints > 0 AS some_savepoints_rolled_back,
       rolled_back_transactions > 0 AS some_transactions_rolled_back
  FROM run_stats;

-- Faults off; then the worker re-reads what the rollbacks and the lost
-- replies left uncertain, and follows the events. Two successful polls that
-- started after the run (the first may have begun before its end).
\! for id in $FAULT_IDS; do curl -s -X DELETE "$MOCK_URL/_admin/faults/$id" -o /dev/null; done
\! curl -s "$MOCK_URL/_admin/faults" | python3 -c 'import json,os,sys; ids = set(map(int, os.environ["FAULT_IDS"].split())); print(sum(x["id"] in ids for x in json.load(sys.stdin)["faults"]), "faults left")'
SELECT requests AS requests_before FROM sequin.sync_status WHERE server = 'regress_random' \gset
SELECT pg_temp.wait_for(format($$SELECT requests >= %s + 2 AND consecutive_failures = 0 FROM sequin.sync_status WHERE server = 'regress_random'$$,
                               :requests_before), 20) AS synced;

-- The shadow table equals the API: every live customer with the same
-- email, name and description, and no other live row.
\set api_state `curl -s "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.dumps([[c["id"], c["email"], c["name"], c["description"]] for c in json.load(sys.stdin)["data"]]))'`
CREATE TEMP VIEW api_customers AS
  SELECT r->>0 AS id, r->>1 AS email, r->>2 AS name, r->>3 AS description
    FROM jsonb_array_elements(:'api_state'::jsonb) r;
SELECT count(*) > 50 AS api_has_customers FROM api_customers;
SELECT count(*) AS differences FROM (
  (SELECT id, email, name, description FROM regress_random.customers WHERE NOT deleted
   EXCEPT ALL SELECT * FROM api_customers)
  UNION ALL
  (SELECT * FROM api_customers
   EXCEPT ALL SELECT id, email, name, description FROM regress_random.customers WHERE NOT deleted)
) d;
SELECT server, phase, consecutive_failures FROM sequin.sync_status WHERE server = 'regress_random';

DROP VIEW api_customers;
DROP SCHEMA regress_random CASCADE;
DROP SERVER regress_random CASCADE;
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
