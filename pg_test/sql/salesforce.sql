-- Salesforce end to end: OAuth without expires_in, a 50,000-Contact backfill
-- over 2,000-record pages, outside changes and deletes (the deleted-records
-- endpoint), one all-or-nothing request per statement of up to 200 rows,
-- 201 rows refused before any request, the API's refusals as SQLSTATEs,
-- token expiry in the middle of the sync and of a write, the daily limit.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_salesforce
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"deleted_precision_ms": 1}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Contact/seed?account=$ACCOUNT&count=50000" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Account/seed?account=$ACCOUNT&count=20" -o /dev/null
\set refresh_token `curl -s -X POST "$MOCK_URL/_admin/oauth/grants?account=$ACCOUNT" -H 'content-type: application/json' -d '{"client_id": "regress-cid", "client_secret": "regress-secret"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'`
SELECT :'mock_url' || '/services/oauth2/token' AS token_url \gset

CREATE SERVER regress_sf FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'salesforce', base_url :'mock_url', token_url :'token_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_sf
  OPTIONS (client_id 'regress-cid', client_secret 'regress-secret', refresh_token :'refresh_token');
CREATE SCHEMA regress_sf;
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (accounts, contacts, leads, opportunities) FROM SERVER regress_sf INTO regress_sf;
\d regress_sf.contacts

-- The backfill: 50,000 Contacts in pages of 2,000, equal to the API.
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'regress_sf'$$, 90) AS backfilled;
SELECT "table", phase, rows, backfill, last_error FROM sequin.sync_status WHERE server = 'regress_sf' ORDER BY 1;
\set api_digest `curl -s "$MOCK_URL/_admin/salesforce/Contact?account=$ACCOUNT" | python3 -c 'import hashlib,json,sys; r = json.load(sys.stdin)["records"]; print(hashlib.md5("\n".join("|".join([c["Id"], c.get("LastName") or "", c.get("Email") or ""]) for c in sorted(r, key=lambda c: c["Id"])).encode()).hexdigest())'`
SELECT md5(string_agg(concat_ws('|', id, coalesce(last_name, ''), coalesce(email, '')), E'\n' ORDER BY id)) = :'api_digest' AS equals_the_api,
       count(*) AS contacts
  FROM regress_sf.contacts WHERE NOT deleted;
\set query_requests `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if "query" in k))'`
SELECT :query_requests >= 25 AS paged;

-- Someone else changes and deletes Contacts: they arrive within the poll
-- interval (+ 1 s); deletes through the deleted-records endpoint.
SELECT id AS c1 FROM regress_sf.contacts ORDER BY id LIMIT 1 \gset
SELECT id AS c2 FROM regress_sf.contacts ORDER BY id LIMIT 1 OFFSET 1 \gset
\setenv C1 :c1
\setenv C2 :c2
\! curl -s -X PATCH "$MOCK_URL/_admin/salesforce/Contact/$C1?account=$ACCOUNT" -H 'content-type: application/json' -d '{"Title": "CTO"}' -o /dev/null
\! curl -s -X DELETE "$MOCK_URL/_admin/salesforce/Contact/$C2?account=$ACCOUNT" -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT title = 'CTO' FROM regress_sf.contacts WHERE id = %L$$, :'c1'), 2) AS update_arrived,
       pg_temp.wait_for(format($$SELECT deleted FROM regress_sf.contacts WHERE id = %L$$, :'c2'), 2) AS delete_arrived;

-- A 200-row INSERT is one API request.
-- (Requests counted: every route but the sync's query and deleted ones.)
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if "query" not in k and "deleted" not in k))'`
SELECT sequin.pause('regress_sf');
INSERT INTO regress_sf.contacts (first_name, last_name, email, title)
  SELECT 'Batch', 'Row ' || i, format('batch%s@example.com', i), 'Engineer' FROM generate_series(1, 200) i;
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if "query" not in k and "deleted" not in k))'`
SELECT :after - :before AS api_requests_for_200_rows;
-- With RETURNING, the rows come back as Salesforce has them, fields it
-- computes included (one more request: a query for the new ids).
WITH inserted AS (
  INSERT INTO regress_sf.contacts (first_name, last_name, email)
  VALUES ('Ada', 'Lovelace', 'ada@example.com'), ('Grace', 'Hopper', 'grace@example.com')
  RETURNING id, name, email, system_modstamp, created_date)
SELECT id LIKE '003%' AS contact_id, name, email, system_modstamp IS NOT NULL AS stamped, created_date IS NOT NULL AS created
  FROM inserted ORDER BY name;
SELECT name, system_modstamp IS NOT NULL AS stamped_here FROM regress_sf.contacts WHERE email IN ('ada@example.com', 'grace@example.com') ORDER BY 1;
\! curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print({k: n for k, n in r.items() if "composite" in k})'
\! curl -s "$MOCK_URL/_admin/salesforce/Contact?account=$ACCOUNT" | python3 -c 'import json,sys; print("in the API:", sum(1 for c in json.load(sys.stdin)["records"] if (c.get("Email") or "").startswith("batch")), "batch contacts")'
SELECT count(*) AS batch_rows_here FROM regress_sf.contacts WHERE email LIKE 'batch%@example.com';

-- A 200-row UPDATE with one invalid row changes nothing anywhere; the error
-- names the row and carries Salesforce's errorCode and fields.
-- (Which position the row has depends on the scan's order: masked.)
SELECT regexp_replace(pg_temp.error_of($$UPDATE regress_sf.contacts SET email = CASE WHEN last_name = 'Row 77' THEN 'andrea__invalid' ELSE replace(email, 'batch', 'moved') END WHERE first_name = 'Batch'$$),
                      'Row \d+ of 200 \(id \w+\)', 'Row … of 200 (id 003…)');
SELECT count(*) FILTER (WHERE email LIKE 'moved%') AS moved_here, count(*) FILTER (WHERE email LIKE 'batch%') AS unchanged_here
  FROM regress_sf.contacts WHERE first_name = 'Batch';
\! curl -s "$MOCK_URL/_admin/salesforce/Contact?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["records"]; print("in the API:", sum(1 for c in r if (c.get("Email") or "").startswith("moved")), "moved,", sum(1 for c in r if (c.get("Email") or "").startswith("batch")), "unchanged")'
-- The same UPDATE without the invalid row: one request, all 200 applied.
UPDATE regress_sf.contacts SET title = 'Staff Engineer' WHERE first_name = 'Batch';
SELECT count(*) FILTER (WHERE title = 'Staff Engineer') AS updated_here FROM regress_sf.contacts WHERE first_name = 'Batch';
-- 201 rows: refused before any request.
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
SELECT pg_temp.error_of($$INSERT INTO regress_sf.contacts (last_name) SELECT 'Too many ' || i FROM generate_series(1, 201) i$$);
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
SELECT :after - :before AS api_requests_for_201_rows;

-- The API's refusals, as DESIGN's SQLSTATEs.
SELECT pg_temp.error_of($$INSERT INTO regress_sf.contacts (first_name) VALUES ('No last name')$$);
SELECT pg_temp.error_of($$INSERT INTO regress_sf.contacts (last_name, email) VALUES ('Twin', 'batch1@example.com')$$);
SELECT pg_temp.error_of($$INSERT INTO regress_sf.contacts (last_name, email) VALUES ('Bad', 'andrea__invalid')$$);
SELECT pg_temp.error_of(format($$UPDATE regress_sf.contacts SET created_date = now() WHERE id = %L$$, :'c1'));

-- A 200-row DELETE: one request, every row marked deleted.
DELETE FROM regress_sf.contacts WHERE first_name = 'Batch';
SELECT count(*) FILTER (WHERE deleted) AS deleted_here FROM regress_sf.contacts WHERE first_name = 'Batch';
\! curl -s "$MOCK_URL/_admin/salesforce/Contact?account=$ACCOUNT" | python3 -c 'import json,sys; print("in the API:", sum(1 for c in json.load(sys.stdin)["records"] if (c.get("FirstName") or "") == "Batch"), "batch contacts left")'
SELECT sequin.resume('regress_sf');

-- The access token expires: the next request gets INVALID_SESSION_ID, the
-- token is refreshed and the request retried, in the sync and in a write.
\set refreshes_before `curl -s "$MOCK_URL/_admin/oauth/stats?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refreshes"])'`
\! curl -s -X POST "$MOCK_URL/_admin/oauth/expire?account=$ACCOUNT" -o /dev/null
\! curl -s -X PATCH "$MOCK_URL/_admin/salesforce/Contact/$C1?account=$ACCOUNT" -H 'content-type: application/json' -d '{"Title": "CEO"}' -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT title = 'CEO' FROM regress_sf.contacts WHERE id = %L$$, :'c1'), 3) AS sync_recovered;
\! curl -s -X POST "$MOCK_URL/_admin/oauth/expire?account=$ACCOUNT" -o /dev/null
INSERT INTO regress_sf.contacts (last_name, email) VALUES ('After expiry', 'after-expiry@example.com') RETURNING last_name, email;
\set refreshes_after `curl -s "$MOCK_URL/_admin/oauth/stats?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refreshes"])'`
SELECT :refreshes_after - :refreshes_before AS refreshes;

-- Salesforce keeps deleted records 15 days: once the last check is older,
-- the table is backfilled again, with a WARNING, and a delete the endpoint
-- no longer reports is still found.
SELECT id AS c3 FROM regress_sf.contacts WHERE NOT deleted AND first_name IS DISTINCT FROM 'Batch' ORDER BY id LIMIT 1 OFFSET 5 \gset
\setenv C3 :c3
SELECT sequin.pause('regress_sf');
\! curl -s -X DELETE "$MOCK_URL/_admin/salesforce/Contact/$C3?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/deleted/expire?account=$ACCOUNT" -o /dev/null
SELECT sequin.resume('regress_sf');
SELECT pg_temp.wait_for(format($$SELECT deleted FROM regress_sf.contacts WHERE id = %L$$, :'c3'), 30) AS delete_found_by_the_new_backfill;
-- (The deleted-records endpoint takes whole seconds: a backfill that began
-- in the second the window moved is refused once more and starts again.)
SELECT pg_sleep(2);
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'regress_sf'$$, 30) AS all_incremental;
SELECT regexp_replace(last_warning, '\(.*\)', '(…)') AS last_warning, phase
  FROM sequin.sync_status WHERE "table" = 'regress_sf.contacts'::regclass;
SELECT count(*) FILTER (WHERE NOT deleted) AS live_contacts FROM regress_sf.contacts;
\! curl -s "$MOCK_URL/_admin/salesforce/Contact?account=$ACCOUNT" | python3 -c 'import json,sys; print("in the API:", len(json.load(sys.stdin)["records"]), "contacts")'

-- A sweep lists the contacts in full (SOQL pages of 2,000) and finds the
-- table equal to the API: nothing corrected, no row touched.
SELECT max(updated_idx) AS idx_before FROM sequin_shadow.regress_sf_contacts \gset
ALTER FOREIGN TABLE regress_sf.contacts OPTIONS (ADD sweep_interval '1s');
SELECT pg_temp.wait_for($$SELECT last_sweep_at IS NOT NULL FROM sequin.sync_status WHERE "table" = 'regress_sf.contacts'::regclass$$, 60) AS swept;
ALTER FOREIGN TABLE regress_sf.contacts OPTIONS (SET sweep_interval 'off');
SELECT last_sweep_requests = ceil((SELECT count(*) FROM regress_sf.contacts WHERE NOT deleted) / 2000.0) AS one_request_a_page,
       last_sweep_drift
  FROM sequin.sync_status WHERE "table" = 'regress_sf.contacts'::regclass;
SELECT max(updated_idx) = :idx_before AS no_row_touched FROM sequin_shadow.regress_sf_contacts;

-- (Last: the server's requests pause for a minute after this.)
-- The org's daily limit spent: 403 REQUEST_LIMIT_EXCEEDED is 53400. The
-- sync is paused first: its next poll must not be the request that meets
-- the limit (the write would then find the server's requests paused).
SELECT sequin.pause('regress_sf');
SELECT pg_sleep(0.5);
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"daily_limit": 1, "api_usage": 1}' -o /dev/null
SELECT pg_temp.error_of($$INSERT INTO regress_sf.contacts (last_name) VALUES ('Over the limit')$$);
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"daily_limit": 1000000, "api_usage": 0}' -o /dev/null

SET client_min_messages = warning;
DROP SCHEMA regress_sf CASCADE;
DROP SERVER regress_sf CASCADE;
