-- sequin.request(): any request to a server's API with the caller's user
-- mapping, the server's timeout, retries and request budget (as a write).
-- The reply is a row (status, headers, body); on a 2xx every record of a
-- synced collection in it, nested ones too, is applied in the caller's
-- transaction; a refusal changes nothing; bad arguments are refused before
-- any request; a rollback warns and re-reads; roles; Salesforce.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_request
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
-- 2 subscriptions, each of a new customer to one monthly price (and its
-- product), each with its paid first invoice.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/subscriptions/seed?account=$ACCOUNT&count=2"; echo
-- Every request the mock has seen for the account.
\setenv TOTAL 'import json,sys; print(json.load(sys.stdin)["total"])'

CREATE SERVER regress_req FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s', timeout '2s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_req OPTIONS (api_key 'sk_test_regress_request');
CREATE SCHEMA regress_req;
IMPORT FOREIGN SCHEMA stripe FROM SERVER regress_req INTO regress_req;
SELECT pg_temp.wait_for($$SELECT count(*) = 5 AND bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'regress_req'$$, 30) AS backfilled;
-- From here on the sync rests: what the tables show next came from
-- sequin.request() (or from the re-reads a rollback asks for).
SELECT sequin.pause('regress_req');
SELECT pg_sleep(1.2);

-- CRUD. A create is applied at once, in the caller's transaction, with a
-- new change-feed position.
SELECT last_value AS idx_before FROM sequin.updated_idx_seq \gset
BEGIN;
SELECT status, body->>'email' AS email, body->'metadata' AS metadata, headers->>'request-id' LIKE 'req_%' AS request_id
  FROM sequin.request('regress_req', 'POST', '/v1/customers',
                      '{"email": "ada@example.com", "name": "Ada", "metadata": {"plan": "pro"}}');
SELECT email, name, metadata, deleted, updated_idx > :idx_before AS new_position, raw->>'object' AS raw
  FROM regress_req.customers WHERE email = 'ada@example.com';
COMMIT;
SELECT id AS ada FROM regress_req.customers WHERE email = 'ada@example.com' \gset
\setenv ADA :ada
-- Changed from outside: a GET brings the API's state into the table.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/$ADA?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "Ada L."}' -o /dev/null
SELECT name AS before_get FROM regress_req.customers WHERE id = :'ada';
SELECT status, body->>'name' AS name FROM sequin.request('regress_req', 'GET', '/v1/customers/' || :'ada');
SELECT name AS after_get FROM regress_req.customers WHERE id = :'ada';
-- An update; a body sent with a GET goes into the query string (Stripe's
-- parameters are form-encoded, nested in brackets).
SELECT status, body->'metadata' AS metadata
  FROM sequin.request('regress_req', 'POST', '/v1/customers/' || :'ada', '{"metadata": {"plan": null, "tier": "gold"}}');
SELECT metadata FROM regress_req.customers WHERE id = :'ada';
SELECT status, jsonb_array_length(body->'data') AS customers, body->'data'->0->>'email' AS email
  FROM sequin.request('regress_req', 'GET', '/v1/customers', '{"email": "ada@example.com", "limit": 1}');
-- A delete marks the row deleted (the table's delete_mode).
SELECT status, body - 'id' AS body FROM sequin.request('regress_req', 'DELETE', '/v1/customers/' || :'ada');
SELECT deleted, name FROM regress_req.customers WHERE id = :'ada';

-- A reply whose records nest others: a subscription created with its first
-- invoice and its customer expanded. The subscription, the invoice (a table
-- no SQL statement may write), the customer and the price its items carry
-- are applied; the subscription's row keeps ids where objects were
-- expanded.
SELECT id AS price FROM regress_req.prices LIMIT 1 \gset
INSERT INTO regress_req.customers (email) VALUES ('sub@example.com') RETURNING email;
SELECT id AS customer FROM regress_req.customers WHERE email = 'sub@example.com' \gset
SELECT count(*) AS invoices_before FROM regress_req.invoices;
BEGIN;
SELECT status, body->'latest_invoice'->>'object' AS latest_invoice, body->'customer'->>'email' AS customer
  FROM sequin.request('regress_req', 'POST', '/v1/subscriptions',
                      jsonb_build_object('customer', :'customer', 'items', jsonb_build_array(jsonb_build_object('price', :'price', 'quantity', 3)),
                                         'expand', jsonb_build_array('latest_invoice', 'customer')));
SELECT s.status, s.customer = :'customer' AS customer_id, s.items->'data'->0->'quantity' AS quantity,
       i.status AS invoice, i.amount_paid, i.subscription = s.id AS invoice_of_it, s.latest_invoice = i.id AS latest
  FROM regress_req.subscriptions s JOIN regress_req.invoices i ON i.customer = s.customer
 WHERE s.customer = :'customer';
COMMIT;
SELECT count(*) AS invoices_after FROM regress_req.invoices;
SELECT id AS sub FROM regress_req.subscriptions WHERE customer = :'customer' \gset
SELECT id AS invoice FROM regress_req.invoices WHERE customer = :'customer' \gset
\setenv SUB :sub
-- A subscription nested inside an invoice: changed from outside, then read
-- through its invoice.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/subscriptions/$SUB?account=$ACCOUNT" -H 'content-type: application/json' -d '{"metadata": {"seen": "through its invoice"}}' -o /dev/null
SELECT status, body->'subscription'->'metadata' AS subscription_metadata
  FROM sequin.request('regress_req', 'GET', '/v1/invoices/' || :'invoice' || '?expand[]=subscription');
SELECT metadata FROM regress_req.subscriptions WHERE id = :'sub';
SELECT subscription = :'sub' AS invoice_keeps_the_id FROM regress_req.invoices WHERE id = :'invoice';
-- DELETE cancels a subscription: the row stays, canceled.
SELECT status, body->>'status' AS status FROM sequin.request('regress_req', 'DELETE', '/v1/subscriptions/' || :'sub');
SELECT status, deleted FROM regress_req.subscriptions WHERE id = :'sub';
-- Events are history: listing them applies nothing.
SELECT last_value AS idx_before FROM sequin.updated_idx_seq \gset
SELECT status, jsonb_array_length(body->'data') > 0 AS events FROM sequin.request('regress_req', 'GET', '/v1/events?limit=5');
SELECT last_value = :idx_before AS nothing_applied FROM sequin.updated_idx_seq;

-- A refusal is a row: the API's status, headers and error; nothing changes
-- locally and nothing is retried.
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c "$TOTAL"`
SELECT last_value AS idx_before FROM sequin.updated_idx_seq \gset
SELECT status, body->'error'->>'code' AS code, body->'error'->>'message' AS message, body->'error'->>'param' AS param,
       headers->>'content-type' AS content_type
  FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "not an email"}');
SELECT status, body->'error'->>'code' AS code FROM sequin.request('regress_req', 'GET', '/v1/customers/cus_missing');
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c "$TOTAL"`
SELECT :after - :before AS requests, (SELECT last_value FROM sequin.updated_idx_seq) = :idx_before AS nothing_applied;
-- raise_error: the refusal as the error a write gets for it.
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "not an email"}', raise_error => true)$$);

-- Retries: a 5xx to a GET is retried; a POST carries an Idempotency-Key
-- (the caller's, or a new one), so it is retried without creating twice.
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c "$TOTAL"`
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d "{\"account\": \"$ACCOUNT\", \"kind\": \"status\", \"status\": 503, \"count\": 2, \"method\": \"GET\"}" -o /dev/null
SELECT status, body->>'object' AS object FROM sequin.request('regress_req', 'GET', '/v1/customers?limit=1');
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d "{\"account\": \"$ACCOUNT\", \"kind\": \"reset\", \"count\": 1, \"method\": \"POST\", \"applied\": true}" -o /dev/null
SELECT status, headers->>'idempotent-replayed' AS replayed, body->>'email' AS email
  FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "retried@example.com"}');
SELECT status, headers->>'idempotency-key' AS key
  FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "keyed@example.com"}', '{"Idempotency-Key": "regress-key-1", "Stripe-Version": "2020-08-27"}');
SELECT status, headers->>'idempotent-replayed' AS replayed
  FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "keyed@example.com"}', '{"Idempotency-Key": "regress-key-1"}');
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c "$TOTAL"`
SELECT :after - :before AS requests;
\! curl -s "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" | python3 -c 'import json,sys; e = [c["email"] for c in json.load(sys.stdin)["data"]]; print("in the API: retried", e.count("retried@example.com"), "keyed", e.count("keyed@example.com"))'
SELECT email, count(*) FROM regress_req.customers WHERE email IN ('retried@example.com', 'keyed@example.com') GROUP BY 1 ORDER BY 1;
-- No reply in time: the write path's errors. A POST may have been applied
-- (40003, and every collection is polled at once); a cancel stops waiting.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d "{\"account\": \"$ACCOUNT\", \"kind\": \"hang\", \"count\": 1, \"method\": \"POST\"}" -o /dev/null
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "hung@example.com"}')$$);
\! curl -s -X POST "$MOCK_URL/_admin/faults" -H 'content-type: application/json' -d "{\"account\": \"$ACCOUNT\", \"kind\": \"hang\", \"count\": 1, \"method\": \"GET\"}" -o /dev/null
SET statement_timeout = '300ms';
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'GET', '/v1/customers')$$);
RESET statement_timeout;

-- Refused before any request: methods, paths that leave the API, headers
-- the user mapping or the transport set, a body Stripe cannot take.
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c "$TOTAL"`
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'TRACE', '/v1/customers')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'get', 'v1/customers')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'GET', 'https://evil.example/v1/customers')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'GET', '//evil.example/v1/customers')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'GET', '/v1/customers/../../admin')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'GET', '/v1/%2e%2e/admin')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'GET', '/v1/customers', headers => '{"Authorization": "Bearer sk_test_other"}')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'GET', '/v1/customers', headers => '["Stripe-Version"]')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'POST', '/v1/customers', '["email"]')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', NULL, '/v1/customers')$$);
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('no_such_server', 'GET', '/v1/customers')$$);
BEGIN TRANSACTION READ ONLY;
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "read-only@example.com"}')$$);
COMMIT;
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c "$TOTAL"`
SELECT :after - :before AS requests;

-- A rollback after the API accepted a request: the WARNING of writes, and
-- the records are re-read (the sync is paused: only the re-read brings
-- them back).
BEGIN;
SELECT status FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "rolled-back@example.com"}');
SELECT count(*) AS in_the_transaction FROM regress_req.customers WHERE email = 'rolled-back@example.com';
ROLLBACK;
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_req.customers WHERE email = 'rolled-back@example.com'$$, 5) AS reread;
-- A savepoint: only what it did is reported.
BEGIN;
SELECT status FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "kept@example.com"}');
SAVEPOINT s;
SELECT status FROM sequin.request('regress_req', 'POST', '/v1/customers/' || :'customer', '{"name": "Renamed in a savepoint"}');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT pg_temp.wait_for(format($$SELECT name = 'Renamed in a savepoint' FROM regress_req.customers WHERE id = %L$$, :'customer'), 5) AS reread,
       (SELECT count(*) FROM regress_req.customers WHERE email = 'kept@example.com') AS kept;

-- The request budget: a request counts as a write in the server's shared
-- budget (a server without tables has no sync traffic).
CREATE SERVER regress_req_budget FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', rate_limit '2', burst '1');
CREATE USER MAPPING FOR PUBLIC SERVER regress_req_budget OPTIONS (api_key 'sk_test_regress_request');
SELECT status FROM sequin.request('regress_req_budget', 'GET', '/v1/customers?limit=1');
SELECT status FROM sequin.request('regress_req_budget', 'GET', '/v1/customers?limit=1');
SELECT status FROM sequin.request('regress_req_budget', 'GET', '/v1/customers?limit=1');
SELECT rate_limit, writes_last_minute, sync_last_minute, waited_ms >= 300 AS waited_for_a_slot
  FROM sequin.rate_limit_status WHERE server = 'regress_req_budget';
-- A request whose reply holds no synced record (this server syncs no
-- table) is reported by its route when rolled back.
BEGIN;
SELECT status FROM sequin.request('regress_req_budget', 'POST', '/v1/products', '{"name": "Not synced here"}');
\set VERBOSITY default
ROLLBACK;
\set VERBOSITY terse

-- Roles. USAGE on the server is needed (the request may reach any
-- endpoint); records are applied to the tables the caller may write
-- through (INSERT, UPDATE or DELETE), with the extension's rights.
CREATE ROLE regress_req_stranger;
CREATE ROLE regress_req_caller;
GRANT USAGE ON SCHEMA regress_req TO regress_req_caller;
GRANT USAGE ON FOREIGN SERVER regress_req TO regress_req_caller;
GRANT SELECT ON regress_req.customers TO regress_req_caller;
SET ROLE regress_req_stranger;
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req', 'GET', '/v1/customers')$$);
SET ROLE regress_req_caller;
SELECT status FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "read-only-role@example.com"}');
SELECT count(*) AS applied_without_write_rights FROM regress_req.customers WHERE email = 'read-only-role@example.com';
RESET ROLE;
GRANT UPDATE (name) ON regress_req.customers TO regress_req_caller;
SET ROLE regress_req_caller;
SELECT status FROM sequin.request('regress_req', 'POST', '/v1/customers', '{"email": "writer-role@example.com"}');
SELECT count(*) AS applied_with_write_rights FROM regress_req.customers WHERE email = 'writer-role@example.com';
RESET ROLE;
DROP OWNED BY regress_req_caller, regress_req_stranger;
DROP ROLE regress_req_caller;
DROP ROLE regress_req_stranger;

-- Salesforce: JSON bodies; a whole record in a reply (a GET of the record,
-- a query of every field) is applied, a record of some fields only is not.
-- A DELETE (204) marks the row deleted at once; a PATCH (204) or a create
-- (whose reply names the new id only) has its record re-read.
\setenv SF_ACCOUNT sk_test_regress_request_sf
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$SF_ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/salesforce/Contact/seed?account=$SF_ACCOUNT&count=3" -o /dev/null
\set refresh_token `curl -s -X POST "$MOCK_URL/_admin/oauth/grants?account=$SF_ACCOUNT" -H 'content-type: application/json' -d '{"client_id": "regress-cid", "client_secret": "regress-secret"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'`
SELECT :'mock_url' || '/services/oauth2/token' AS token_url \gset
CREATE SERVER regress_req_sf FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'salesforce', base_url :'mock_url', token_url :'token_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_req_sf
  OPTIONS (client_id 'regress-cid', client_secret 'regress-secret', refresh_token :'refresh_token');
IMPORT FOREIGN SCHEMA salesforce LIMIT TO (contacts) FROM SERVER regress_req_sf INTO regress_req;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 3 FROM sequin.sync_status WHERE server = 'regress_req_sf'$$, 30) AS backfilled;
SELECT sequin.pause('regress_req_sf');
SELECT pg_sleep(1.2);
SELECT id AS c1 FROM regress_req.contacts ORDER BY id LIMIT 1 \gset
SELECT id AS c2 FROM regress_req.contacts ORDER BY id LIMIT 1 OFFSET 1 \gset
SELECT id AS c3 FROM regress_req.contacts ORDER BY id LIMIT 1 OFFSET 2 \gset
\setenv C1 :c1
\setenv C2 :c2
\! curl -s -X PATCH "$MOCK_URL/_admin/salesforce/Contact/$C1?account=$SF_ACCOUNT" -H 'content-type: application/json' -d '{"Title": "CTO", "Department": "Engineering"}' -o /dev/null
SELECT status, body->>'Title' AS title
  FROM sequin.request('regress_req_sf', 'GET', '/services/data/v60.0/sobjects/Contact/' || :'c1' || '?fields=Title');
SELECT title AS after_partial_get FROM regress_req.contacts WHERE id = :'c1';
SELECT status, body->'attributes'->>'type' AS type, body->>'Title' AS title
  FROM sequin.request('regress_req_sf', 'GET', '/services/data/v60.0/sobjects/Contact/' || :'c1');
SELECT title, department FROM regress_req.contacts WHERE id = :'c1';
\! curl -s -X PATCH "$MOCK_URL/_admin/salesforce/Contact/$C2?account=$SF_ACCOUNT" -H 'content-type: application/json' -d '{"Title": "VP"}' -o /dev/null
SELECT status, jsonb_array_length(body->'records') AS records
  FROM sequin.request('regress_req_sf', 'GET',
                      '/services/data/v60.0/query?q=SELECT+Id,FirstName,LastName,Name,Email,Phone,Title,Department,AccountId,MailingCity,LeadSource,Score__c,IsDeleted,CreatedDate,LastModifiedDate,SystemModstamp+FROM+Contact');
SELECT title FROM regress_req.contacts WHERE id = :'c2';
SELECT status, body FROM sequin.request('regress_req_sf', 'PATCH', '/services/data/v60.0/sobjects/Contact/' || :'c2', '{"Title": "CEO"}');
SELECT pg_temp.wait_for(format($$SELECT title = 'CEO' FROM regress_req.contacts WHERE id = %L$$, :'c2'), 5) AS reread;
SELECT status, body->'success' AS success, body->>'id' LIKE '003%' AS contact_id
  FROM sequin.request('regress_req_sf', 'POST', '/services/data/v60.0/sobjects/Contact', '{"LastName": "Lee", "Email": "lee@example.com"}');
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_req.contacts WHERE email = 'lee@example.com' AND name = 'Lee'$$, 5) AS created_reread;
BEGIN;
SELECT status, body FROM sequin.request('regress_req_sf', 'DELETE', '/services/data/v60.0/sobjects/Contact/' || :'c3');
SELECT deleted AS deleted_at_once FROM regress_req.contacts WHERE id = :'c3';
COMMIT;
SELECT status, body->0->>'errorCode' AS code, body->0->'fields' AS fields
  FROM sequin.request('regress_req_sf', 'POST', '/services/data/v60.0/sobjects/Contact', '{"Email": "nameless@example.com"}');
SELECT pg_temp.error_of($$SELECT * FROM sequin.request('regress_req_sf', 'GET', '/services/data/v60.0/query', '{"q": "SELECT Id FROM Contact"}')$$);

SELECT server, "table", phase, last_error FROM sequin.sync_status WHERE server LIKE 'regress_req%' ORDER BY 1, 2;
DROP SCHEMA regress_req CASCADE;
DROP SERVER regress_req CASCADE;
DROP SERVER regress_req_budget CASCADE;
DROP SERVER regress_req_sf CASCADE;
