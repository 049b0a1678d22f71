-- A hand-written foreign table works as well as an imported one: any subset
-- of the collection's columns, standard fields added to its shadow table,
-- and delete_mode 'hard' removing deleted records.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_hand_written
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers/seed?account=$ACCOUNT&count=3"; echo
CREATE SERVER regress_hand FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_hand OPTIONS (api_key 'sk_test_regress_hand_written');
CREATE FOREIGN TABLE public.regress_people (id text, email text, name text, created timestamptz)
  SERVER regress_hand OPTIONS (collection 'customers', delete_mode 'hard');
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'sequin_shadow.public_regress_people'::regclass AND attnum > 0 ORDER BY attnum;
SELECT pg_temp.wait_for($$SELECT count(*) = 3 FROM regress_people$$, 20) AS backfilled;
SELECT email, name FROM regress_people ORDER BY email;
SELECT id AS gone FROM regress_people WHERE email = 'customer2@example.com' \gset
\setenv GONE :gone
\! curl -s -X DELETE "$MOCK_URL/_admin/stripe/customers/$GONE?account=$ACCOUNT" -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 2 FROM regress_people$$, 2) AS hard_deleted;
SELECT count(*) AS rows_left_in_shadow FROM sequin_shadow.public_regress_people WHERE id = :'gone';
INSERT INTO regress_people (email) VALUES ('lin@example.com') RETURNING email, name IS NULL AS no_name;
DELETE FROM regress_people WHERE email = 'lin@example.com';
SELECT email FROM regress_people ORDER BY email;
DROP FOREIGN TABLE regress_people;
SELECT to_regclass('sequin_shadow.public_regress_people') AS shadow_after_drop;
DROP SERVER regress_hand CASCADE;
