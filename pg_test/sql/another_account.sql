-- One account per server: a user mapping whose key reaches another account
-- than the one the server syncs is refused with 28000 before its first
-- write (no write request is sent, nothing changes); a mapping with the
-- sync's own key, or another key of the same account, writes as usual.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_another_account_a
\setenv OTHER sk_test_regress_another_account_b
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$OTHER" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=2"; echo

CREATE SERVER regress_acct FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s', timeout '5s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_acct OPTIONS (api_key 'sk_test_regress_another_account_a');
CREATE SCHEMA regress_acct;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_acct INTO regress_acct;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 2 FROM sequin.sync_status WHERE server = 'regress_acct'$$, 20) AS backfilled;

CREATE ROLE regress_other;
CREATE ROLE regress_same;
GRANT USAGE ON FOREIGN SERVER regress_acct TO regress_other, regress_same;
GRANT USAGE ON SCHEMA regress_acct TO regress_other, regress_same;
GRANT SELECT, INSERT, UPDATE, DELETE ON regress_acct.customers TO regress_other, regress_same;
CREATE USER MAPPING FOR regress_other SERVER regress_acct OPTIONS (api_key 'sk_test_regress_another_account_b');
CREATE USER MAPPING FOR regress_same SERVER regress_acct OPTIONS (api_key 'sk_test_regress_another_account_a');

-- Write requests the mock has seen for the sync's account (its GETs excluded).
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(sum(n for k, n in json.load(sys.stdin)["by_route"].items() if not k.startswith("GET")))'`

-- Account B's key: INSERT, UPDATE and DELETE are all refused.
SET ROLE regress_other;
SELECT count(*) AS reads FROM regress_acct.customers;
SELECT pg_temp.error_of($$INSERT INTO regress_acct.customers (email) VALUES ('other@example.com')$$);
SELECT pg_temp.error_of($$UPDATE regress_acct.customers SET name = 'Taken over' WHERE email = 'customer1@example.com'$$);
SELECT pg_temp.error_of($$DELETE FROM regress_acct.customers WHERE email = 'customer2@example.com'$$);
RESET ROLE;

-- Nothing changed, locally or in either account; B's key was only asked
-- which account it reaches, once for the three statements.
SELECT count(*) AS rows, count(*) FILTER (WHERE deleted) AS deleted,
       count(*) FILTER (WHERE name = 'Taken over' OR email = 'other@example.com') AS changed
  FROM regress_acct.customers;
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(sum(n for k, n in json.load(sys.stdin)["by_route"].items() if not k.startswith("GET")))'`
SELECT :after - :before AS writes_sent_to_a;
\! curl -s "$MOCK_URL/_admin/requests?account=$OTHER" | python3 -c 'import json,sys; print("requests with B:", json.dumps(json.load(sys.stdin)["by_route"], sort_keys=True))'
\! curl -s "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" | python3 -c 'import json,sys; print("in A:", sorted((c["email"], c["name"]) for c in json.load(sys.stdin)["data"]))'
\! curl -s "$MOCK_URL/_admin/stripe/customers?account=$OTHER" | python3 -c 'import json,sys; print("in B:", len(json.load(sys.stdin)["data"]))'

-- The sync's own key in a mapping of the role's own: writes, with no
-- question asked.
SET ROLE regress_same;
INSERT INTO regress_acct.customers (email, name) VALUES ('same@example.com', 'Same') RETURNING email, name;
UPDATE regress_acct.customers SET name = 'Same again' WHERE email = 'same@example.com' RETURNING name;
DELETE FROM regress_acct.customers WHERE email = 'same@example.com' RETURNING email, deleted;
RESET ROLE;

-- A changed mapping is checked again: an OAuth access token of account A
-- (another secret, the same account) now writes for regress_other.
\set token `RT=$(curl -s -X POST "$MOCK_URL/_admin/oauth/grants?account=$ACCOUNT" -H 'content-type: application/json' -d '{"client_id": "regress-client", "client_secret": "regress-secret"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'); curl -s -X POST "$MOCK_URL/oauth/v1/token" -d "grant_type=refresh_token&client_id=regress-client&client_secret=regress-secret&refresh_token=$RT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'`
ALTER USER MAPPING FOR regress_other SERVER regress_acct OPTIONS (SET api_key :'token');
SET ROLE regress_other;
UPDATE regress_acct.customers SET name = 'Same account' WHERE email = 'customer1@example.com' RETURNING email, name;
RESET ROLE;
\! curl -s "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" | python3 -c 'import json,sys; print("in A:", sorted((c["email"], c["name"]) for c in json.load(sys.stdin)["data"]))'
\! curl -s "$MOCK_URL/_admin/requests?account=$OTHER" | python3 -c 'import json,sys; print("requests with B:", json.dumps(json.load(sys.stdin)["by_route"], sort_keys=True))'

SELECT server, phase, last_error, consecutive_failures FROM sequin.sync_status WHERE server = 'regress_acct';
DROP OWNED BY regress_other, regress_same;
DROP ROLE regress_other;
DROP ROLE regress_same;
DROP SCHEMA regress_acct CASCADE;
DROP SERVER regress_acct CASCADE;
