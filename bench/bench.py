#!/usr/bin/env python3
"""`make bench`: reads, writes, sync, rate limiting and idle cost, measured
side by side in one run against the local stack (Postgres + sequin-mock),
as ratios against the physical limits: the shadow table read directly, a
raw HTTP request to the same mock endpoint, the configured rate limit.
Prints one table and writes it to bench/results.md. It reports; it never
fails on a slow machine. `--quick` uses smaller samples (for development).
Needs PGHOST/PGPORT/PGUSER/PGDATABASE and MOCK_URL (target/stack.env).
"""
import datetime
import hashlib
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

QUICK = "--quick" in sys.argv
MOCK = os.environ["MOCK_URL"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READ_ROWS = 100_000 if QUICK else 1_000_000
LOOKUPS = 2_000 if QUICK else 10_000
SCANS = 5 if QUICK else 11
WRITES = 50 if QUICK else 200
BACKFILL_ROWS = 100_000
PEER_ROWS = 10_000 if QUICK else 50_000
FRESHNESS_CHANGES = 20 if QUICK else 60
rows = []  # (section, what, figure, goal, sample)


def psql(sql, db_timeout=None):
    done = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=db_timeout)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}\n{sql[:300]}")
    return done.stdout.strip()


def mock(method, path, account, body=None):
    sep = "&" if "?" in path else "?"
    request = urllib.request.Request(f"{MOCK}{path}{sep}account={account}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read() or b"null")


def report(section, what, figure, goal, sample):
    rows.append((section, what, figure, goal, sample))
    print(f"{section:<11} {what:<58} {figure:<26} {goal:<22} {sample}", flush=True)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def wait_until(sql, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if psql(sql) == "t":
            return True
        time.sleep(0.05)
    return False


def server(name, account, options=""):
    psql(f"""DROP SCHEMA IF EXISTS {name} CASCADE; DROP SERVER IF EXISTS {name} CASCADE;
             CREATE SERVER {name} FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'stripe', base_url '{MOCK}'{options});
             CREATE USER MAPPING FOR PUBLIC SERVER {name} OPTIONS (api_key '{account}');
             CREATE SCHEMA {name};""")


def drop(*names):
    for name in names:
        psql(f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {name} CASCADE; "
             f"DROP SERVER IF EXISTS {name} CASCADE;")


def backfilled(name, table, timeout):
    return wait_until(f"SELECT coalesce(bool_and(phase = 'incremental'), false) FROM sequin.sync_status "
                      f"WHERE \"table\" = '{name}.{table}'::regclass", timeout)


def requests_of(account):
    return mock("GET", "/_admin/requests", account)["total"]


# 1. Reads ------------------------------------------------------------------

def timed_sql(sql, repeat):
    """Median server-side time of `sql`, run `repeat` times in one session."""
    script = "\\timing on\n" + "\n".join([sql] * repeat)
    done = subprocess.run(["psql", "-XAtq", "-o", "/dev/null"], input=script, capture_output=True, text=True)
    times = [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("Time:")]
    return statistics.median(times[1:] if len(times) > 2 else times)


def reads():
    account = "sk_test_bench_read"
    mock("POST", "/_admin/reset", account)
    mock("POST", f"/_admin/stripe/customers/seed?count={READ_ROWS}", account)
    mock("POST", f"/_admin/stripe/subscriptions/seed?count={READ_ROWS // 100}", account)
    server("bench_read", account, ", poll_interval '5s'")
    started = time.monotonic()
    psql("IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, subscriptions) FROM SERVER bench_read INTO bench_read")
    backfilled("bench_read", "customers", 900)
    backfilled("bench_read", "subscriptions", 300)
    print(f"(read setup: {READ_ROWS:,} customers synced in {time.monotonic() - started:.0f} s)", flush=True)
    psql("VACUUM ANALYZE sequin_shadow.bench_read_customers")
    psql("VACUUM ANALYZE sequin_shadow.bench_read_subscriptions")
    psql("SELECT sequin.pause('bench_read')")
    before = requests_of(account)
    scan = "SELECT count(*), sum(balance), count(DISTINCT currency) FROM {} WHERE NOT deleted;"
    foreign = timed_sql(scan.format("bench_read.customers"), SCANS)
    shadow = timed_sql(scan.format("sequin_shadow.bench_read_customers"), SCANS)
    report("read", f"full scan + aggregate, {READ_ROWS:,} rows: foreign / shadow",
           f"{foreign:.0f} / {shadow:.0f} ms = {foreign / shadow:.2f}", "ratio ≤ 1.2", f"median of {SCANS}")

    lookup = """DO $$ DECLARE ids text[] := ARRAY(SELECT id FROM sequin_shadow.bench_read_customers
                                                   ORDER BY random() LIMIT {n}); e text; BEGIN
                  FOR i IN 1..{n} LOOP SELECT email INTO e FROM {t} WHERE id = ids[i]; END LOOP; END $$;"""
    foreign = timed_sql(lookup.format(n=LOOKUPS, t="bench_read.customers"), 3)
    shadow = timed_sql(lookup.format(n=LOOKUPS, t="sequin_shadow.bench_read_customers"), 3)
    plan = psql("EXPLAIN (COSTS OFF) SELECT email FROM bench_read.customers WHERE id = 'cus_x'").replace("\n", " ")
    uses_index = "Shadow Lookup: primary key" in plan
    report("read", f"lookup by id ×{LOOKUPS:,} (plpgsql): foreign / shadow",
           f"{foreign:.0f} / {shadow:.0f} ms = {foreign / shadow:.2f}", "ratio ≤ 1.5",
           f"median of 3 × {LOOKUPS:,}")
    report("read", "lookup by id uses the shadow table's primary key (EXPLAIN)",
           "yes" if uses_index else f"no: {plan[:60]}", "yes", "EXPLAIN")

    join = """SELECT count(*), sum(c.balance) FROM {s} s JOIN {c} c ON c.id = s.customer
              WHERE s.status = 'active';"""
    foreign = timed_sql(join.format(s="bench_read.subscriptions", c="bench_read.customers"), SCANS)
    shadow = timed_sql(join.format(s="sequin_shadow.bench_read_subscriptions",
                                   c="sequin_shadow.bench_read_customers"), SCANS)
    report("read", f"join subscriptions ({READ_ROWS // 100:,}) ⋈ customers: foreign / shadow",
           f"{foreign:.0f} / {shadow:.0f} ms = {foreign / shadow:.2f}", "ratio ≤ 1.5", f"median of {SCANS}")
    plan = psql("EXPLAIN (COSTS OFF) " + join.format(s="bench_read.subscriptions", c="bench_read.customers"))
    probes = "Nested Loop" in plan and "Shadow Lookup: primary key" in plan
    report("read", "the join probes the customers' primary key per subscription (EXPLAIN)",
           "yes" if probes else "no: " + " ".join(plan.split())[:60], "yes", "EXPLAIN")
    made = requests_of(account) - before
    report("read", "API requests made by all the reads above", str(made), "0", "mock request count")
    drop("bench_read")


# 2. Writes -----------------------------------------------------------------

def raw_latencies(account, method, paths, bodies):
    """Per request ms of a raw HTTP call to the mock (one kept-alive
    connection)."""
    return http_latencies(MOCK, account, method, paths, bodies)


def fdw_latencies(statements):
    """Per statement ms, timed inside Postgres (no client round trip)."""
    psql("DROP TABLE IF EXISTS public.bench_statements; CREATE TABLE public.bench_statements (n int, sql text)")
    values = ",".join(f"({i}, $q${s}$q$)" for i, s in enumerate(statements))
    psql(f"INSERT INTO public.bench_statements VALUES {values}")
    script = """CREATE TEMP TABLE bench_times (ms float8);
DO $$ DECLARE r record; t timestamptz; BEGIN
  FOR r IN SELECT sql FROM public.bench_statements ORDER BY n LOOP
    t := clock_timestamp(); EXECUTE r.sql;
    INSERT INTO bench_times VALUES (extract(epoch FROM clock_timestamp() - t) * 1000);
  END LOOP; END $$;
SELECT ms FROM bench_times;"""
    done = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1"], input=script, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    psql("DROP TABLE public.bench_statements")
    return [float(x) for x in done.stdout.split()]


def writes():
    account = "sk_test_bench_write"
    mock("POST", "/_admin/reset", account)
    mock("POST", "/_admin/stripe/customers/seed?count=10", account)
    server("bench_write", account, ", poll_interval '5s'")
    psql("IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER bench_write INTO bench_write")
    backfilled("bench_write", "customers", 60)
    n = WRITES
    fdw_insert = fdw_latencies([f"INSERT INTO bench_write.customers (email, name) VALUES "
                                f"('w{i}@example.com', 'Writer {i}')" for i in range(n)])
    raw_insert = raw_latencies(account, "POST", ["/v1/customers"] * n,
                               [f"email=r{i}%40example.com&name=Raw+{i}" for i in range(n)])
    ids = psql("SELECT id FROM bench_write.customers WHERE email LIKE 'w%@example.com' ORDER BY id").split()
    raw_ids = [c["id"] for c in mock("GET", "/_admin/stripe/customers", account)["data"]
               if c.get("email", "").startswith("r")]
    fdw_update = fdw_latencies([f"UPDATE bench_write.customers SET name = 'Renamed' WHERE id = '{i}'" for i in ids])
    raw_update = raw_latencies(account, "POST", [f"/v1/customers/{i}" for i in raw_ids], ["name=Renamed"] * len(raw_ids))
    fdw_delete = fdw_latencies([f"DELETE FROM bench_write.customers WHERE id = '{i}'" for i in ids])
    raw_delete = raw_latencies(account, "DELETE", [f"/v1/customers/{i}" for i in raw_ids], [None] * len(raw_ids))
    sql = plain_sql_latencies(n)
    for op, fdw, raw in (("INSERT", fdw_insert, raw_insert), ("UPDATE", fdw_update, raw_update),
                         ("DELETE", fdw_delete, raw_delete)):
        added50 = percentile(fdw, 50) - percentile(raw, 50)
        added99 = percentile(fdw, 99) - percentile(raw, 99)
        report("write", f"single-row {op}: FDW p50 / raw HTTP p50 → added p50, p99",
               f"{percentile(fdw, 50):.2f} / {percentile(raw, 50):.2f} → {added50:+.2f}, {added99:+.2f} ms",
               "added p50 ≤ 1 ms", f"{len(fdw)} + {len(raw)}")
        floor = percentile(raw, 50) + percentile(sql[op], 50)
        report("write", f"single-row {op}: FDW p50 ÷ (raw HTTP p50 + plain SQL p50)",
               f"{percentile(fdw, 50):.2f} ÷ ({percentile(raw, 50):.2f} + {percentile(sql[op], 50):.2f}) = "
               f"{percentile(fdw, 50) / floor:.2f}", "≤ 1.3", f"{len(fdw)} + {len(raw)} + {len(sql[op])}")
    drop("bench_write")


def plain_sql_latencies(n):
    """Per statement ms of the SQL a write's local apply amounts to, on a
    plain table like the shadow (same columns and indexes, no trigger): an
    upsert of the record's row for INSERT and UPDATE, the soft delete's
    update for DELETE."""
    psql("""DROP TABLE IF EXISTS public.bench_plain;
            CREATE TABLE public.bench_plain (LIKE sequin_shadow.bench_write_customers INCLUDING ALL)""")
    row = ("jsonb_populate_record(NULL::public.bench_plain, jsonb_build_object('id', 'p{i}', 'email', 'p{i}@example.com', "
           "'name', 'Plain {i}', 'deleted', false, 'updated_idx', nextval('sequin.updated_idx_seq'), "
           "'raw', jsonb_build_object('id', 'p{i}', 'object', 'customer', 'email', 'p{i}@example.com')))")
    upsert = ("INSERT INTO public.bench_plain SELECT (r).* FROM (SELECT " + row + " AS r) s "
              "ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, raw = excluded.raw, "
              "updated_idx = nextval('sequin.updated_idx_seq')")
    times = {
        "INSERT": fdw_latencies([upsert.format(i=i) for i in range(n)]),
        "UPDATE": fdw_latencies([upsert.format(i=i) for i in range(n)]),
        "DELETE": fdw_latencies([f"UPDATE public.bench_plain SET deleted = true, updated_idx = nextval('sequin.updated_idx_seq') "
                                 f"WHERE id = 'p{i}'" for i in range(n)]),
    }
    psql("DROP TABLE public.bench_plain")
    return times


def salesforce_batch():
    account = "sk_test_bench_salesforce"
    mock("POST", "/_admin/reset", account)
    grant = mock("POST", "/_admin/oauth/grants", account, {"client_id": "bench", "client_secret": "bench-secret"})
    psql(f"""DROP SCHEMA IF EXISTS bench_sf CASCADE; DROP SERVER IF EXISTS bench_sf CASCADE;
             CREATE SERVER bench_sf FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'salesforce', base_url '{MOCK}', token_url '{MOCK}/services/oauth2/token');
             CREATE USER MAPPING FOR PUBLIC SERVER bench_sf
               OPTIONS (client_id 'bench', client_secret 'bench-secret', refresh_token '{grant["refresh_token"]}');
             CREATE SCHEMA bench_sf;
             IMPORT FOREIGN SCHEMA salesforce LIMIT TO (contacts) FROM SERVER bench_sf INTO bench_sf;""")
    backfilled("bench_sf", "contacts", 60)
    psql("SELECT sequin.pause('bench_sf')")
    repeats = 5 if QUICK else 20

    def writes():
        routes = mock("GET", "/_admin/requests", account)["by_route"]
        return sum(n for route, n in routes.items() if "query" not in route and "deleted" not in route)

    before = writes()
    statements = [f"INSERT INTO bench_sf.contacts (last_name, email) SELECT 'Bench {k}-' || i, "
                  f"format('bench{k}-%s@example.com', i) FROM generate_series(1, 200) i" for k in range(repeats)]
    fdw = fdw_latencies(statements)
    requests = (writes() - before) / repeats
    token = urllib.parse.urlencode({"grant_type": "refresh_token", "client_id": "bench", "client_secret": "bench-secret",
                                    "refresh_token": grant["refresh_token"]}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{MOCK}/services/oauth2/token", data=token), timeout=30) as reply:
        access = json.loads(reply.read())["access_token"]
    url = urllib.parse.urlparse(MOCK)
    connection = http.client.HTTPConnection(url.hostname, url.port)
    raw = []
    for k in range(repeats):
        body = json.dumps({"allOrNone": True, "records": [
            {"attributes": {"type": "Contact"}, "LastName": f"Raw {k}-{i}", "Email": f"raw{k}-{i}@example.com"}
            for i in range(200)]})
        started = time.perf_counter()
        connection.request("POST", "/services/data/v60.0/composite/sobjects", body=body,
                           headers={"Authorization": f"Bearer {access}", "Content-Type": "application/json"})
        connection.getresponse().read()
        raw.append((time.perf_counter() - started) * 1000)
    report("write", "200-row Salesforce INSERT: API requests per statement", f"{requests:g}", "1",
           f"{repeats} statements")
    report("write", "200-row Salesforce INSERT: FDW p50 / one raw request p50",
           f"{percentile(fdw, 50):.1f} / {percentile(raw, 50):.1f} ms = {percentile(fdw, 50) / percentile(raw, 50):.2f}",
           "(ratio)", f"{repeats} + {repeats}")
    drop("bench_sf")


# 3. Sync -------------------------------------------------------------------

def github_backfill():
    """GitHub issues: pages of 100 (the API's most), by the Link header."""
    account = "ghp_bench_github"
    count = 2_000 if QUICK else 10_000
    mock("POST", "/_admin/reset", account)
    mock("POST", "/_admin/github/repos", account, {"full_name": "bench/repo"})
    mock("POST", "/_admin/github/repos/bench/repo/seed", account, {"issues": count, "step_s": 1})
    psql(f"""DROP SCHEMA IF EXISTS bench_gh CASCADE; DROP SERVER IF EXISTS bench_gh CASCADE;
             CREATE SERVER bench_gh FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'github', base_url '{MOCK}', repository 'bench/repo', poll_interval '1s');
             CREATE USER MAPPING FOR PUBLIC SERVER bench_gh OPTIONS (api_key '{account}');
             CREATE SCHEMA bench_gh;""")
    before = requests_of(account)
    psql("IMPORT FOREIGN SCHEMA github LIMIT TO (issues) FROM SERVER bench_gh INTO bench_gh")
    backfilled("bench_gh", "issues", 600)
    seconds = float(psql("SELECT extract(epoch FROM backfill_finished_at - backfill_started_at) FROM sequin.collections "
                         "WHERE foreign_table = 'bench_gh.issues'::regclass"))
    rows = int(psql("SELECT count(*) FROM bench_gh.issues"))
    report("sync", "GitHub issues backfill, zero-latency mock: rows per second",
           f"{rows / seconds:,.0f} rows/s ({seconds:.1f} s)", "(pages of 100)",
           f"{rows:,} issues, {requests_of(account) - before} requests")
    drop("bench_gh")


def wide_objects():
    """The cost per record of an 800-field sObject (its SOQL does not fit a
    URL: a query of the fields that fit, plus one collections retrieve per
    page) against a 50-field one, backfilled the same way."""
    account = "sk_test_bench_wide"
    count = 2_000 if QUICK else 10_000
    mock("POST", "/_admin/reset", account)
    grant = mock("POST", "/_admin/oauth/grants", account, {"client_id": "bench", "client_secret": "bench-secret"})
    costs = {}
    for sobject in ("Narrow__c", "Wide__c"):
        mock("POST", f"/_admin/salesforce/{sobject}/seed?count={count}&step_ms=1", account)
        table = sobject.lower()
        psql(f"""DROP SCHEMA IF EXISTS bench_wide CASCADE; DROP SERVER IF EXISTS bench_wide CASCADE;
                 CREATE SERVER bench_wide FOREIGN DATA WRAPPER sequin_fdw
                   OPTIONS (provider 'salesforce', base_url '{MOCK}', token_url '{MOCK}/services/oauth2/token');
                 CREATE USER MAPPING FOR PUBLIC SERVER bench_wide
                   OPTIONS (client_id 'bench', client_secret 'bench-secret', refresh_token '{grant["refresh_token"]}');
                 CREATE SCHEMA bench_wide;""")
        before = requests_of(account)
        psql(f"IMPORT FOREIGN SCHEMA salesforce LIMIT TO ({table}) FROM SERVER bench_wide INTO bench_wide")
        backfilled("bench_wide", table, 600)
        seconds = float(psql("SELECT extract(epoch FROM backfill_finished_at - backfill_started_at) FROM sequin.collections "
                             f"WHERE foreign_table = 'bench_wide.{table}'::regclass"))
        fields = int(psql(f"SELECT count(*) FROM pg_attribute a, pg_options_to_table(a.attfdwoptions) o "
                          f"WHERE a.attrelid = 'bench_wide.{table}'::regclass AND o.option_name = 'field'"))
        costs[sobject] = (seconds / count * 1e6, (requests_of(account) - before) / count * 1000, fields)
    (narrow_us, narrow_req, narrow_fields), (wide_us, wide_req, wide_fields) = costs["Narrow__c"], costs["Wide__c"]
    report("sync", f"Salesforce backfill per record: {wide_fields}-field / {narrow_fields}-field sObject",
           f"{wide_us:.0f} / {narrow_us:.0f} µs = {wide_us / narrow_us:.1f}", "(ratio; fields ×16)",
           f"{count:,} records each")
    report("sync", "… API requests per 1,000 records, wide / narrow", f"{wide_req:.1f} / {narrow_req:.1f}",
           "(2,000-record pages)", f"{count:,} records each")
    drop("bench_wide")


def backfill_rate():
    account = "sk_test_bench_backfill"
    mock("POST", "/_admin/reset", account)
    mock("POST", f"/_admin/stripe/customers/seed?count={BACKFILL_ROWS}", account)
    server("bench_backfill", account, ", poll_interval '1s'")
    started = time.monotonic()
    psql("IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER bench_backfill INTO bench_backfill")
    backfilled("bench_backfill", "customers", 600)
    seconds = float(psql("SELECT extract(epoch FROM backfill_finished_at - backfill_started_at) FROM sequin.collections "
                         "WHERE foreign_table = 'bench_backfill.customers'::regclass"))
    count = int(psql("SELECT count(*) FROM sequin_shadow.bench_backfill_customers"))
    report("sync", f"backfill, zero-latency mock: rows applied per second",
           f"{count / seconds:,.0f} rows/s ({seconds:.1f} s)", "≥ 50,000 rows/s", f"{count:,} rows")
    parsed, text = sql_only_ceiling("jsonb"), sql_only_ceiling("text")
    report("sync", "backfill ÷ the SQL-only ceiling (the same records as jsonb pages of 100, page-wise upsert)",
           f"{count / seconds:,.0f} ÷ {parsed:,.0f} rows/s = {count / seconds / parsed:.0%}", "≥ 50 %",
           f"{count:,} rows")
    report("sync", "… the same with the pages as JSON text, as an API sends them (the SQL parses them)",
           f"{count / seconds:,.0f} ÷ {text:,.0f} rows/s = {count / seconds / text:.0%}", "(report)",
           f"{count:,} rows")
    del started
    # Left polling, it would weigh on every section after it.
    drop("bench_backfill")


def stripe_sync_engine():
    """Stripe Sync Engine (npm @supabase/stripe-sync-engine) and sequin_fdw
    backfill the same account's customers from the same mock into the same
    cluster, one after the other."""
    account = "sk_test_bench_peer"
    count = PEER_ROWS
    mock("POST", "/_admin/reset", account)
    mock("POST", f"/_admin/stripe/customers/seed?count={count}", account)
    here = os.path.join(ROOT, "bench", "stripe_sync_engine")
    lock = open(os.path.join(here, "package-lock.json"), "rb").read()
    stamp = os.path.join(here, "node_modules", ".lock.md5")
    if not os.path.exists(stamp) or open(stamp).read() != hashlib.md5(lock).hexdigest():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=here, check=True)
        with open(stamp, "w") as out:
            out.write(hashlib.md5(lock).hexdigest())
    psql("DROP DATABASE IF EXISTS bench_stripe_sync_engine")
    psql("CREATE DATABASE bench_stripe_sync_engine")
    url = (f"postgresql://{urllib.parse.quote(os.environ['PGUSER'])}@{os.environ['PGHOST']}:{os.environ['PGPORT']}"
           f"/bench_stripe_sync_engine")
    done = subprocess.run(["node", "backfill.cjs", url, account, MOCK], cwd=here, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Stripe Sync Engine: {done.stderr[-2000:]}")
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    psql("DROP DATABASE bench_stripe_sync_engine")
    server("bench_peer", account, ", poll_interval '1s'")
    psql("IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER bench_peer INTO bench_peer")
    backfilled("bench_peer", "customers", 600)
    seconds = float(psql("SELECT extract(epoch FROM backfill_finished_at - backfill_started_at) FROM sequin.collections "
                         "WHERE foreign_table = 'bench_peer.customers'::regclass"))
    ours = int(psql("SELECT count(*) FROM sequin_shadow.bench_peer_customers"))
    drop("bench_peer")
    if theirs["synced"] != count or ours != count:
        raise RuntimeError(f"peer backfill: {theirs['synced']} and {ours} rows of {count}")
    mine, peer = ours / seconds, theirs["synced"] / theirs["seconds"]
    report("peer", "customers backfill on the same mock and cluster: sequin_fdw / Stripe Sync Engine 0.48.5",
           f"{mine:,.0f} / {peer:,.0f} rows/s = {mine / peer:.1f}×", "≥ 5×", f"{count:,} rows each")


def sql_only_ceiling(form):
    """Rows per second of the cheapest plain SQL apply of the backfill's
    records: their rows in pages of 100, each page upserted into a table
    like the shadow (same columns and indexes, no HTTP, no trigger) with
    jsonb_populate_recordset. `form`: the pages are kept as jsonb (parsed
    beforehand: the stricter ceiling) or as JSON text."""
    psql(f"""DROP TABLE IF EXISTS public.bench_pages, public.bench_ceiling;
            CREATE TABLE public.bench_pages AS
              SELECT n / 100 AS page, jsonb_agg(r ORDER BY n)::{form} AS rows
                FROM (SELECT row_number() OVER (ORDER BY id) - 1 AS n, to_jsonb(s) AS r
                        FROM sequin_shadow.bench_backfill_customers s) s
               GROUP BY 1;
            CREATE TABLE public.bench_ceiling (LIKE sequin_shadow.bench_backfill_customers INCLUDING ALL)""")
    script = """DO $$ DECLARE p record; BEGIN
  FOR p IN SELECT rows FROM public.bench_pages ORDER BY page LOOP
    INSERT INTO public.bench_ceiling SELECT * FROM jsonb_populate_recordset(NULL::public.bench_ceiling, p.rows::jsonb)
      ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, raw = excluded.raw,
                                     updated_idx = excluded.updated_idx;
  END LOOP; END $$;"""
    started = time.monotonic()
    psql(script)
    seconds = time.monotonic() - started
    rows = int(psql("SELECT count(*) FROM public.bench_ceiling"))
    psql("DROP TABLE public.bench_pages, public.bench_ceiling")
    return rows / seconds


def latency_bound_share():
    account = "sk_test_bench_rated"
    mock("POST", "/_admin/reset", account)
    for kind in ("customers", "products", "prices"):
        mock("POST", f"/_admin/stripe/{kind}/seed?count=20000", account)
    mock("POST", "/_admin/faults", account, {"account": account, "kind": "latency", "latency_ms": 50, "fraction": 1})
    server("bench_rated", account, ", poll_interval '1s', rate_limit '25', burst '1'")
    for tables, ranges in ((["customers"], 1), (["customers"], 4), (["customers", "products", "prices"], 1)):
        drop("bench_rated")
        server("bench_rated", account, ", poll_interval '1s', rate_limit '25', burst '1'")
        psql("SELECT sequin.pause('bench_rated')")
        psql(f"IMPORT FOREIGN SCHEMA stripe LIMIT TO ({', '.join(tables)}) FROM SERVER bench_rated INTO bench_rated")
        if ranges > 1:
            psql(f"ALTER FOREIGN TABLE bench_rated.customers OPTIONS (ADD backfill_ranges '{ranges}')")
        mock("POST", "/_admin/requests/reset", account)
        psql("SELECT sequin.resume('bench_rated')")
        time.sleep(8)
        log = mock("GET", "/_admin/requests/log", account)["requests"]
        times = [r["at_ms"] for r in log if r["method"] == "GET"]
        window = [t for t in times if times[0] + 1000 <= t < times[0] + 6000]
        rate = len(window) / 5
        # One collection pages strictly in sequence (each page names the
        # last id of the one before), so 50 ms per request caps it at 20/s,
        # unless its backfill is listed in ranges at once.
        split = f" in {ranges} ranges" if ranges > 1 else ""
        report("sync", f"backfill of {len(tables)} collection(s){split}, 50 ms latency, rate_limit 25: share of 25/s",
               f"{rate:.1f} req/s = {rate / 25:.0%}", "≥ 90 %", f"{len(window)} requests in 5 s")
    mock("DELETE", "/_admin/faults", account)
    drop("bench_rated")


def salesforce_ranges():
    """A Salesforce backfill against an API 250 ms away (a query page of
    2,000 records takes that long or longer on Salesforce): one SOQL query
    is one chain of pages; in 4 ranges of SystemModstamp, four at once."""
    account = "sk_test_bench_sf_ranges"
    count = 20_000 if QUICK else 40_000
    mock("POST", "/_admin/reset", account)
    mock("POST", f"/_admin/salesforce/Contact/seed?count={count}", account)
    grant = mock("POST", "/_admin/oauth/grants", account, {"client_id": "bench", "client_secret": "bench-secret"})
    mock("POST", "/_admin/faults", account, {"account": account, "kind": "latency", "latency_ms": 250, "fraction": 1})
    seconds = {}
    for ranges in (1, 4):
        psql(f"""DROP SCHEMA IF EXISTS bench_sf_ranges CASCADE; DROP SERVER IF EXISTS bench_sf_ranges CASCADE;
                 CREATE SERVER bench_sf_ranges FOREIGN DATA WRAPPER sequin_fdw
                   OPTIONS (provider 'salesforce', base_url '{MOCK}', token_url '{MOCK}/services/oauth2/token',
                            rate_limit '25', burst '1');
                 CREATE USER MAPPING FOR PUBLIC SERVER bench_sf_ranges
                   OPTIONS (client_id 'bench', client_secret 'bench-secret', refresh_token '{grant["refresh_token"]}');
                 CREATE SCHEMA bench_sf_ranges;
                 SELECT sequin.pause('bench_sf_ranges');""")
        psql("IMPORT FOREIGN SCHEMA salesforce LIMIT TO (contacts) FROM SERVER bench_sf_ranges INTO bench_sf_ranges")
        psql(f"ALTER FOREIGN TABLE bench_sf_ranges.contacts OPTIONS (ADD backfill_ranges '{ranges}')")
        psql("SELECT sequin.resume('bench_sf_ranges')")
        backfilled("bench_sf_ranges", "contacts", 600)
        seconds[ranges] = float(psql("SELECT extract(epoch FROM backfill_finished_at - backfill_started_at) FROM sequin.collections "
                                     "WHERE foreign_table = 'bench_sf_ranges.contacts'::regclass"))
    mock("DELETE", "/_admin/faults", account)
    drop("bench_sf_ranges")
    report("sync", "Salesforce backfill, 250 ms latency, rate_limit 25: 1 query / 4 ranges of SystemModstamp",
           f"{seconds[1]:.1f} / {seconds[4]:.1f} s = {seconds[1] / seconds[4]:.1f}× faster", "(report)",
           f"{count:,} contacts")


def freshness():
    account = "sk_test_bench_fresh"
    mock("POST", "/_admin/reset", account)
    mock("POST", "/_admin/stripe/customers/seed?count=100", account)
    server("bench_fresh", account, ", poll_interval '1s'")
    psql("IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER bench_fresh INTO bench_fresh")
    backfilled("bench_fresh", "customers", 60)
    ids = psql("SELECT id FROM bench_fresh.customers ORDER BY id LIMIT 20").split()
    delays = []
    listener = subprocess.Popen(["psql", "-XAtq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for k in range(FRESHNESS_CHANGES):
        time.sleep(0.137 * (k % 7))  # spread the changes over the poll cycle
        target = ids[k % len(ids)]
        started = time.monotonic()
        mock("POST", f"/_admin/stripe/customers/{target}", account, {"name": f"fresh {k}"})
        while psql(f"SELECT name FROM sequin_shadow.bench_fresh_customers WHERE id = '{target}'") != f"fresh {k}":
            time.sleep(0.005)
            if time.monotonic() - started > 10:
                break
        delays.append((time.monotonic() - started) * 1000)
    listener.kill()
    report("sync", "freshness at poll_interval 1s: change in the API → visible, p50 / p99",
           f"{percentile(delays, 50):.0f} / {percentile(delays, 99):.0f} ms", "p99 ≤ 1,300 ms",
           f"{len(delays)} changes")
    drop("bench_fresh")


# 4. Rate limit -------------------------------------------------------------

def rate_limit():
    account = "sk_test_bench_rate"
    mock("POST", "/_admin/reset", account)
    mock("POST", "/_admin/stripe/customers/seed?count=3000", account)
    server("bench_rate", account, ", poll_interval '1s', rate_limit '10', burst '2', timeout '10s'")
    psql("SELECT sequin.pause('bench_rate')")
    psql("IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER bench_rate INTO bench_rate")
    mock("POST", "/_admin/requests/reset", account)
    waits = []
    lock = threading.Lock()

    def writer(session):
        time.sleep(session * 0.125)
        statements = [f"INSERT INTO bench_rate.customers (email) VALUES ('rate{session}-{i}@example.com')"
                      for i in range(10)]
        script = "\n".join(f"SELECT clock_timestamp() AS t0 \\gset\n{s};\n"
                           "SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000;\n"
                           "SELECT pg_sleep(greatest(0, 0.5 - extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)));"
                           for s in statements)
        done = subprocess.run(["psql", "-XAtq"], input=script, capture_output=True, text=True)
        with lock:
            waits.extend(float(x) for x in done.stdout.split() if x.replace(".", "", 1).isdigit())

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
    psql("SELECT sequin.resume('bench_rate')")
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = mock("GET", "/_admin/requests/log", account)["requests"]
    times = sorted(r["at_ms"] for r in log)
    peak = max(sum(1 for u in times if t <= u < t + 1000) for t in times)
    report("rate", "busiest 1 s window, 4 writers + a backfill, rate_limit 10 burst 2",
           f"{peak} requests", "≤ 12 (limit + burst)", f"{len(times)} requests")
    report("rate", "write latency p99 under that load (token interval 100 ms)",
           f"{percentile(waits, 99):.0f} ms", "≤ 150 ms", f"{len(waits)} writes")
    drop("bench_rate")


# 5. Idle -------------------------------------------------------------------

def idle():
    names = [f"bench_idle_{i:02d}" for i in range(1, 21)]
    for i, name in enumerate(names, 1):
        account = f"sk_test_bench_idle_{i:02d}"
        mock("POST", "/_admin/reset", account)
        for kind in ("customers", "products", "prices"):
            mock("POST", f"/_admin/stripe/{kind}/seed?count=20", account)
        server(name, account)
        psql(f"IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, products, prices) FROM SERVER {name} INTO {name}")
    wait_until("SELECT count(*) = 60 FROM sequin.sync_status WHERE server LIKE 'bench_idle_%' "
               "AND phase = 'incremental'", 120)
    pid = psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'sequin sync' AND datname = current_database()")
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    seconds = 10 if QUICK else 30
    before, started = cpu(), time.monotonic()
    time.sleep(seconds)
    used = (cpu() - before) / (time.monotonic() - started)
    report("idle", "worker CPU, 20 servers × 3 collections, nothing changing (poll 5s)",
           f"{used:.2%} of one core", "< 1 %", f"{seconds} s")
    drop(*names)


# 8. The HTTP proxy ---------------------------------------------------------

PROXY_LOGIN = "sequin_proxy_login"


def start_proxy():
    """target/release/sequin-proxy on a free port, logged in as a role that
    may only call sequin.proxy_request(); (process, base URL)."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "sequin-proxy"], cwd=ROOT, check=True)
    psql(f"""DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PROXY_LOGIN}') THEN
               CREATE ROLE {PROXY_LOGIN} LOGIN; END IF; END $$;
             GRANT EXECUTE ON FUNCTION sequin.proxy_request(text, text, text, text, jsonb, bytea) TO {PROXY_LOGIN}""")
    port_file = f"/tmp/sequin-bench-proxy-{os.getpid()}.url"
    if os.path.exists(port_file):
        os.remove(port_file)
    process = subprocess.Popen([os.path.join(ROOT, "target", "release", "sequin-proxy"), "--listen", "127.0.0.1:0",
                                "--port-file", port_file, "--conninfo",
                                f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user={PROXY_LOGIN}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(port_file) and time.monotonic() < deadline:
        time.sleep(0.05)
    return process, open(port_file).read().strip()


def http_latencies(base, token, method, paths, bodies):
    """Per request ms over one kept-alive connection to `base` (the mock, or
    the proxy with its database and server in the path)."""
    url = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port)
    times = []
    for path, body in zip(paths, bodies):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-www-form-urlencoded"}
        if method == "POST":
            headers["Idempotency-Key"] = f"bench-{time.monotonic_ns()}"
        started = time.perf_counter()
        connection.request(method, url.path + path, body=body, headers=headers)
        reply = connection.getresponse()
        reply.read()
        times.append((time.perf_counter() - started) * 1000)
        if reply.status >= 300:
            raise RuntimeError(f"{method} {base}{path}: HTTP {reply.status}")
    return times


def http_throughput(base, token, paths, clients, seconds):
    """Requests per second of `clients` threads, each on its own kept-alive
    connection, for `seconds`."""
    done, errors = [0], [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k):
        url = urllib.parse.urlparse(base)
        connection = http.client.HTTPConnection(url.hostname, url.port)
        n = bad = 0
        while time.monotonic() < stop:
            connection.request("GET", url.path + paths[(k + n) % len(paths)], headers={"Authorization": f"Bearer {token}"})
            reply = connection.getresponse()
            reply.read()
            n += 1
            bad += reply.status != 200
        with lock:
            done[0] += n
            errors[0] += bad

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.monotonic() - started), errors[0]


def proxy():
    account, token = "sk_test_bench_proxy", "tok_bench_proxy"
    mock("POST", "/_admin/reset", account)
    mock("POST", "/_admin/stripe/customers/seed?count=100", account)
    server("bench_proxy", account, ", poll_interval '1h'")
    psql(f"""DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_proxy_app') THEN
               CREATE ROLE bench_proxy_app; END IF; END $$;
             DROP USER MAPPING FOR PUBLIC SERVER bench_proxy;
             CREATE USER MAPPING FOR CURRENT_USER SERVER bench_proxy OPTIONS (api_key '{account}');
             CREATE USER MAPPING FOR bench_proxy_app SERVER bench_proxy OPTIONS (api_key '{account}', proxy_token '{token}');
             GRANT USAGE ON FOREIGN SERVER bench_proxy TO bench_proxy_app;
             IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER bench_proxy INTO bench_proxy;
             GRANT USAGE ON SCHEMA bench_proxy TO bench_proxy_app;
             GRANT SELECT, INSERT, UPDATE, DELETE ON bench_proxy.customers TO bench_proxy_app;""")
    backfilled("bench_proxy", "customers", 60)
    process, url = start_proxy()
    base = f"{url}/{os.environ['PGDATABASE']}/bench_proxy"
    try:
        ids = psql("SELECT id FROM bench_proxy.customers ORDER BY id").split()
        gets = [f"/v1/customers/{ids[i % len(ids)]}" for i in range(WRITES)]
        direct = http_latencies(MOCK, account, "GET", gets, [None] * len(gets))
        proxied = http_latencies(base, token, "GET", gets, [None] * len(gets))
        report("proxy", "GET of a customer: proxy p50 / direct p50 → added p50, p99",
               f"{percentile(proxied, 50):.2f} / {percentile(direct, 50):.2f} → "
               f"{percentile(proxied, 50) - percentile(direct, 50):+.2f}, {percentile(proxied, 99) - percentile(direct, 99):+.2f} ms",
               "added p50 ≤ 1 ms", f"{len(proxied)} + {len(direct)}")
        posts = [f"/v1/customers/{ids[i % len(ids)]}" for i in range(WRITES)]
        bodies = [f"name=Proxy+{i}" for i in range(WRITES)]
        direct = http_latencies(MOCK, account, "POST", posts, bodies)
        proxied = http_latencies(base, token, "POST", posts, bodies)
        report("proxy", "update of a customer (applied before the reply): proxy p50 / direct p50 → added p50, p99",
               f"{percentile(proxied, 50):.2f} / {percentile(direct, 50):.2f} → "
               f"{percentile(proxied, 50) - percentile(direct, 50):+.2f}, {percentile(proxied, 99) - percentile(direct, 99):+.2f} ms",
               "added p50 ≤ 1 ms", f"{len(proxied)} + {len(direct)}")
        seconds = 3 if QUICK else 10
        direct_rate, _ = http_throughput(MOCK, account, gets, 16, seconds)
        proxied_rate, errors = http_throughput(base, token, gets, 16, seconds)
        report("proxy", "GETs per second at 16 concurrent clients: proxy / direct",
               f"{proxied_rate:,.0f} / {direct_rate:,.0f} = {proxied_rate / direct_rate:.0%}", "report",
               f"{seconds} s each, {errors} non-200")
    finally:
        process.terminate()
        process.wait(timeout=35)
    drop("bench_proxy")


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def main():
    started = time.monotonic()
    print(f"{'section':<11} {'what':<58} {'figure':<26} {'goal':<22} sample", flush=True)
    # The wide sObjects' first incremental poll re-reads their last 30 s of
    # changes (the Salesforce lookback), all 10,000 records of 800 fields:
    # a section right after them would measure that work too.
    for section in (reads, writes, salesforce_batch, backfill_rate, stripe_sync_engine, github_backfill, wide_objects, latency_bound_share,
                    salesforce_ranges,
                    freshness, rate_limit, proxy, idle):
        section()
    elapsed = time.monotonic() - started
    lines = [
        "# Benchmark results",
        "",
        f"`make bench{' -- --quick' if QUICK else ''}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC,"
        f" {machine()}; the whole run took {elapsed / 60:.1f} min. Local stack: Postgres 15 and sequin-mock"
        " on the same machine.",
        "",
        "| section | what | figure | goal | sample |",
        "|---|---|---|---|---|",
    ] + [f"| {s} | {w} | {f} | {g} | {n} |" for s, w, f, g, n in rows]
    with open(os.path.join(ROOT, "bench", "results.md"), "w") as out:
        out.write("\n".join(lines) + "\n")
    print(f"\nwritten to bench/results.md ({elapsed / 60:.1f} min)")


if __name__ == "__main__":
    main()
