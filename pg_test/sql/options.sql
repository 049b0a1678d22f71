-- Bad options are refused when they are given (CREATE/ALTER), with the
-- valid ones in the HINT; nothing is created.
\i pg_test/helpers.psql
\pset format unaligned
\pset tuples_only on
SELECT pg_temp.error_of($$CREATE SERVER s FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', colour 'blue')$$);
SELECT pg_temp.error_of($$CREATE SERVER s FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'paypal')$$);
SELECT pg_temp.error_of($$CREATE SERVER s FOREIGN DATA WRAPPER sequin_fdw OPTIONS (base_url 'https://api.stripe.com')$$);
SELECT pg_temp.error_of($$CREATE SERVER s FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', poll_interval 'often')$$);
SELECT pg_temp.error_of($$CREATE SERVER s FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', metadata 'team=billing')$$);
SELECT pg_temp.error_of($$CREATE SERVER s FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', base_url 'api.stripe.com')$$);
SELECT pg_temp.error_of($$CREATE SERVER s FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', rate_limit 'fast')$$);
CREATE SERVER opts FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', base_url 'http://127.0.0.1:9');
SELECT pg_temp.error_of($$ALTER SERVER opts OPTIONS (ADD timeout '-1s')$$);
-- Values that once overflowed, panicked or silently disabled a limit.
SELECT pg_temp.error_of($$ALTER SERVER opts OPTIONS (ADD poll_interval '100000000000h')$$);
SELECT pg_temp.error_of($$ALTER SERVER opts OPTIONS (ADD poll_interval '99999999999999999999999h')$$);
SELECT pg_temp.error_of($$ALTER SERVER opts OPTIONS (ADD timeout '0.0000000001')$$);
SELECT pg_temp.error_of($$ALTER SERVER opts OPTIONS (ADD rate_limit '1e-300')$$);
SELECT pg_temp.error_of($$ALTER SERVER opts OPTIONS (ADD rate_limit 'NaN')$$);
SELECT pg_temp.error_of($$ALTER SERVER opts OPTIONS (ADD burst '1e6')$$);
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'opts';
SELECT pg_temp.error_of($$CREATE USER MAPPING FOR PUBLIC SERVER opts OPTIONS (password 'secret')$$);
CREATE SCHEMA opts;
SELECT pg_temp.error_of($$CREATE FOREIGN TABLE opts.t (id text) SERVER opts$$);
SELECT pg_temp.error_of($$CREATE FOREIGN TABLE opts.t (id text) SERVER opts OPTIONS (collection 'charges')$$);
SELECT pg_temp.error_of($$CREATE FOREIGN TABLE opts.t (id text) SERVER opts OPTIONS (collection 'customers', delete_mode 'sometimes')$$);
SELECT pg_temp.error_of($$CREATE FOREIGN TABLE opts.t (email text) SERVER opts OPTIONS (collection 'customers')$$);
SELECT pg_temp.error_of($$CREATE FOREIGN TABLE opts.t (id text, deleted text) SERVER opts OPTIONS (collection 'customers')$$);
SELECT pg_temp.error_of($$IMPORT FOREIGN SCHEMA hubspot FROM SERVER opts INTO opts$$);
SELECT pg_temp.error_of($$IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, charges) FROM SERVER opts INTO opts$$);
-- Nothing was left behind by the refused statements.
SELECT count(*) AS foreign_tables FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE s.srvname = 'opts';
SELECT count(*) AS shadow_tables FROM pg_class WHERE relnamespace = 'sequin_shadow'::regnamespace AND relname LIKE 'opts%';
-- Writing without credentials names the server.
CREATE FOREIGN TABLE opts.customers (id text, email text) SERVER opts OPTIONS (collection 'customers');
SELECT pg_temp.error_of($$INSERT INTO opts.customers (email) VALUES ('x@example.com')$$);
DROP SCHEMA opts CASCADE;
DROP SERVER opts CASCADE;
SELECT count(*) AS catalog_rows_left FROM sequin.collections c WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = c.foreign_table);
