-- Reach: which hosts a server may name (sequin.allowed_hosts, a superuser
-- setting, checked when a server is created or altered and before every
-- request), and redirects, which are never followed.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_reach
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
CREATE SERVER regress_reach FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1h', timeout '5s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_reach OPTIONS (api_key 'sk_test_regress_reach');
CREATE SCHEMA regress_reach;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_reach INTO regress_reach;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' FROM sequin.sync_status WHERE server = 'regress_reach'$$, 20) AS backfilled;

-- The default lists the providers' API hosts and loopback.
SHOW sequin.allowed_hosts;
-- Only a superuser may change it.
CREATE ROLE regress_reach_user;
SET ROLE regress_reach_user;
SELECT pg_temp.error_of($$SET sequin.allowed_hosts = '*'$$);
RESET ROLE;

-- A host the setting does not list: refused when a server names it ...
SET sequin.allowed_hosts = 'api.stripe.com';
SELECT pg_temp.error_of(format($$CREATE SERVER regress_reach_other FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url %L)$$, :'mock_url'));
SELECT pg_temp.error_of($$CREATE SERVER regress_reach_other FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'salesforce', base_url 'https://intranet.example.com', token_url 'https://login.salesforce.com/services/oauth2/token')$$);
SELECT pg_temp.error_of($$ALTER SERVER regress_reach OPTIONS (SET timeout '6s')$$) ~ '^HV00A' AS alter_refused;
-- ... and before a request of a server made earlier: nothing is sent
-- (requests the mock has seen for this account, before and after).
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
SELECT pg_temp.error_of($$INSERT INTO regress_reach.customers (email) VALUES ('blocked@example.com')$$);
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
SELECT :after - :before AS requests_sent;
-- Wildcards match names under a domain, not the domain's look-alikes.
SET sequin.allowed_hosts = '*.stripe.com, 127.0.0.2';
SELECT pg_temp.error_of(format($$CREATE SERVER regress_reach_other FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url %L)$$, :'mock_url')) ~ '^HV00A' AS loopback_not_listed;
SELECT pg_temp.error_of($$CREATE SERVER regress_reach_other FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url 'https://api.stripe.com.evil.example')$$) ~ '^HV00A' AS lookalike_refused;
CREATE SERVER regress_reach_other FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url 'https://eu.api.stripe.com');
DROP SERVER regress_reach_other;
RESET sequin.allowed_hosts;
INSERT INTO regress_reach.customers (email) VALUES ('allowed@example.com') RETURNING email;

-- Redirects are not followed: a 3xx is an error like any other non-2xx,
-- and the request is not sent again to where it points.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"status\",\"status\":307,\"count\":1,\"account\":\"$ACCOUNT\",\"method\":\"POST\",\"body\":{},\"headers\":{\"Location\":\"$MOCK_URL/v1/customers/elsewhere\"}}" -o /dev/null
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
SELECT pg_temp.error_of($$INSERT INTO regress_reach.customers (email) VALUES ('redirected@example.com')$$) ~ '^58000' AS redirect_is_an_error;
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'`
SELECT :after - :before AS requests_sent;
SELECT count(*) AS local_rows FROM regress_reach.customers WHERE email = 'redirected@example.com';

DROP SCHEMA regress_reach CASCADE;
DROP SERVER regress_reach CASCADE;
DROP ROLE regress_reach_user;
