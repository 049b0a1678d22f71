-- GitHub end to end: one repository per server; issues and pull requests
-- (one list, two tables), comments and labels; Link paging, since, ETags
-- and 304s; INSERT/UPDATE, DELETE closing an issue; a second between
-- writes; a 101-row statement refused; a long statement cut short by its
-- statement_timeout; 422 naming its field; deleted and transferred issues
-- found by the sweep; the primary and secondary rate limits.
\i pg_test/helpers.psql
\setenv ACCOUNT ghp_regress_github
\! curl -s -X POST "$MOCK_URL/_admin/reset?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/github/repos?account=$ACCOUNT" -H 'content-type: application/json' -d '{"full_name": "octo/hello"}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/github/repos?account=$ACCOUNT" -H 'content-type: application/json' -d '{"full_name": "octo/other"}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/github/users?account=$ACCOUNT" -H 'content-type: application/json' -d '{"login": "ann"}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/github/repos/octo/hello/seed?account=$ACCOUNT" -H 'content-type: application/json' -d '{"issues": 150, "pull_requests": 30, "step_s": 1}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/github/repos/octo/hello/issues/1/comments?account=$ACCOUNT" -H 'content-type: application/json' -d '{"body": "First!"}' -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/github/repos/octo/hello/labels?account=$ACCOUNT" -H 'content-type: application/json' -d '{"name": "bug", "color": "d73a4a"}' -o /dev/null

CREATE SERVER regress_gh FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'github', base_url :'mock_url', repository 'octo/hello', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_gh OPTIONS (api_key 'ghp_regress_github');
SELECT pg_temp.error_of($$CREATE SERVER regress_gh_bad FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'github')$$);
SELECT pg_temp.error_of($$CREATE SERVER regress_gh_bad FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'github', repository 'octo')$$);
CREATE SCHEMA regress_gh;
IMPORT FOREIGN SCHEMA github FROM SERVER regress_gh INTO regress_gh;
\d regress_gh.issues

-- Backfill (two pages of 100, by Link) → incremental; pull requests in
-- their own table.
SELECT pg_temp.wait_for($$SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'regress_gh'$$, 60) AS backfilled;
SELECT "table", rows, last_error FROM sequin.sync_status WHERE server = 'regress_gh' ORDER BY 1;
SELECT count(*) FILTER (WHERE raw ? 'pull_request') AS pull_requests_among_issues FROM regress_gh.issues;
SELECT number, title, state, author, repository FROM regress_gh.issues ORDER BY number LIMIT 2;
SELECT number, title, merged_at IS NULL AS unmerged FROM regress_gh.pull_requests ORDER BY number LIMIT 1;
SELECT issue_number, body FROM regress_gh.issue_comments;
-- Every request named the API version, the media type and a User-Agent.
\set headers `curl -s "$MOCK_URL/_admin/requests/recent?account=$ACCOUNT&limit=50" | python3 -c 'import json,sys; r = json.load(sys.stdin); h = [x["headers"] for x in r]; print(all(x.get("x-github-api-version") == "2022-11-28" and x.get("accept") == "application/vnd.github+json" and (x.get("user-agent") or "").startswith("sequin_fdw/") for x in h), len(h) > 0)'`
SELECT :'headers' AS versioned_requests;

-- Polls that find nothing new are 304s (If-None-Match) and cost no rate
-- limit.
SELECT pg_temp.wait_for($$SELECT true FROM pg_sleep(3)$$, 5) AS polled;
\set used_before `curl -s "$MOCK_URL/_admin/github/settings?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["used"])'`
SELECT pg_sleep(3);
\set used_after `curl -s "$MOCK_URL/_admin/github/settings?account=$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["used"])'`
\set not_modified `curl -s "$MOCK_URL/_admin/requests/recent?account=$ACCOUNT&limit=20" | python3 -c 'import json,sys; r = json.load(sys.stdin); print(sum(1 for x in r if x["status"] == 304 and x["headers"].get("if-none-match")))'`
SELECT :used_after - :used_before AS rate_limit_used_by_idle_polls, :not_modified > 0 AS answered_304;

-- Someone edits an issue on GitHub: it arrives.
\! curl -s -X PATCH "$MOCK_URL/_admin/github/repos/octo/hello/issues/3?account=$ACCOUNT" -H 'content-type: application/json' -d '{"title": "Edited on GitHub"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT title = 'Edited on GitHub' FROM regress_gh.issues WHERE number = 3$$, 10) AS outside_change_arrived;

-- Writes: INSERT creates, UPDATE patches, DELETE closes (the row stays).
INSERT INTO regress_gh.issues (title, body, labels, assignees) VALUES ('Made in SQL', 'From Postgres', '{bug}', '{ann}')
  RETURNING number > 180 AS new_number, title, state, labels, assignees, author IS NOT NULL AS has_author;
UPDATE regress_gh.issues SET body = 'Edited in SQL', labels = '{}' WHERE title = 'Made in SQL' RETURNING body, labels;
ALTER FOREIGN TABLE regress_gh.issues OPTIONS (ADD close_reason 'not_planned');
DELETE FROM regress_gh.issues WHERE title = 'Made in SQL';
SELECT title, state, state_reason, closed_at IS NOT NULL AS closed, deleted FROM regress_gh.issues WHERE title = 'Made in SQL';
SELECT pg_temp.error_of($$ALTER FOREIGN TABLE regress_gh.issues OPTIONS (SET close_reason 'wontfix')$$);
SELECT pg_temp.error_of($$INSERT INTO regress_gh.issues (title, state) VALUES ('x', 'closed')$$);
SELECT pg_temp.error_of($$INSERT INTO regress_gh.pull_requests (title) VALUES ('x')$$);
-- Comments: created on their issue, edited, deleted for real.
INSERT INTO regress_gh.issue_comments (issue_number, body) VALUES (2, 'From SQL') RETURNING issue_number, body, author IS NOT NULL AS has_author;
UPDATE regress_gh.issue_comments SET body = 'From SQL, edited' WHERE body = 'From SQL' RETURNING body;
DELETE FROM regress_gh.issue_comments WHERE body = 'From SQL, edited';
SELECT count(*) AS comments_left, count(*) FILTER (WHERE deleted) AS marked_deleted FROM regress_gh.issue_comments WHERE issue_number = 2;
SELECT pg_temp.error_of($$INSERT INTO regress_gh.issue_comments (body) VALUES ('orphan')$$);

-- 422 names its field: 23514.
SELECT pg_temp.error_of($$INSERT INTO regress_gh.issues (title) VALUES ('')$$);

-- At most 100 rows: 101 are refused before any request.
\set before `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(sum(n for k, n in json.load(sys.stdin)["by_route"].items() if not k.startswith("GET")))'`
SELECT pg_temp.error_of($$INSERT INTO regress_gh.issues (title) SELECT 'Bulk ' || i FROM generate_series(1, 101) i$$);
\set after `curl -s "$MOCK_URL/_admin/requests?account=$ACCOUNT" | python3 -c 'import json,sys; print(sum(n for k, n in json.load(sys.stdin)["by_route"].items() if not k.startswith("GET")))'`
SELECT :after - :before AS writing_requests_for_101_rows;

-- A second between writes: 3 rows take 2 s and more, and GitHub's
-- secondary limit (it refuses writes closer than a second here) never
-- answers.
SELECT clock_timestamp() AS t0 \gset
INSERT INTO regress_gh.issues (title) SELECT 'Spaced ' || i FROM generate_series(1, 3) i;
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '2 s' AS spaced,
       (SELECT count(*) FROM regress_gh.issues WHERE title LIKE 'Spaced %') AS written;

-- The second is counted from a write's reply, not from when the write was
-- let through: GitHub counts it between the writes it receives. Here the
-- first write takes 400 ms to arrive and the next ones none: counted from
-- the slots, the second would arrive 0.6 s after the first and be refused
-- (403, retry in 60 s). Counted from the replies: 0.4 + 1 + 1 s.
\! curl -s -X POST "$MOCK_URL/_admin/faults" -d "{\"kind\":\"latency\",\"latency_ms\":400,\"count\":1,\"method\":\"POST\",\"account\":\"$ACCOUNT\"}" -o /dev/null
SELECT pg_sleep(1.1);
SELECT clock_timestamp() AS t0 \gset
SELECT pg_temp.error_of($$INSERT INTO regress_gh.issues (title) SELECT 'Slow ' || i FROM generate_series(1, 3) i$$) AS first_write_slow;
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '2.4 s' AS spaced_from_the_replies,
       (SELECT count(*) FROM regress_gh.issues WHERE title LIKE 'Slow %') AS written;
\! curl -s -X DELETE "$MOCK_URL/_admin/faults?account=$ACCOUNT" -o /dev/null

-- A long statement cut short by statement_timeout: the rows written so
-- far stay written in GitHub, are named in the DETAIL, and come back into
-- the table with the re-read after the rollback.
-- (From a second after the last write: rows go at 0, 1, 2 and 3 s.)
SELECT pg_sleep(1.1);
SET statement_timeout = '3500ms';
SELECT pg_temp.error_of($$INSERT INTO regress_gh.issues (title) SELECT 'Cut ' || i FROM generate_series(1, 10) i$$) ~
       '^57014: canceling statement due to statement timeout\nDETAIL: Already applied upstream by this statement \(kept in the API, re-read into the table\): [0-9]+(, [0-9]+){3}\.$' AS cut_short_with_detail;
RESET statement_timeout;
SELECT pg_temp.wait_for($$SELECT count(*) = 4 FROM regress_gh.issues WHERE title LIKE 'Cut %'$$, 15) AS cut_rows_in_the_table;

-- Deleted and transferred issues vanish from the lists: the sweep finds
-- them and marks them deleted.
ALTER FOREIGN TABLE regress_gh.issues OPTIONS (ADD sweep_interval '2s');
\! curl -s -X DELETE "$MOCK_URL/_admin/github/repos/octo/hello/issues/5?account=$ACCOUNT" -o /dev/null
\! curl -s -X POST "$MOCK_URL/_admin/github/repos/octo/hello/issues/6/transfer?account=$ACCOUNT" -H 'content-type: application/json' -d '{"to": "octo/other"}' -o /dev/null
SELECT pg_temp.wait_for($$SELECT bool_and(deleted) FROM regress_gh.issues WHERE number IN (5, 6)$$, 30) AS gone_found_by_sweep;

-- Primary limit used up (403, remaining 0, reset in 2 s): the server
-- waits for the reset, and the write goes through.
\! curl -s -X POST "$MOCK_URL/_admin/github/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"remaining": 0, "reset_in_s": 2}' -o /dev/null
SELECT clock_timestamp() AS t0 \gset
UPDATE regress_gh.issues SET body = 'After the reset' WHERE number = 7 RETURNING body;
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '1 s' AS waited_for_the_reset;
-- Secondary limit (403 with retry-after 2): waited out, then written.
\! curl -s -X POST "$MOCK_URL/_admin/github/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"min_mutation_interval_ms": 3000, "secondary_retry_after_s": 2}' -o /dev/null
UPDATE regress_gh.issues SET body = 'Spaced out' WHERE number IN (8, 9) RETURNING number, body;
\! curl -s -X POST "$MOCK_URL/_admin/github/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"min_mutation_interval_ms": 1000}' -o /dev/null
-- A 429 primary limit past the timeout: 53400.
ALTER SERVER regress_gh OPTIONS (ADD timeout '2s');
\! curl -s -X POST "$MOCK_URL/_admin/github/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"remaining": 0, "reset_in_s": 30, "limit_status": 429}' -o /dev/null
SELECT pg_temp.error_of($$UPDATE regress_gh.issues SET body = 'Too soon' WHERE number = 10$$) ~ '^53400: ' AS limited;
\! curl -s -X POST "$MOCK_URL/_admin/github/settings?account=$ACCOUNT" -H 'content-type: application/json' -d '{"remaining": 5000, "limit_status": 403}' -o /dev/null
-- A GitHub App user token: an OAuth grant whose 8-hour access tokens are
-- refreshed (GitHub answers JSON when asked), and whose refresh token
-- rotates and is stored in the user mapping.
\set app_refresh `curl -s -X POST "$MOCK_URL/_admin/github/app_grants?account=$ACCOUNT" -H 'content-type: application/json' -d '{"client_id": "Iv1.regress", "client_secret": "app-secret"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'`
SELECT :'mock_url' || '/login/oauth/access_token' AS app_token_url \gset
CREATE SERVER regress_gh_app FOREIGN DATA WRAPPER sequin_fdw
  OPTIONS (provider 'github', base_url :'mock_url', repository 'octo/hello', token_url :'app_token_url', poll_interval '1s');
CREATE USER MAPPING FOR PUBLIC SERVER regress_gh_app
  OPTIONS (client_id 'Iv1.regress', client_secret 'app-secret', refresh_token :'app_refresh');
CREATE SCHEMA regress_gh_app;
IMPORT FOREIGN SCHEMA github LIMIT TO (labels) FROM SERVER regress_gh_app INTO regress_gh_app;
SELECT pg_temp.wait_for($$SELECT phase = 'incremental' AND rows = 1 FROM sequin.sync_status WHERE server = 'regress_gh_app'$$, 30) AS synced_with_an_app_token;
-- Its access tokens end: the next request refreshes and goes on.
\! curl -s -X POST "$MOCK_URL/_admin/oauth/expire?account=$ACCOUNT" -o /dev/null
INSERT INTO regress_gh_app.labels (name, color) VALUES ('from-app', '00ff00') RETURNING name, color;
SELECT pg_temp.wait_for($$SELECT (SELECT option_value FROM pg_options_to_table(m.umoptions) WHERE option_name = 'refresh_token') <> $$
                        || quote_literal(:'app_refresh') || $$ FROM pg_user_mappings m WHERE m.srvname = 'regress_gh_app'$$, 15) AS rotated_token_stored;
DROP SCHEMA regress_gh_app CASCADE;
DROP SERVER regress_gh_app CASCADE;

DROP SCHEMA regress_gh CASCADE;
DROP SERVER regress_gh CASCADE;
