-- Salesforce backfills in ranges of SystemModstamp (the backfill_ranges
-- table option): after its first page, a 20,000-Contact backfill is cut
-- into 4 queries listed at once, each with its own place in the cursor; a
-- wide sObject's range pages are completed with collections retrieve. The
-- tables equal the API, and the incremental sync goes on from the start
-- of the backfill.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_sf_ranges
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Contact/seed?account=$ACCOUNT&count=20000" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Wide__c/seed?account=$ACCOUNT&count=4500&step_ms=1" -o /dev/null
\set refresh_token `curl -s -X POST "$MOCK_URL/_admin/oauth/grants?account=$ACCOUNT" -H 'content-type: application/json' -d '{"client_id": "regress-cid", "client_secret": "regress-secret"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'`
SELECT :'mock_url' || '/services/oauth2/token' AS token_url \gset
CREATE SERVER regress_sfr FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'salesforce', base_url :'mock_url', token_url :'token_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_sfr
  OPTIONS (client_id 'regress-cid', client_secret 'regress-secret', refresh_token :'refresh_token');
CREATE SCHEMA regress_sfr;
SELECT sequin.pause('regress_sfr');
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (contacts, wide__c) FROM SERVER regress_sfr INTO regress_sfr;
ALTER FOREIGN TABLE regress_sfr.contacts OPTIONS (ADD backfill_ranges '4');
ALTER FOREIGN TABLE regress_sfr.wide__c OPTIONS (ADD backfill_ranges '2');
\! curl -s -X POST "$MOCK_URL/_admin/requests/reset?account=$ACCOUNT" -o /dev/null
SELECT sequin.resume('regress_sfr');

-- While they run, each cursor holds its ranges.
SELECT pg_temp.wait_for($$SELECT jsonb_array_length(cursor->'ranges') = 4 FROM sequin.collections
                          WHERE foreign_table = 'regress_sfr.contacts'::regclass$$, 30) AS contacts_in_4_ranges;
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'regress_sfr'$$, 90) AS backfilled;
SELECT "table", phase, rows, last_error FROM sequin.sync_status WHERE server = 'regress_sfr' ORDER BY 1;

-- Each range was queried with its own bounds.
\set range_queries `curl -s "$MOCK_URL/_admin/requests/log?account=$ACCOUNT" | python3 -c 'import json,sys,urllib.parse; r = json.load(sys.stdin)["requests"]; q = [urllib.parse.unquote_plus(x.get("query") or "") for x in r]; print(sum(1 for s in q if "FROM Contact WHERE SystemModstamp >=" in s and "AND SystemModstamp <" in s))'`
SELECT :range_queries >= 4 AS contacts_queried_in_ranges;
\set wide_range_queries `curl -s "$MOCK_URL/_admin/requests/log?account=$ACCOUNT" | python3 -c 'import json,sys,urllib.parse; r = json.load(sys.stdin)["requests"]; q = [urllib.parse.unquote_plus(x.get("query") or "") for x in r]; print(sum(1 for s in q if "FROM Wide__c WHERE SystemModstamp >=" in s and "AND SystemModstamp <" in s))'`
SELECT :wide_range_queries >= 2 AS wide_queried_in_ranges;
\set retrieves `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(n for k, n in r.items() if "composite/sobjects/Wide__c" in k))'`
SELECT :retrieves >= 3 AS wide_pages_completed;

-- Both tables equal the API.
\set contacts_digest `curl -s "$MOCK_URL/_admin/salesforce/Contact?account=$ACCOUNT" | python3 -c 'import hashlib,json,sys; r = json.load(sys.stdin)["records"]; print(hashlib.md5("\n".join("|".join([c["Id"], c.get("LastName") or "", c.get("Email") or ""]) for c in sorted(r, key=lambda c: c["Id"])).encode()).hexdigest())'`
SELECT md5(string_agg(concat_ws('|', id, coalesce(last_name, ''), coalesce(email, '')), E'\n' ORDER BY id)) = :'contacts_digest' AS contacts_equal_the_api,
       count(*) AS contacts
  FROM regress_sfr.contacts;
\set wide_digest `curl -s "$MOCK_URL/_admin/salesforce/Wide__c?account=$ACCOUNT" | python3 -c 'import hashlib,json,sys; r = json.load(sys.stdin)["records"]; print(hashlib.md5("\n".join("|".join([c["Id"], str(c["Custom_Field_Number_001__c"]), str(c["Custom_Field_Number_797__c"])]) for c in sorted(r, key=lambda c: c["Id"])).encode()).hexdigest())'`
SELECT md5(string_agg(concat_ws('|', id, custom_field_number_001__c, custom_field_number_797__c), E'\n' ORDER BY id)) = :'wide_digest' AS wide_equals_the_api,
       count(*) AS wide_records
  FROM regress_sfr.wide__c;

-- Then changes arrive as usual.
SELECT id AS c1 FROM regress_sfr.contacts ORDER BY id LIMIT 1 \gset
\setenv C1 :c1
\! curl -s -X PATCH "$MOCK_URL/_admin/salesforce/Contact/$C1?account=$ACCOUNT" -H 'content-type: application/json' -d '{"Title": "Range Keeper"}' -o /dev/null
SELECT pg_temp.wait_for(format($$SELECT title = 'Range Keeper' FROM regress_sfr.contacts WHERE id = %L$$, :'c1'), 10) AS change_synced;

DROP SERVER regress_sfr CASCADE;
DROP SCHEMA regress_sfr;
