-- The fault matrix: every kind of API failure × INSERT, UPDATE, DELETE.
-- Each case shows the SQLSTATE and message the application gets, and
-- whether the shadow table and the API changed: the shadow table changes
-- only where the API applied the change. Then secret hygiene: the API key
-- appears in no error and not in the server log.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_faults_8c1f0e2a9b7d
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=30"; echo
-- Where the server log stands, to search what this test adds to it.
\set log_start `stat -c %s "$SEQUIN_STACK/postgres.log"`
\setenv LOG_START :log_start

CREATE SERVER regress_faults FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s', timeout '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_faults OPTIONS (api_key 'sk_test_regress_faults_8c1f0e2a9b7d');
CREATE SCHEMA regress_faults;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_faults INTO regress_faults;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 30 FROM sequin.sync_status WHERE server = 'regress_faults'$$, 20) AS backfilled;

\set QUIET on
SELECT set_config('regress.mock_url', :'mock_url', false) AS mock_url_set \gset
-- The key is written out only in the user mapping: any other trace of it
-- would be a leak.
SELECT set_config('regress.account', 'sk_test_regress_faults_' || '8c1f0e2a9b7d', false) AS account_set \gset
CREATE TEMP TABLE mock_reply (line text);
-- Calls the mock's admin API from SQL (the server runs curl).
CREATE FUNCTION pg_temp.mock(method text, path text, body text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    command text := format('curl -s -X %s ''%s%s''', method, current_setting('regress.mock_url'), path);
    reply text;
BEGIN
    IF body IS NOT NULL THEN
        command := command || format(' -H ''content-type: application/json'' -d ''%s''', body);
    END IF;
    TRUNCATE mock_reply;
    EXECUTE format('COPY mock_reply FROM PROGRAM %L WITH (FORMAT csv, DELIMITER E''\x01'', QUOTE E''\x02'')', command);
    SELECT string_agg(line, E'\n') INTO reply FROM mock_reply;
    RETURN nullif(reply, '')::jsonb;
END $$;
-- The API's view of one customer (NULL once deleted), and of an email.
CREATE FUNCTION pg_temp.api_customer(id text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT CASE WHEN c ? 'error' THEN NULL ELSE c END
      FROM pg_temp.mock('GET', format('/_admin/stripe/customers/%s?account=%s', id, current_setting('regress.account'))) c
$$;
CREATE FUNCTION pg_temp.api_has_email(email text) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM jsonb_array_elements(
        pg_temp.mock('GET', '/_admin/stripe/customers?account=' || current_setting('regress.account'))->'data') c
      WHERE c->>'email' = $1)
$$;
CREATE FUNCTION pg_temp.masked(text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace($1, 'cus_[A-Za-z0-9]+', 'cus_…', 'g'), 'req_[A-Za-z0-9]+', 'req_…', 'g')
$$;

-- Each fault is injected for the one request of one statement; faults that
-- are retried (429, 5xx, resets, timeouts) are injected for every attempt.
CREATE TEMP TABLE faults (n int, fault text, spec jsonb);
INSERT INTO faults VALUES
  (1,  '400 validation', '{"kind": "status", "status": 400, "count": 1, "body": {"error": {"type": "invalid_request_error", "message": "Invalid email address: nobody", "param": "email", "code": "email_invalid"}}}'),
  (2,  '401',            '{"kind": "status", "status": 401, "count": 1}'),
  (3,  '403',            '{"kind": "status", "status": 403, "count": 1}'),
  (4,  '404',            '{"kind": "status", "status": 404, "count": 1}'),
  (5,  '409',            '{"kind": "status", "status": 409, "count": 1}'),
  (6,  '429',            '{"kind": "status", "status": 429, "count": 100, "headers": {"Retry-After": "0.1"}}'),
  (7,  '500',            '{"kind": "status", "status": 500, "count": 100}'),
  (8,  '502',            '{"kind": "status", "status": 502, "count": 100}'),
  (9,  'timeout',        '{"kind": "hang", "count": 100}'),
  (10, 'reset',          '{"kind": "reset", "count": 100}'),
  (11, 'malformed',      '{"kind": "malformed", "count": 1}'),
  (12, 'reset, applied', '{"kind": "reset", "count": 1, "applied": true}'),
  (13, 'malformed, applied', '{"kind": "malformed", "count": 1, "applied": true}');
-- Two customers per fault: one to update, one to delete.
CREATE TEMP TABLE targets AS
  SELECT (row_number() OVER (ORDER BY id) + 1) / 2 AS n, id,
         CASE WHEN row_number() OVER (ORDER BY id) % 2 = 1 THEN 'UPDATE' ELSE 'DELETE' END AS op
    FROM regress_faults.customers ORDER BY id LIMIT 26;
CREATE TEMP TABLE matrix (n int, fault text, op text, outcome text, shadow_changed boolean, api_changed boolean, error text);

DO $$
DECLARE
    f record;
    v_op text;
    v_target text;
    v_email text;
    statement text;
    outcome text;
BEGIN
    FOR f IN SELECT * FROM faults ORDER BY n LOOP
        FOREACH v_op IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
            v_email := format('fault%s-%s@example.com', f.n, lower(v_op));
            SELECT id INTO v_target FROM targets t WHERE t.n = f.n AND t.op = v_op;
            statement := CASE v_op
                WHEN 'INSERT' THEN format($q$INSERT INTO regress_faults.customers (email, name) VALUES (%L, 'Matrix')$q$, v_email)
                WHEN 'UPDATE' THEN format($q$UPDATE regress_faults.customers SET name = 'Changed' WHERE id = %L$q$, v_target)
                ELSE format($q$DELETE FROM regress_faults.customers WHERE id = %L$q$, v_target) END;
            PERFORM pg_temp.mock('POST', '/_admin/faults', (f.spec || jsonb_build_object(
                'account', current_setting('regress.account'),
                'method', CASE v_op WHEN 'DELETE' THEN 'DELETE' ELSE 'POST' END,
                'path_prefix', '/v1/customers'))::text);
            outcome := pg_temp.error_of(statement);
            PERFORM pg_temp.mock('DELETE', '/_admin/faults?account=' || current_setting('regress.account'));
            INSERT INTO matrix
            SELECT f.n, f.fault, v_op, pg_temp.masked(split_part(outcome, E'\n', 1)),
                   CASE v_op
                     WHEN 'INSERT' THEN EXISTS (SELECT 1 FROM regress_faults.customers c WHERE c.email = v_email)
                     WHEN 'UPDATE' THEN (SELECT c.name = 'Changed' FROM regress_faults.customers c WHERE c.id = v_target)
                     ELSE (SELECT c.deleted FROM regress_faults.customers c WHERE c.id = v_target) END,
                   CASE v_op
                     WHEN 'INSERT' THEN pg_temp.api_has_email(v_email)
                     WHEN 'UPDATE' THEN pg_temp.api_customer(v_target)->>'name' = 'Changed'
                     ELSE pg_temp.api_customer(v_target) IS NULL END,
                   outcome;
        END LOOP;
    END LOOP;
END $$;
\set QUIET off

-- "api": the API applied the change. "shadow_ok": the shadow table has it
-- if the statement succeeded, and has nothing the API does not; a failed
-- statement whose change the API applied all the same is synced later.
SELECT fault, op, outcome, api_changed AS api,
       CASE WHEN outcome = 'no error' THEN shadow_changed = api_changed OR (fault = '404' AND op = 'DELETE')
            ELSE NOT shadow_changed OR api_changed END AS shadow_ok
  FROM matrix ORDER BY n, op DESC;
-- The INSERT whose reply was lost was retried with its Idempotency-Key:
-- one customer in the API, not two.
SELECT count(*) AS customers_created_by_the_retried_insert
  FROM jsonb_array_elements(pg_temp.mock('GET', '/_admin/stripe/customers?account=' || current_setting('regress.account'))->'data') c
 WHERE c->>'email' = 'fault12-insert@example.com';
-- A change the API applied but whose reply was unreadable reaches the
-- shadow table with the next sync.
SELECT pg_temp.wait_for($$SELECT (SELECT count(*) FROM regress_faults.customers WHERE email = 'fault13-insert@example.com') = 1
                           AND (SELECT c.name = 'Changed' FROM regress_faults.customers c JOIN targets t USING (id) WHERE t.n = 13 AND t.op = 'UPDATE')
                           AND (SELECT c.deleted FROM regress_faults.customers c JOIN targets t USING (id) WHERE t.n = 13 AND t.op = 'DELETE')$$, 5)
       AS applied_changes_synced;
-- Full errors of two cases: DETAIL names status, method, path, field and
-- request id; retried failures say how many attempts were made.
SELECT pg_temp.masked(error) FROM matrix WHERE (n = 1 AND op = 'INSERT') OR (n = 7 AND op = 'UPDATE') ORDER BY n;

-- Secret hygiene: the key is in no error text, no status view, and not in
-- the server log (default log settings); a role that does not own the
-- mapping cannot read it.
SELECT count(*) AS errors_with_the_key FROM matrix WHERE strpos(error, current_setting('regress.account')) > 0;
SELECT count(*) AS status_rows_with_the_key FROM sequin.sync_status WHERE strpos(last_error, current_setting('regress.account')) > 0;
\! tail -c +"$LOG_START" "$SEQUIN_STACK/postgres.log" | grep -c "$ACCOUNT"
CREATE ROLE regress_faults_reader;
SET ROLE regress_faults_reader;
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'regress_faults';
RESET ROLE;
DROP ROLE regress_faults_reader;

DROP SCHEMA regress_faults CASCADE;
DROP SERVER regress_faults CASCADE;
