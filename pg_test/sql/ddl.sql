-- DDL on synced tables: every ALTER a user can run on a foreign table
-- leaves reads and writes correct, or is refused with a HINT; the shadow
-- table follows the foreign table; no backend dies (the server log of the
-- whole run is checked for "terminated by signal" by make test).
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_ddl
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=3"; echo
SELECT pg_postmaster_start_time() AS started \gset
CREATE SERVER regress_ddl FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_ddl OPTIONS (api_key 'sk_test_regress_ddl');
CREATE SCHEMA regress_ddl;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_ddl INTO regress_ddl;
SELECT pg_temp.wait_for($$SELECT count(*) = 3 FROM regress_ddl.customers$$, 20) AS backfilled;
-- A column's type changes in the shadow table too (this crashed the
-- backend), and the values are converted from the API's objects.
ALTER FOREIGN TABLE regress_ddl.customers ALTER COLUMN balance TYPE text;
SELECT format_type(atttypid, atttypmod) AS shadow_balance FROM pg_attribute
 WHERE attrelid = 'sequin_shadow.regress_ddl_customers'::regclass AND attname = 'balance';
SELECT email, balance, pg_typeof(balance) FROM regress_ddl.customers ORDER BY email;
-- A type the API's values do not convert to fails cleanly: nothing changes.
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_ddl.customers ALTER COLUMN email TYPE bigint$$);
SELECT email FROM regress_ddl.customers ORDER BY email LIMIT 1;
ALTER FOREIGN TABLE regress_ddl.customers ALTER COLUMN balance TYPE numeric;
SELECT sum(balance) AS balance_sum FROM regress_ddl.customers;
-- Refused, with what to do instead.
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_ddl.customers ALTER COLUMN deleted TYPE text$$);
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_ddl.customers DROP COLUMN id$$);
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_ddl.customers RENAME COLUMN name TO full_name$$);
SELECT pg_temp.error_of($$ALTER TABLE regress_ddl.customers RENAME COLUMN name TO full_name$$);
-- A column that names its field can be renamed: it keeps its values.
ALTER FOREIGN TABLE regress_ddl.customers ALTER COLUMN name OPTIONS (ADD field 'name');
ALTER FOREIGN TABLE regress_ddl.customers RENAME COLUMN name TO full_name;
SELECT count(*) FILTER (WHERE full_name IS NOT NULL) AS named, count(*) FILTER (WHERE full_name IS DISTINCT FROM raw->>'name') AS differing
  FROM regress_ddl.customers;
ALTER FOREIGN TABLE regress_ddl.customers RENAME COLUMN full_name TO name;
ALTER FOREIGN TABLE regress_ddl.customers ALTER COLUMN name OPTIONS (DROP field);
-- A field option naming a field the API does not have is refused.
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_ddl.customers ADD COLUMN nickname text OPTIONS (field 'nickname')$$);
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_ddl.customers OPTIONS (SET collection 'products')$$);
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_ddl.customers ADD COLUMN shout text GENERATED ALWAYS AS (upper(email)) STORED$$);
CREATE DOMAIN regress_ddl.positive AS bigint CHECK (VALUE > 0);
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_ddl.customers ADD COLUMN n regress_ddl.positive$$);
SELECT collection FROM sequin.collections WHERE foreign_table = 'regress_ddl.customers'::regclass;
-- Nor can the server's provider change under its tables; other options can.
SELECT pg_temp.error_of($$ALTER SERVER regress_ddl OPTIONS (SET provider 'salesforce')$$);
ALTER SERVER regress_ddl OPTIONS (ADD timeout '10s');
ALTER SERVER regress_ddl OPTIONS (DROP timeout);
SELECT o.option_name, o.option_value FROM pg_foreign_server s, pg_options_to_table(s.srvoptions) o
 WHERE s.srvname = 'regress_ddl' AND o.option_name <> 'base_url';
-- A column added later is filled from what the API sent, any field of it.
ALTER FOREIGN TABLE regress_ddl.customers ADD COLUMN invoice_prefix text, ADD COLUMN livemode boolean;
SELECT count(*) FILTER (WHERE invoice_prefix IS NOT NULL) AS prefixes,
       count(*) FILTER (WHERE livemode = false) AS test_mode FROM regress_ddl.customers;
-- Dropped and added again: the shadow column goes and comes back.
ALTER FOREIGN TABLE regress_ddl.customers DROP COLUMN phone;
SELECT count(*) AS shadow_phone FROM pg_attribute
 WHERE attrelid = 'sequin_shadow.regress_ddl_customers'::regclass AND attname = 'phone' AND NOT attisdropped;
ALTER FOREIGN TABLE regress_ddl.customers ADD COLUMN phone text;
-- A new record after the changes has every column.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"late@example.com","phone":"+1 555"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_ddl.customers WHERE email = 'late@example.com'$$, 20) AS synced;
SELECT phone, balance, invoice_prefix IS NOT NULL AS has_prefix FROM regress_ddl.customers WHERE email = 'late@example.com';
-- Writes after the changes.
INSERT INTO regress_ddl.customers (email, balance) VALUES ('ddl@example.com', 7) RETURNING email, balance, livemode;
UPDATE regress_ddl.customers SET name = 'D. D.' WHERE email = 'ddl@example.com' RETURNING name;
DELETE FROM regress_ddl.customers WHERE email = 'ddl@example.com';

-- A hand-written subset of the columns gets only its own columns (this
-- handed out the shadow row with more fields than the table has).
CREATE FOREIGN TABLE regress_ddl.subset (id text, email text)
  SERVER regress_ddl OPTIONS (collection 'customers');
SELECT pg_temp.wait_for($$SELECT count(*) = 4 FROM regress_ddl.subset$$, 20) AS backfilled;
SELECT email FROM regress_ddl.subset ORDER BY email;
CREATE TABLE regress_ddl.copied AS SELECT * FROM regress_ddl.subset;
SELECT string_agg(attname, ', ' ORDER BY attnum) AS copied_columns FROM pg_attribute
 WHERE attrelid = 'regress_ddl.copied'::regclass AND attnum > 0;
-- Columns in another order than the shadow's: read by name.
CREATE FOREIGN TABLE regress_ddl.reordered (email text, raw jsonb, id text)
  SERVER regress_ddl OPTIONS (collection 'customers');
SELECT pg_temp.wait_for($$SELECT count(*) = 4 FROM regress_ddl.reordered$$, 20) AS backfilled;
SELECT email, raw->>'id' = id AS same_id FROM regress_ddl.reordered ORDER BY email LIMIT 2;

-- The torture: every ALTER FOREIGN TABLE form, each followed by a read of
-- every column and a write. Each form either works or fails cleanly.
CREATE ROLE regress_ddl_owner;
CREATE FOREIGN TABLE regress_ddl.parent (id text, email text) SERVER regress_ddl OPTIONS (collection 'customers');
CREATE FOREIGN TABLE regress_ddl.t (id text, email text, name text, balance bigint, metadata jsonb, created timestamptz,
                                    deleted boolean, updated_idx bigint, raw jsonb)
  SERVER regress_ddl OPTIONS (collection 'customers');
SELECT pg_temp.wait_for($$SELECT count(*) = 4 FROM regress_ddl.t$$, 20) AS backfilled;
CREATE TEMP TABLE torture (n serial, statement text, outcome text, rows_read bigint);
DO $$
DECLARE
    forms text[] := ARRAY[
        'ADD COLUMN description text',
        'ADD COLUMN IF NOT EXISTS description text',
        'ADD COLUMN currency text DEFAULT ''eur''',
        'ADD COLUMN delinquent boolean NOT NULL DEFAULT false',
        'ADD COLUMN nothing_upstream numeric',
        'ADD COLUMN counter int GENERATED ALWAYS AS IDENTITY',
        'ADD COLUMN twice text GENERATED ALWAYS AS (email || email) STORED',
        'DROP COLUMN nothing_upstream',
        'DROP COLUMN IF EXISTS no_such_column',
        'DROP COLUMN raw',
        'DROP COLUMN updated_idx',
        'DROP COLUMN id',
        'ALTER COLUMN balance TYPE text',
        'ALTER COLUMN balance TYPE numeric(20,2)',
        'ALTER COLUMN balance SET DATA TYPE bigint',
        'ALTER COLUMN email TYPE varchar(200)',
        'ALTER COLUMN email TYPE int',
        'ALTER COLUMN metadata TYPE text',
        'ALTER COLUMN created TYPE date',
        'ALTER COLUMN created TYPE timestamptz',
        'ALTER COLUMN id TYPE varchar',
        'ALTER COLUMN deleted TYPE int USING 0',
        'ALTER COLUMN name SET DEFAULT ''anonymous''',
        'ALTER COLUMN name DROP DEFAULT',
        'ALTER COLUMN name SET NOT NULL',
        'ALTER COLUMN name DROP NOT NULL',
        'ALTER COLUMN email SET STATISTICS 500',
        'ALTER COLUMN email SET (n_distinct = 100)',
        'ALTER COLUMN email RESET (n_distinct)',
        'ALTER COLUMN email SET STORAGE EXTERNAL',
        'ALTER COLUMN email OPTIONS (ADD field ''email'')',
        'ADD CONSTRAINT positive CHECK (balance >= 0)',
        'ADD CONSTRAINT positive_nv CHECK (balance >= 0) NOT VALID',
        'VALIDATE CONSTRAINT positive_nv',
        'DROP CONSTRAINT positive',
        'DROP CONSTRAINT IF EXISTS no_such_constraint',
        'DISABLE TRIGGER ALL',
        'ENABLE TRIGGER ALL',
        'INHERIT regress_ddl.parent',
        'NO INHERIT regress_ddl.parent',
        'OWNER TO regress_ddl_owner',
        'OWNER TO CURRENT_USER',
        'OPTIONS (ADD delete_mode ''hard'')',
        'OPTIONS (SET delete_mode ''soft'')',
        'OPTIONS (ADD max_rows_per_statement ''5'')',
        'OPTIONS (DROP max_rows_per_statement)',
        'OPTIONS (SET collection ''products'')',
        'OPTIONS (DROP collection)',
        'OPTIONS (ADD no_such_option ''1'')',
        'RENAME COLUMN name TO full_name',
        'RENAME TO t2',
        'RENAME TO t',
        'SET SCHEMA public',
        'SET SCHEMA regress_ddl'];
    form text;
    target text;
    outcome text;
    n bigint;
BEGIN
    FOREACH form IN ARRAY forms LOOP
        target := coalesce(to_regclass('regress_ddl.t'), to_regclass('regress_ddl.t2'), to_regclass('public.t'))::text;
        BEGIN
            EXECUTE format('ALTER FOREIGN TABLE %s %s', target, form);
            outcome := 'ok';
        EXCEPTION WHEN OTHERS THEN
            outcome := SQLSTATE;
        END;
        target := coalesce(to_regclass('regress_ddl.t'), to_regclass('regress_ddl.t2'), to_regclass('public.t'))::text;
        -- Every column of every row, and a write through the table.
        EXECUTE format('SELECT count(*) FROM (SELECT t::text FROM %s t) r', target) INTO n;
        BEGIN
            EXECUTE format('UPDATE %s SET email = email WHERE email = %L', target, 'customer1@example.com');
        EXCEPTION WHEN OTHERS THEN
            outcome := outcome || ', update: ' || SQLSTATE;
        END;
        INSERT INTO torture (statement, outcome, rows_read) VALUES (form, outcome, n);
    END LOOP;
END $$;
SELECT statement, outcome, rows_read FROM torture ORDER BY n;
-- After it all, the table still reads every row and takes writes; a
-- DEFAULT on a column the API owns is refused as a write of it would be.
SELECT pg_temp.error_of($$INSERT INTO regress_ddl.t (email) VALUES ('tortured@example.com')$$);
ALTER FOREIGN TABLE regress_ddl.t ALTER COLUMN currency DROP DEFAULT, ALTER COLUMN delinquent DROP DEFAULT;
INSERT INTO regress_ddl.t (email) VALUES ('tortured@example.com') RETURNING email;
SELECT count(*) AS rows_now FROM regress_ddl.t;
DELETE FROM regress_ddl.t WHERE email = 'tortured@example.com';
-- No backend died: a crash would have restarted the server.
SELECT pg_postmaster_start_time() = :'started' AS server_never_restarted;
DROP SCHEMA regress_ddl CASCADE;
DROP SERVER regress_ddl CASCADE;
DROP ROLE regress_ddl_owner;
