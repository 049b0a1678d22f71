#!/usr/bin/env python3
"""Every database that has the extension is synced (`make test`).

On the local stack (whose database `app` has the extension):
  * two more databases with the extension each get their own sync worker
    and sync their own tables;
  * with `sequin.max_databases` reached, CREATE EXTENSION and IMPORT warn,
    and sync_status says why nothing syncs ('no worker'); when another
    database drops the extension, the waiting one is synced;
  * DROP DATABASE, CREATE DATABASE … TEMPLATE and ALTER DATABASE … RENAME
    of a database whose worker runs succeed, and the worker comes back;
  * DROP EXTENSION stops the worker and leaves nothing behind: no schema,
    no event trigger, no request budget in shared memory.
Needs PGHOST/PGPORT/PGUSER/PGDATABASE and MOCK_URL (target/stack.env).
"""
import os
import subprocess
import time

import stack
from stack import MOCK, PGBIN, check, wait_for

ACCOUNT = "sk_test_databases"
DATABASES = ["multi_a", "multi_b", "multi_c", "multi_copy", "multi_renamed"]


def run_psql(sql, database):
    env = dict(os.environ, PGDATABASE=database)
    return subprocess.run([f"{PGBIN}/psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, env=env)


def psql(sql, database="postgres"):
    done = run_psql(sql, database)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed in {database}: {done.stderr.strip()}\n{sql}")
    return done.stdout.strip()


def mock(method, path, body=None):
    return stack.mock(method, path, ACCOUNT, body)


def workers():
    """Database → sync worker pid, for the workers that run now."""
    rows = psql("SELECT datname || '=' || pid FROM pg_stat_activity WHERE backend_type = 'sequin sync' AND datname IS NOT NULL")
    return dict(r.split("=") for r in rows.splitlines() if r)


def set_max_databases(value):
    psql(f"ALTER SYSTEM SET sequin.max_databases = {value}" if value else "ALTER SYSTEM RESET sequin.max_databases")
    psql("SELECT pg_reload_conf()")
    time.sleep(0.3)


def with_synced_table(database, server):
    """CREATE EXTENSION, a server and an imported customers table; the
    warnings the statements gave."""
    psql(f"CREATE DATABASE {database}")
    done = run_psql(f"""
        CREATE EXTENSION sequin_fdw;
        CREATE SERVER {server} FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'stripe', base_url '{MOCK}', poll_interval '200ms');
        CREATE USER MAPPING FOR PUBLIC SERVER {server} OPTIONS (api_key '{ACCOUNT}');
        IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER {server} INTO public;
    """, database)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return done.stderr


def synced(database, name):
    return psql(f"SELECT count(*) FROM customers WHERE name = '{name}'", database) == "1"


def cleanup():
    set_max_databases(None)
    for database in DATABASES:
        psql(f"DROP DATABASE IF EXISTS {database}")


def main():
    cleanup()
    mock("POST", "/_admin/reset")
    mock("POST", "/_admin/stripe/customers/seed?count=5")
    customer = mock("GET", "/_admin/stripe/customers")["data"][0]["id"]

    # Two more databases, each synced by a worker of its own.
    with_synced_table("multi_a", "in_a")
    with_synced_table("multi_b", "in_b")
    running = wait_for(lambda: {"app", "multi_a", "multi_b"} <= set(workers()), 30)
    check("each database with the extension gets its own sync worker", running, workers())
    mock("POST", f"/_admin/stripe/customers/{customer}", {"name": "seen everywhere"})
    both = wait_for(lambda: synced("multi_a", "seen everywhere") and synced("multi_b", "seen everywhere"), 30)
    check("both databases sync their tables", both)

    # The bound: three databases are synced (app, multi_a, multi_b).
    set_max_databases(3)
    warnings = with_synced_table("multi_c", "in_c")
    check("CREATE EXTENSION beyond sequin.max_databases warns",
          "WARNING:  this database will not be synced: sequin_fdw syncs at most sequin.max_databases = 3" in warnings, warnings)
    check("IMPORT beyond the bound warns too", warnings.count("will not be synced") >= 2, warnings)
    time.sleep(2)
    phase, worker = psql("SELECT phase || '|' || worker FROM sequin.sync_status", "multi_c").split("|")
    check("sync_status says why nothing syncs", phase == "no worker" and "sequin.max_databases = 3" in worker, f"{phase}: {worker}")
    check("no worker runs in the database beyond the bound", "multi_c" not in workers(), workers())

    # A database that drops the extension makes room: its worker leaves,
    # and the waiting database is synced.
    server_b = psql("SELECT oid FROM pg_foreign_server WHERE srvname = 'in_b'", "multi_b")
    had_b = psql(f"SELECT count(*) FROM sequin.rate_limits() WHERE server_oid = {server_b}", "multi_b")
    psql("DROP EXTENSION sequin_fdw CASCADE", "multi_b")
    check("DROP EXTENSION stops the database's worker", wait_for(lambda: "multi_b" not in workers(), 10), workers())
    check("the waiting database gets a worker once there is room", wait_for(lambda: "multi_c" in workers(), 30), workers())
    check("… and syncs", wait_for(lambda: synced("multi_c", "seen everywhere"), 30))
    left = psql("SELECT string_agg(nspname, ',') FROM pg_namespace WHERE nspname LIKE 'sequin%'", "multi_b")
    check("DROP EXTENSION leaves no schema behind", left == "", left)
    triggers = psql("SELECT string_agg(evtname, ',') FROM pg_event_trigger", "multi_b")
    check("DROP EXTENSION leaves no event trigger behind", triggers == "", triggers)
    # Created again, the extension sees no budget of the server dropped
    # with it (shared memory is not per database).
    psql("CREATE EXTENSION sequin_fdw", "multi_b")
    left = psql(f"SELECT count(*) FROM sequin.rate_limits() WHERE server_oid = {server_b}", "multi_b")
    check("DROP EXTENSION frees its servers' request budgets", had_b == "1" and left == "0", f"before {had_b}, after {left}")
    psql("DROP EXTENSION sequin_fdw", "multi_b")

    # Statements that need a database without sessions.
    set_max_databases(None)
    started = time.monotonic()
    done = run_psql("DROP DATABASE multi_a", "postgres")
    check("DROP DATABASE of a synced database succeeds at once",
          done.returncode == 0 and time.monotonic() - started < 4, f"{done.stderr.strip()} in {time.monotonic() - started:.1f} s")
    before = workers().get("multi_c")
    done = run_psql("CREATE DATABASE multi_copy TEMPLATE multi_c", "postgres")
    check("CREATE DATABASE … TEMPLATE of a synced database succeeds", done.returncode == 0, done.stderr.strip())
    check("the template's worker comes back", wait_for(lambda: workers().get("multi_c") not in (None, before), 30), workers())
    check("the copy, which has the extension, gets a worker of its own", wait_for(lambda: "multi_copy" in workers(), 30), workers())
    done = run_psql("ALTER DATABASE multi_copy RENAME TO multi_renamed", "postgres")
    check("ALTER DATABASE … RENAME of a synced database succeeds", done.returncode == 0, done.stderr.strip())
    check("… and it is synced under its new name", wait_for(lambda: "multi_renamed" in workers(), 30), workers())

    # A dropped server's request budget leaves shared memory.
    psql("SELECT count(*) FROM customers", "multi_c")
    server = psql("SELECT oid FROM pg_foreign_server WHERE srvname = 'in_c'", "multi_c")
    had = psql(f"SELECT count(*) FROM sequin.rate_limits() WHERE server_oid = {server}", "multi_c")
    psql("DROP SERVER in_c CASCADE", "multi_c")
    gone = psql(f"SELECT count(*) FROM sequin.rate_limits() WHERE server_oid = {server}", "multi_c")
    check("DROP SERVER frees its request budget", had == "1" and gone == "0", f"before {had}, after {gone}")
    cleanup()


if __name__ == "__main__":
    try:
        stack.run(main, "databases")
    finally:
        cleanup()
