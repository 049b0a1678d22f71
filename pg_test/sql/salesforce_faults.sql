-- The write-path fault matrix, for Salesforce's one-request batches: each
-- fault × {INSERT, UPDATE, DELETE} of two rows. For each: the SQLSTATE and
-- message, how many of the two rows the API has changed, how many the table
-- has — never more than the API — and, after the sync, table = API.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_sf_faults
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"deleted_precision_ms": 1}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Contact/seed?account=$ACCOUNT&count=60" -o /dev/null
\set refresh_token `curl -s -X POST "$MOCK_URL/_admin/oauth/grants?account=$ACCOUNT" -H 'content-type: application/json' -d '{"client_id": "faults-cid", "client_secret": "faults-secret"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'`
SELECT :'mock_url' || '/services/oauth2/token' AS token_url \gset
SELECT set_config('regress.mock_url', :'mock_url', false) IS NOT NULL AS configured;
CREATE SERVER regress_sff FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'salesforce', base_url :'mock_url', token_url :'token_url', poll_interval '1s', timeout '3s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_sff
  OPTIONS (client_id 'faults-cid', client_secret 'faults-secret', refresh_token :'refresh_token');
CREATE SCHEMA regress_sff;
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (contacts) FROM SERVER regress_sff INTO regress_sff;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 60 FROM sequin.sync_status WHERE server = 'regress_sff'$$, 20) AS backfilled;
-- The sync is paused while faults are injected: the table shows only what
-- the writes applied.
SELECT sequin.pause('regress_sff');

-- The mock's admin interface, from SQL (this file runs as a superuser).
CREATE TEMP TABLE shell_out (line text);
CREATE FUNCTION pg_temp.shell(command text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE shell_out;
    EXECUTE format('COPY shell_out FROM PROGRAM %L', command);
    RETURN QUERY SELECT line FROM shell_out;
END $$;
CREATE FUNCTION pg_temp.inject(fault text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_temp.shell(format($c$curl -s -o /dev/null -X DELETE '%1$s/_admin/faults?account=sk_test_regress_sf_faults' && curl -s -o /dev/null -X POST '%1$s/_admin/faults' -H 'content-type: application/json' -d '{"account": "sk_test_regress_sf_faults", "path_prefix": "/services/data/v60.0/composite", %2$s}'$c$,
                                  current_setting('regress.mock_url'), fault));
END $$;
-- Contacts in the API whose Title / LastName start with a prefix.
CREATE FUNCTION pg_temp.api_count(field text, prefix text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT out::bigint FROM pg_temp.shell(format(
        $c$curl -s '%s/_admin/salesforce/Contact?account=sk_test_regress_sf_faults' | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin)["records"] if (c.get("%s") or "").startswith("%s")))'$c$,
        current_setting('regress.mock_url'), field, prefix)) AS out LIMIT 1);
END $$;

CREATE TEMP TABLE cases (n serial, fault text, spec text);
INSERT INTO cases (fault, spec) VALUES
  ('400',                 '"kind": "status", "status": 400, "count": 1'),
  ('401 once',            '"kind": "status", "status": 401, "count": 1'),
  ('401 twice',           '"kind": "status", "status": 401, "count": 2'),
  ('403',                 '"kind": "status", "status": 403, "count": 1, "body": [{"message": "insufficient access rights on object id", "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY"}]'),
  ('404',                 '"kind": "status", "status": 404, "count": 1'),
  ('429 + Retry-After',   '"kind": "status", "status": 429, "count": 1, "headers": {"Retry-After": "1"}'),
  ('500',                 '"kind": "status", "status": 500, "count": 1'),
  ('503',                 '"kind": "status", "status": 503, "count": 1'),
  ('timeout',             '"kind": "hang", "count": 1'),
  ('reset',               '"kind": "reset", "count": 1'),
  ('malformed',           '"kind": "malformed", "count": 1'),
  ('reset after apply',   '"kind": "reset", "count": 1, "applied": true'),
  ('malformed after apply', '"kind": "malformed", "count": 1, "applied": true');
-- (403 REQUEST_LIMIT_EXCEEDED, which pauses the server for a minute, is in
-- salesforce.sql.)

CREATE TEMP TABLE results (n int, op text, fault text, outcome text, api_rows int, table_rows int);
DO $$
DECLARE
    c record;
    outcome text;
    ids text[];
BEGIN
    FOR c IN SELECT * FROM cases ORDER BY n LOOP
        -- INSERT two new contacts.
        PERFORM pg_temp.inject(c.spec);
        outcome := pg_temp.error_of(format(
            $s$INSERT INTO regress_sff.contacts (last_name, email) VALUES ('Ins%1$s-a', 'ins%1$s-a@example.com'), ('Ins%1$s-b', 'ins%1$s-b@example.com')$s$, c.n));
        INSERT INTO results SELECT c.n, 'INSERT', c.fault, split_part(outcome, E'\n', 1),
               pg_temp.api_count('LastName', format('Ins%s-', c.n)),
               (SELECT count(*) FROM regress_sff.contacts WHERE last_name LIKE format('Ins%s-%%', c.n));
        -- UPDATE two seeded contacts.
        ids := ARRAY(SELECT id FROM regress_sff.contacts WHERE last_name NOT LIKE 'Ins%'
                      ORDER BY id OFFSET (c.n - 1) * 4 LIMIT 2);
        PERFORM pg_temp.inject(c.spec);
        outcome := pg_temp.error_of(format(
            $s$UPDATE regress_sff.contacts SET title = 'Upd%s' WHERE id = ANY(%L::text[])$s$, c.n, ids));
        INSERT INTO results SELECT c.n, 'UPDATE', c.fault, split_part(outcome, E'\n', 1),
               pg_temp.api_count('Title', format('Upd%s', c.n)),
               (SELECT count(*) FROM regress_sff.contacts WHERE title = format('Upd%s', c.n));
        -- DELETE two other seeded contacts.
        ids := ARRAY(SELECT id FROM regress_sff.contacts WHERE last_name NOT LIKE 'Ins%'
                      ORDER BY id OFFSET (c.n - 1) * 4 + 2 LIMIT 2);
        PERFORM pg_temp.inject(c.spec);
        outcome := pg_temp.error_of(format(
            $s$DELETE FROM regress_sff.contacts WHERE id = ANY(%L::text[])$s$, ids));
        INSERT INTO results SELECT c.n, 'DELETE', c.fault, split_part(outcome, E'\n', 1),
               2 - (SELECT count(*) FROM pg_temp.shell(format($c$curl -s '%s/_admin/salesforce/Contact?account=sk_test_regress_sf_faults' | python3 -c 'import json,sys; ids = set(sys.argv[1:]); print("\n".join(c["Id"] for c in json.load(sys.stdin)["records"] if c["Id"] in ids))' %s$c$,
                                 current_setting('regress.mock_url'), array_to_string(ids, ' '))) AS out WHERE out <> '')::int,
               (SELECT count(*) FROM regress_sff.contacts WHERE id = ANY(ids) AND deleted);
    END LOOP;
    PERFORM pg_temp.shell(format($c$curl -s -o /dev/null -X DELETE '%s/_admin/faults?account=sk_test_regress_sf_faults'$c$, current_setting('regress.mock_url')));
END $$;
SELECT fault, op, regexp_replace(outcome, 'req_[A-Za-z0-9]+|\d+ ms', '…', 'g') AS outcome,
       api_rows AS changed_in_api, table_rows AS changed_here
  FROM results ORDER BY n, array_position(ARRAY['INSERT', 'UPDATE', 'DELETE'], op);
-- The table never shows a change the API does not have.
SELECT count(*) AS table_ahead_of_api FROM results WHERE table_rows > api_rows;

-- After the sync, table = API, row for row (including what was applied
-- upstream while the reply was lost).
SELECT sequin.resume('regress_sff');
\set api_digest `curl -s "$MOCK_URL/_admin/salesforce/Contact?account=$ACCOUNT" | python3 -c 'import hashlib,json,sys; r = json.load(sys.stdin)["records"]; print(hashlib.md5("\n".join("|".join([c["Id"], c.get("LastName") or "", c.get("Title") or ""]) for c in sorted(r, key=lambda c: c["Id"])).encode()).hexdigest())'`
SELECT pg_temp.wait_for(format($$SELECT md5(string_agg(concat_ws('|', id, coalesce(last_name, ''), coalesce(title, '')), E'\n' ORDER BY id)) = %L
                                   FROM regress_sff.contacts WHERE NOT deleted$$, :'api_digest'), 10) AS table_equals_api;

SET client_min_messages = warning;
DROP SCHEMA regress_sff CASCADE;
DROP SERVER regress_sff CASCADE;
