-- Hostile API replies: no header, body or record stops a sync, blocks a
-- server for long, or crashes a backend.
\i pg_test/helpers.psql
\setenv ACCOUNT sk_test_regress_hostile
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
-- The first customer page holds an id too long for any index and a value
-- jsonb cannot hold (\u0000), between two good records.
\! python3 -c 'import hashlib,json,os; long_id="cus_"+"".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(63))[:3996]; print(json.dumps({"kind":"status","status":200,"count":1,"account":os.environ["ACCOUNT"],"method":"GET","path_prefix":"/v1/customers","body":{"object":"list","has_more":False,"url":"/v1/customers","data":[{"id":"cus_good1","object":"customer","email":"good1@example.com","created":1700000000,"balance":0,"metadata":{}},{"id":long_id,"object":"customer","email":"long@example.com","created":1700000000,"metadata":{}},{"id":"cus_nul","object":"customer","email":"nul@example.com","name":"a\u0000b","created":1700000000,"metadata":{}},{"id":"cus_good2","object":"customer","email":"good2@example.com","created":1700000000,"metadata":{}}]}}))' > /tmp/sequin_hostile_fault.json
\! curl -s -X POST "$MOCK_URL/_admin/faults" --data-binary @/tmp/sequin_hostile_fault.json -o /dev/null
CREATE SERVER regress_hostile FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'stripe', base_url :'mock_url', poll_interval '1s', timeout '2s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_hostile OPTIONS (api_key 'sk_test_regress_hostile');
CREATE SCHEMA regress_hostile;
IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER regress_hostile INTO regress_hostile;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' FROM sequin.sync_status WHERE server = 'regress_hostile'$$, 20) AS backfilled;
SELECT left(id, 16) AS id, email FROM regress_hostile.customers ORDER BY id;
-- Both bad records are quarantined with the reason; the collection goes on.
SELECT left(id, 12) AS id, length(id) AS id_length, reason ~ 'index row|too large|exceeds' AS too_long,
       raw IS NOT NULL AS kept_raw
  FROM sequin.quarantined_records WHERE "table" = 'regress_hostile.customers'::regclass AND length(id) > 100;
SELECT id, reason ~ 'Unicode|\\u0000' AS unstorable, raw LIKE '%\\u0000%' AS raw_has_nul
  FROM sequin.quarantined_records WHERE "table" = 'regress_hostile.customers'::regclass AND id = 'cus_nul';
SELECT phase, quarantined_records, consecutive_failures, last_warning ~ 'quarantined' AS warned
  FROM sequin.sync_status WHERE server = 'regress_hostile';
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"after@example.com"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_hostile.customers WHERE email = 'after@example.com'$$, 20) AS still_syncing;
-- A NUL from the API itself (through the change feed) is quarantined too.
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"nul2@example.com","name":"x\u0000y"}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"after2@example.com"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_hostile.customers WHERE email = 'after2@example.com'$$, 20) AS past_it;
SELECT quarantined_records FROM sequin.sync_status WHERE server = 'regress_hostile';

-- Retry-After that is not a number of seconds is ignored: the write is
-- retried after the usual backoff and succeeds.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"status\",\"status\":429,\"count\":1,\"account\":\"$ACCOUNT\",\"method\":\"POST\",\"headers\":{\"Retry-After\":\"NaN\"}}" -o /dev/null
INSERT INTO regress_hostile.customers (email) VALUES ('nan@example.com') RETURNING email;
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"status\",\"status\":429,\"count\":1,\"account\":\"$ACCOUNT\",\"method\":\"POST\",\"headers\":{\"Retry-After\":\"-1\"}}" -o /dev/null
INSERT INTO regress_hostile.customers (email) VALUES ('minus@example.com') RETURNING email;
-- The sync too: a 429 with garbage on the change feed only delays it.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"status\",\"status\":429,\"count\":1,\"account\":\"$ACCOUNT\",\"method\":\"GET\",\"path_prefix\":\"/v1/events\",\"headers\":{\"Retry-After\":\"1e19\"}}" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" -d '{"email":"after429@example.com"}' -o /dev/null
-- An absurd Retry-After pauses the server at most an hour ...
SELECT pg_temp.wait_for($$SELECT paused_until IS NOT NULL FROM sequin.rate_limit_status WHERE server = 'regress_hostile'$$, 10) AS paused;
SELECT paused_until BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes' AS an_hour_not_a_century
  FROM sequin.rate_limit_status WHERE server = 'regress_hostile';
SELECT pg_temp.error_of($$INSERT INTO regress_hostile.customers (email) VALUES ('blocked@example.com')$$) ~ '^53400' AS refused_while_paused;
-- ... and sequin.resume() lifts it: writes and the sync go on.
SELECT sequin.resume('regress_hostile');
SELECT paused_until FROM sequin.rate_limit_status WHERE server = 'regress_hostile';
INSERT INTO regress_hostile.customers (email) VALUES ('resumed@example.com') RETURNING email;
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_hostile.customers WHERE email = 'after429@example.com'$$, 20) AS synced_after_resume;

-- Unknown outcomes: a 2xx reply that cannot be read is 40003 (the API
-- applied it), and the sync brings the record.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"malformed\",\"count\":1,\"account\":\"$ACCOUNT\",\"method\":\"POST\",\"applied\":true}" -o /dev/null
SELECT pg_temp.error_of($$INSERT INTO regress_hostile.customers (email) VALUES ('garbled@example.com')$$);
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_hostile.customers WHERE email = 'garbled@example.com'$$, 20) AS reconciled;
-- No reply in time: 40003 too, and the record arrives once the API made it.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"latency\",\"latency_ms\":3000,\"count\":1,\"account\":\"$ACCOUNT\",\"method\":\"POST\"}" -o /dev/null
SELECT pg_temp.error_of($$INSERT INTO regress_hostile.customers (email) VALUES ('slow@example.com')$$);
SELECT pg_temp.wait_for($$SELECT count(*) = 1 FROM regress_hostile.customers WHERE email = 'slow@example.com'$$, 20) AS reconciled;
-- A connection reset after the API made the customer: the INSERT is sent
-- again with its Idempotency-Key, and the customer exists once.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"reset\",\"count\":1,\"account\":\"$ACCOUNT\",\"method\":\"POST\",\"applied\":true}" -o /dev/null
INSERT INTO regress_hostile.customers (email) VALUES ('reset@example.com') RETURNING email;
\! curl -s "$MOCK_URL/_admin/stripe/customers?account=$ACCOUNT" | python3 -c 'import json,sys; print("upstream copies:", sum(c["email"] == "reset@example.com" for c in json.load(sys.stdin)["data"]))'
-- An UPDATE whose reply is lost: 40003, and the row is re-read.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"malformed\",\"count\":1,\"account\":\"$ACCOUNT\",\"method\":\"POST\",\"path_prefix\":\"/v1/customers/\",\"applied\":true}" -o /dev/null
SELECT pg_temp.error_of($$UPDATE regress_hostile.customers SET name = 'Renamed' WHERE email = 'reset@example.com'$$) ~ '^40003' AS unknown_outcome;
SELECT pg_temp.wait_for($$SELECT name = 'Renamed' FROM regress_hostile.customers WHERE email = 'reset@example.com'$$, 20) AS reread;
\! curl -s -X DELETE "$MOCK_URL/_admin/faults?account=$ACCOUNT" -o /dev/null
DROP SCHEMA regress_hostile CASCADE;
DROP SERVER regress_hostile CASCADE;
SELECT count(*) AS quarantine_left FROM sequin.quarantine q
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = q.foreign_table);
