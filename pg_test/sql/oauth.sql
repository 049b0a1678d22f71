-- OAuth2 user mappings: one access token per mapping shared by every session
-- and the worker, refreshed once per expiry; a rotated refresh token is
-- stored in the user mapping and survives a restart; a revoked grant is a
-- clear 28000; no token ever reaches the server log.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_oauth
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=8"; echo
\set log_start `stat -c %s "$SEQUIN_STACK/postgres.log"`
\setenv LOG_START :log_start
-- Access tokens live 5 s; every refresh rotates the refresh token.
\set refresh_token `curl -s -X POST "$MOCK_URL/_admin/oauth/grants?account=$ACCOUNT" -H 'content-type: application/json' -d '{"client_id": "regress-client", "client_secret": "regress-secret", "expires_in": 5, "rotate": true}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'`
\set token_url :mock_url '/oauth/v1/token'
\setenv PGHOST :HOST
\setenv PGPORT :PORT
\setenv PGUSER :USER
\setenv PGDATABASE :DBNAME

CREATE SERVER regress_oauth FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', token_url :'token_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_oauth
  OPTIONS (client_id 'regress-client', client_secret 'regress-secret', refresh_token :'refresh_token');
CREATE SCHEMA regress_oauth;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_oauth INTO regress_oauth;
-- The worker authenticates with the grant too.
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 8 FROM sequin.sync_status WHERE server = 'regress_oauth'$$, 20) AS backfilled;

-- Eight sessions write for 20 s (tokens expire four times meanwhile).
CREATE TABLE public.regress_oauth_writes (session int, ok boolean);
CREATE PROCEDURE public.regress_oauth_writer(session int) LANGUAGE plpgsql AS $$
DECLARE
    until timestamptz := clock_timestamp() + interval '20 s';
    n int := 0;
BEGIN
    WHILE clock_timestamp() < until LOOP
        n := n + 1;
        BEGIN
            UPDATE regress_oauth.customers SET name = format('Session %s write %s', session, n)
             WHERE email = format('customer%s@example.com', session);
            INSERT INTO public.regress_oauth_writes VALUES (session, true);
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO public.regress_oauth_writes VALUES (session, false);
        END;
        COMMIT;
        PERFORM pg_sleep(0.2);
    END LOOP;
END $$;
\! curl -s -X POST "$MOCK_URL/_admin/requests/reset?account=$ACCOUNT" -o /dev/null
\set refreshes_before `curl -s "$MOCK_URL/_admin/oauth/stats?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refreshes"])'`
\! for s in 1 2 3 4 5 6 7 8; do psql -Xq -c "CALL public.regress_oauth_writer($s)" & done; wait
\set refreshes_after `curl -s "$MOCK_URL/_admin/oauth/stats?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refreshes"])'`
SELECT count(DISTINCT session) AS sessions, count(*) > 400 AS many_writes, bool_and(ok) AS all_succeeded
  FROM public.regress_oauth_writes;
-- One refresh per expiry (about every 4 s: a fifth of the lifetime early),
-- not one per session: 20 s of writing took about five.
SELECT :refreshes_after - :refreshes_before BETWEEN 4 AND 7 AS refreshed_once_per_expiry;

-- The last rotated refresh token is in the user mapping (the worker writes
-- it); with nothing using the API any more, it stays the current one.
ALTER SERVER regress_oauth OPTIONS (SET poll_interval '1h');
SELECT pg_sleep(1.5);
\set current `curl -s "$MOCK_URL/_admin/oauth/stats?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["current_refresh_token"])'`
SELECT pg_temp.wait_for(format($$SELECT option_value = %L FROM pg_options_to_table(
          (SELECT umoptions FROM pg_user_mappings WHERE srvname = 'regress_oauth')) WHERE option_name = 'refresh_token'$$,
       :'current'), 5) AS rotated_token_stored;
SELECT :'current' <> :'refresh_token' AS token_was_rotated;

-- After a restart (the shared token cache is gone), the stored refresh
-- token still works.
\! curl -s -X POST "$MOCK_URL/_admin/oauth/expire?account=$ACCOUNT" -o /dev/null
\! bash scripts/stack.sh restart
\c
\i pg_test/helpers.psql
UPDATE regress_oauth.customers SET name = 'After restart' WHERE email = 'customer1@example.com' RETURNING name;

-- A revoked grant: a clear 28000, no token in it.
SELECT option_value AS stored FROM pg_options_to_table((SELECT umoptions FROM pg_user_mappings WHERE srvname = 'regress_oauth'))
 WHERE option_name = 'refresh_token' \gset
\setenv STORED :stored
\! curl -s -X DELETE "$MOCK_URL/_admin/oauth/grants/$STORED" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/oauth/expire?account=$ACCOUNT" -o /dev/null
SELECT pg_temp.error_of($$UPDATE regress_oauth.customers SET name = 'Revoked' WHERE email = 'customer1@example.com'$$) AS error \gset
SELECT regexp_replace(:'error', '127\.0\.0\.1:[0-9]+', '…', 'g') AS error;
SELECT strpos(:'error', 'ort_') = 0 AND strpos(:'error', 'oat_') = 0 AS no_token_in_the_error;

-- No refresh or access token in the server log.
\! tail -c +"$LOG_START" "$SEQUIN_STACK/postgres.log" | grep -c -E 'ort_|oat_'

DROP PROCEDURE public.regress_oauth_writer(int);
DROP TABLE public.regress_oauth_writes;
DROP SCHEMA regress_oauth CASCADE;
DROP SERVER regress_oauth CASCADE;
