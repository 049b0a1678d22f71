-- Schemas from the API (DESIGN §4a): IMPORT from describeGlobal and
-- describe (custom objects and fields, LIMIT TO / EXCEPT by table name),
-- typed columns with field options, hand-written tables naming any field,
-- unknown fields and types refused with the fields in the HINT, writes that
-- follow the describe's createable/updateable, fields added and removed
-- upstream (schema_drift, sequin.refresh_schema), and an 800-field sObject
-- whose SOQL would not fit in a URL.
\i pg_test/helpers.psql
SET datestyle = ISO;
SET timezone = UTC;
\setenv ACCOUNT sk_test_regress_sf_schema
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Invoice__c/seed?account=$ACCOUNT&count=3" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Wide__c/seed?account=$ACCOUNT&count=2500&step_ms=1" -o /dev/null
\set refresh_token `curl -s -X POST "$MOCK_URL/_admin/oauth/grants?account=$ACCOUNT" -H 'content-type: application/json' -d '{"client_id": "schema-cid", "client_secret": "schema-secret"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'`
SELECT :'mock_url' || '/services/oauth2/token' AS token_url \gset
-- The worker asks for the fields every second here (default 10 minutes).
ALTER SYSTEM SET sequin.schema_check_interval = '1s';
SELECT pg_reload_conf();

CREATE SERVER regress_sfs FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'salesforce', base_url :'mock_url', token_url :'token_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_sfs
  OPTIONS (client_id 'schema-cid', client_secret 'schema-secret', refresh_token :'refresh_token');
CREATE SCHEMA regress_sfs;

-- Discovery: the collections are the org's queryable sObjects, named as
-- tables (NoteAndAttachment is not queryable).
SELECT pg_temp.error_of($$IMPORT FOREIGN SCHEMA salesforce LIMIT TO (invoices) FROM SERVER regress_sfs INTO regress_sfs$$);
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (invoice__c) FROM SERVER regress_sfs INTO regress_sfs;
\d regress_sfs.invoice__c
-- EXCEPT: everything but the named tables (here: Narrow__c only).
CREATE SCHEMA regress_sfs_except;
IMPORT FOREIGN SCHEMA salesforce EXCEPT (accounts, contacts, leads, opportunities, invoice__c, wide__c)
  FROM SERVER regress_sfs INTO regress_sfs_except;
SELECT foreign_table_name FROM information_schema.foreign_tables WHERE foreign_table_schema = 'regress_sfs_except';
DROP SCHEMA regress_sfs_except CASCADE;

-- The backfill, values as their types.
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 3 FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoice__c'::regclass$$, 30) AS backfilled;
SELECT schema_drift, last_error FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoice__c'::regclass;
\x on
SELECT name, amount__c, score__c, status__c, tags__c, paid__c, quantity__c, due_date__c, paid_at__c, reminder__c,
       total__c, code__c, location__c, is_deleted
  FROM regress_sfs.invoice__c ORDER BY name LIMIT 1;
\x off
SELECT bool_and(total__c = amount__c * quantity__c) AS totals_computed_upstream FROM regress_sfs.invoice__c;

-- Writes go to the fields the columns name; the API's values come back.
INSERT INTO regress_sfs.invoice__c (name, amount__c, quantity__c, tags__c, status__c, code__c, due_date__c, paid_at__c)
  VALUES ('INV-1', 10, 3, '{Urgent,Gift}', 'Sent', 'C-1', '2026-12-31', '2026-12-01 10:00:00+00')
  RETURNING name, total__c, tags__c, status__c, code__c, due_date__c, paid_at__c;
UPDATE regress_sfs.invoice__c SET tags__c = '{Export}', score__c = 12.5 WHERE name = 'INV-1'
  RETURNING tags__c, score__c;
\set fields `curl -s "$MOCK_URL/_admin/salesforce/Invoice__c?account=$ACCOUNT" | python3 -c 'import json,sys; r = [x for x in json.load(sys.stdin)["records"] if x["Name"] == "INV-1"][0]; print(r["Tags__c"], r["Score__c"], r["Code__c"], r["Total__c"])'`
SELECT :'fields' AS in_the_api;

-- A column the describe does not let this statement set: 428C9, before
-- any request.
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["by_route"].values()))'`
SELECT pg_temp.error_of($$UPDATE regress_sfs.invoice__c SET code__c = 'C-2' WHERE name = 'INV-1'$$);
SELECT pg_temp.error_of($$INSERT INTO regress_sfs.invoice__c (name, total__c) VALUES ('INV-2', 5)$$);
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["by_route"].values()))'`
SELECT :after - :before AS requests_sent;

-- A hand-written table names any field; its columns are checked at CREATE.
CREATE FOREIGN TABLE regress_sfs.invoices_by_hand (
    id text,
    title text OPTIONS (field 'Name'),
    score numeric OPTIONS (field 'Score__c'),
    tags text OPTIONS (field 'Tags__c'),
    quantity__c integer
) SERVER regress_sfs OPTIONS (collection 'Invoice__c');
SELECT pg_temp.wait_for($$SELECT rows = 4 AND phase = 'incremental' FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoices_by_hand'::regclass$$, 30) AS synced;
SELECT title, score, tags, quantity__c FROM regress_sfs.invoices_by_hand WHERE title = 'INV-1';
UPDATE regress_sfs.invoices_by_hand SET score = 50 WHERE title = 'INV-1' RETURNING title, score;
-- Renamed, a column keeps its field.
ALTER FOREIGN TABLE regress_sfs.invoices_by_hand RENAME COLUMN score TO rating;
SELECT title, rating FROM regress_sfs.invoices_by_hand WHERE title = 'INV-1';
SELECT pg_temp.error_of($$CREATE FOREIGN TABLE regress_sfs.bad (id text, region text OPTIONS (field 'Region__c')) SERVER regress_sfs OPTIONS (collection 'Invoice__c')$$);
SELECT pg_temp.error_of($$CREATE FOREIGN TABLE regress_sfs.bad (id text, paid integer OPTIONS (field 'Paid__c')) SERVER regress_sfs OPTIONS (collection 'Invoice__c')$$);
SELECT pg_temp.error_of($$CREATE FOREIGN TABLE regress_sfs.bad (id text) SERVER regress_sfs OPTIONS (collection 'Receipt__c')$$);
SELECT count(*) AS bad_tables FROM pg_class WHERE relname = 'bad';

-- A field added upstream reaches raw at the next look at the fields, and
-- schema_drift says what refresh_schema would do.
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Invoice__c/fields?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Region__c", "type": "string", "length": 40, "createable": true, "updateable": true, "nillable": true}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT schema_drift LIKE '%Region__c%' FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoice__c'::regclass$$, 30) AS drift_seen;
SELECT schema_drift FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoice__c'::regclass;
SELECT id AS inv1 FROM regress_sfs.invoice__c WHERE name = 'INV-1' \gset
\setenv INV1 :inv1
\! curl -s -X PATCH "$MOCK_URL/_admin/salesforce/Invoice__c/$INV1?account=$ACCOUNT" -H 'content-type: application/json' -d '{"Region__c": "EMEA"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT raw->>'Region__c' = 'EMEA' FROM regress_sfs.invoice__c WHERE name = 'INV-1'$$, 30) AS in_raw;
-- refresh_schema adds the column, filled from raw (no request), once.
SELECT sequin.pause('regress_sfs');
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(r.values()), r.get("GET /services/data/v60.0/sobjects/Invoice__c/describe", 0))'`
SELECT sequin.refresh_schema('regress_sfs.invoice__c');
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(sum(r.values()), r.get("GET /services/data/v60.0/sobjects/Invoice__c/describe", 0))'`
SELECT :'before' AS before, :'after' AS after \gset
SELECT split_part(:'after', ' ', 1)::int - split_part(:'before', ' ', 1)::int AS requests,
       split_part(:'after', ' ', 2)::int - split_part(:'before', ' ', 2)::int AS describes;
SELECT sequin.resume('regress_sfs');
SELECT name, region__c FROM regress_sfs.invoice__c WHERE region__c IS NOT NULL;
SELECT sequin.refresh_schema('regress_sfs.invoice__c') AS again;
-- It asks the API itself: a field the sync has not seen yet is added too.
ALTER SYSTEM RESET sequin.schema_check_interval;
SELECT pg_reload_conf();
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Invoice__c/fields?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Zone__c", "type": "int", "createable": true, "updateable": true, "nillable": true}' -o /dev/null
SELECT sequin.refresh_schema('regress_sfs.invoice__c') AS at_once;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'regress_sfs.invoice__c'::regclass AND attname = 'zone__c';
ALTER SYSTEM SET sequin.schema_check_interval = '1s';
SELECT pg_reload_conf();
SELECT schema_drift FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoice__c'::regclass;
UPDATE regress_sfs.invoice__c SET region__c = 'APAC' WHERE name = 'INV-1' RETURNING region__c;

-- A field removed upstream stays a column, NULL from then on, and the sync
-- goes on.
\! curl -s -X DELETE "$MOCK_URL/_admin/salesforce/Invoice__c/fields/Score__c?account=$ACCOUNT" -o /dev/null
SELECT pg_temp.wait_for($$SELECT schema_drift LIKE '%Score__c%' FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoice__c'::regclass$$, 30) AS removal_seen;
SELECT schema_drift FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoice__c'::regclass;
\! curl -s -X PATCH "$MOCK_URL/_admin/salesforce/Invoice__c/$INV1?account=$ACCOUNT" -H 'content-type: application/json' -d '{"Name": "INV-1b"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT name = 'INV-1b' FROM regress_sfs.invoice__c WHERE region__c = 'APAC'$$, 30) AS synced_on;
SELECT name, score__c, region__c FROM regress_sfs.invoice__c WHERE id = :'inv1';
SELECT phase, consecutive_failures FROM sequin.sync_status WHERE "table" = 'regress_sfs.invoice__c'::regclass;
SELECT pg_temp.error_of($$UPDATE regress_sfs.invoice__c SET score__c = 1 WHERE name = 'INV-1b'$$);

-- 800 fields: the SOQL of every field would not fit in a URL (the API
-- answers 431); the fields that fit are queried and the rest of each page
-- read by collections retrieve, merged on Id.
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (wide__c) FROM SERVER regress_sfs INTO regress_sfs;
SELECT count(*) AS columns FROM information_schema.columns WHERE table_schema = 'regress_sfs' AND table_name = 'wide__c';
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 2500 FROM sequin.sync_status WHERE "table" = 'regress_sfs.wide__c'::regclass$$, 90) AS backfilled;
\set api_digest `curl -s "$MOCK_URL/_admin/salesforce/Wide__c?account=$ACCOUNT" | python3 -c 'import hashlib,json,sys; r = json.load(sys.stdin)["records"]; print(hashlib.md5("\n".join("|".join([c["Id"], str(c["Custom_Field_Number_001__c"]), str(c["Custom_Field_Number_797__c"])]) for c in sorted(r, key=lambda c: c["Id"])).encode()).hexdigest())'`
SELECT md5(string_agg(concat_ws('|', id, custom_field_number_001__c, custom_field_number_797__c), E'\n' ORDER BY id)) = :'api_digest' AS equals_the_api,
       count(*) FILTER (WHERE custom_field_number_800__c IS NULL) AS missing_last_field
  FROM regress_sfs.wide__c;
\set routes `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; r = json.load(sys.stdin)["by_route"]; print(" ".join(sorted(k for k in r if "composite/sobjects/Wide__c" in k)))'`
SELECT :'routes' AS wide_routes;
-- The one query of every field, as the API answers it.
SELECT string_agg(o.option_value, ',' ORDER BY a.attnum) AS fields
  FROM pg_attribute a, pg_options_to_table(a.attfdwoptions) o
 WHERE a.attrelid = 'regress_sfs.wide__c'::regclass AND o.option_name = 'field' \gset
SELECT status, length(:'fields') AS soql_field_list_length
  FROM sequin.request('regress_sfs', 'GET', '/services/data/v60.0/query?q=SELECT+Id,' || :'fields' || '+FROM+Wide__c');
-- Writes and RETURNING (read back by collections retrieve) work too.
INSERT INTO regress_sfs.wide__c (name, custom_field_number_800__c, custom_field_number_798__c, custom_field_number_001__c)
  VALUES ('Wide one', '2026-01-02', 3.5, 'first')
  RETURNING name, custom_field_number_800__c, custom_field_number_798__c, custom_field_number_001__c, custom_field_number_003__c;

DROP SCHEMA regress_sfs CASCADE;
DROP SERVER regress_sfs CASCADE;
ALTER SYSTEM RESET sequin.schema_check_interval;
SELECT pg_reload_conf();
