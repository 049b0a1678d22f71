-- Rights: once the extension is installed, a non-superuser keeps every DDL
-- it had and, with USAGE on a server, creates, imports, alters and drops
-- synced tables. Status is for everyone; record values (shadow rows, errors
-- and warnings that may quote them, quarantined records) only for roles
-- that may read the table.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_privileges
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=2"; echo
CREATE SERVER regress_priv FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_priv OPTIONS (api_key 'sk_test_regress_privileges');
CREATE ROLE regress_alice;
CREATE ROLE regress_bob;
GRANT USAGE ON FOREIGN SERVER regress_priv TO regress_alice;
CREATE SCHEMA regress_priv AUTHORIZATION regress_alice;
SET ROLE regress_alice;
-- Plain DDL of a non-superuser, dropped objects included (the sql_drop
-- event trigger refused these).
CREATE TABLE regress_priv.plain (a int, b int, CONSTRAINT a_positive CHECK (a > 0));
CREATE INDEX plain_a ON regress_priv.plain (a);
ALTER TABLE regress_priv.plain DROP COLUMN b;
ALTER TABLE regress_priv.plain DROP CONSTRAINT a_positive;
ALTER TABLE regress_priv.plain ADD COLUMN c text;
ALTER TABLE regress_priv.plain RENAME COLUMN c TO d;
DROP INDEX regress_priv.plain_a;
CREATE FUNCTION regress_priv.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
DROP FUNCTION regress_priv.f();
CREATE VIEW regress_priv.v AS SELECT a FROM regress_priv.plain;
DROP VIEW regress_priv.v;
DROP TABLE regress_priv.plain;
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_priv OPTIONS (api_key 'sk_test_regress_privileges');
DROP USER MAPPING FOR CURRENT_USER SERVER regress_priv;
-- Synced tables, imported and hand-written.
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_priv INTO regress_priv;
CREATE FOREIGN TABLE regress_priv.mine (id text, email text) SERVER regress_priv OPTIONS (collection 'customers');
SELECT pg_temp.wait_for($$SELECT count(*) = 2 FROM regress_priv.customers$$, 20) AS backfilled;
SELECT pg_temp.wait_for($$SELECT count(*) = 2 FROM regress_priv.mine$$, 20) AS backfilled;
-- Her own shadow tables she may read directly, not write.
SELECT count(*) AS shadow_rows FROM sequin_shadow.regress_priv_customers;
SELECT pg_temp.error_of($$DELETE FROM sequin_shadow.regress_priv_customers$$);
SELECT "table", phase, rows FROM sequin.sync_status WHERE server = 'regress_priv' ORDER BY 1;
SELECT server, rate_limit FROM sequin.rate_limit_status WHERE server = 'regress_priv';
SELECT sequin.sync_now('regress_priv.customers');
ALTER FOREIGN TABLE regress_priv.mine ADD COLUMN name text;
SELECT count(name) AS names FROM regress_priv.mine;
INSERT INTO regress_priv.mine (email) VALUES ('alice@example.com') RETURNING email;
DROP FOREIGN TABLE regress_priv.mine;
RESET ROLE;
GRANT USAGE ON SCHEMA regress_priv TO regress_bob;
-- A warning that quotes record values, as a poisoned record leaves one.
UPDATE sequin.collections SET last_warning = 'record cus_1 does not fit (value "secret@example.com")'
 WHERE foreign_table = 'regress_priv.customers'::regclass;
-- Bob may read nothing of hers: status yes, values no.
SET ROLE regress_bob;
SELECT "table", phase, rows, last_warning FROM sequin.sync_status WHERE server = 'regress_priv' ORDER BY 1;
SELECT server FROM sequin.rate_limit_status WHERE server = 'regress_priv';
SELECT pg_temp.error_of($$SELECT count(*) FROM sequin_shadow.regress_priv_customers$$);
SELECT sequin.shadow_row_count('pg_authid'::regclass) AS counts_no_other_tables;
SELECT pg_temp.error_of($$SELECT sequin.resync('regress_priv.customers')$$);
SELECT pg_temp.error_of($$NOTIFY sequin_changes, '{"table":"regress_priv.customers","updated_idx":1}'$$) AS forged_notify_is_only_a_wakeup;
RESET ROLE;
-- Granted SELECT on the table, he sees its values, and reads the shadow.
GRANT SELECT ON regress_priv.customers TO regress_bob;
SET ROLE regress_bob;
SELECT last_warning FROM sequin.sync_status WHERE "table" = 'regress_priv.customers'::regclass;
SELECT count(*) AS shadow_rows FROM sequin_shadow.regress_priv_customers;
RESET ROLE;
REVOKE SELECT ON regress_priv.customers FROM regress_bob;
SET ROLE regress_bob;
SELECT pg_temp.error_of($$SELECT count(*) FROM sequin_shadow.regress_priv_customers$$);
RESET ROLE;
-- A new owner reads the shadow; the old one no longer does.
CREATE ROLE regress_carol;
GRANT USAGE ON FOREIGN SERVER regress_priv TO regress_carol;
GRANT USAGE ON SCHEMA regress_priv TO regress_carol;
ALTER FOREIGN TABLE regress_priv.customers OWNER TO regress_carol;
SELECT has_table_privilege('regress_carol', 'sequin_shadow.regress_priv_customers', 'SELECT') AS carol_reads,
       has_table_privilege('regress_alice', 'sequin_shadow.regress_priv_customers', 'SELECT') AS alice_reads;
ALTER FOREIGN TABLE regress_priv.customers OWNER TO regress_alice;
-- The extension's own functions are not for calling directly.
SET ROLE regress_bob;
SELECT pg_temp.error_of($$SELECT sequin.register_foreign_table('regress_priv.customers'::regclass)$$);
RESET ROLE;
-- She drops it all, shadow tables included.
SET ROLE regress_alice;
DROP SCHEMA regress_priv CASCADE;
RESET ROLE;
SELECT count(*) AS shadows_left FROM pg_class WHERE relname LIKE 'regress_priv_%' AND relnamespace = 'sequin_shadow'::regnamespace;
DROP SERVER regress_priv CASCADE;
DROP ROLE regress_alice;
DROP ROLE regress_bob;
DROP ROLE regress_carol;
