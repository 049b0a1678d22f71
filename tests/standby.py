#!/usr/bin/env python3
"""A hot standby of the local stack's cluster (`make test`).

pg_basebackup copies the running primary into target/stack/standby (or
target/stack18/standby for PostgreSQL 18), which
starts as a streaming replica with sequin_fdw preloaded. On it:
  * reads of synced tables work and follow the primary (the sync runs on
    the primary only: the worker starts once recovery has finished);
  * every write and control function fails with 25006 and says why;
  * sync_status and rate_limit_status can be read;
  * no backend dies and nothing panics (the standby's log).
Needs PGHOST/PGPORT/PGUSER/PGDATABASE and MOCK_URL (target/stack.env).
"""
import os
import shutil
import socket
import subprocess

import stack
from stack import MOCK, PGBIN, STACK_DIR, check, psql, wait_for

ACCOUNT = "sk_test_standby"
# The stack's directory and PostgreSQL programs (target/stack.env, or
# target/stack18.env for PostgreSQL 18).
STANDBY = os.path.join(STACK_DIR, "standby")
LOG = os.path.join(STACK_DIR, "standby.log")
BIN = PGBIN


def value(sql, port=None):
    return psql(sql, port=port)


def error_of(sql, port):
    """The SQLSTATE and message of a statement's error (VERBOSITY verbose)."""
    env = dict(os.environ, PGPORT=str(port))
    done = subprocess.run([f"{PGBIN}/psql", "-XAtq", "-v", "VERBOSITY=verbose", "-c", sql],
                          capture_output=True, text=True, env=env)
    if done.returncode == 0:
        return "no error"
    return done.stderr.strip().splitlines()[0].removeprefix("ERROR:").strip()


def mock(method, path, body=None):
    return stack.mock(method, path, ACCOUNT, body)


def as_postgres(*command):
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    return subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, env=env)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_standby():
    if os.path.exists(os.path.join(STANDBY, "postmaster.pid")):
        as_postgres(f"{BIN}/pg_ctl", "-D", STANDBY, "-m", "fast", "-w", "stop")
    shutil.rmtree(STANDBY, ignore_errors=True)


def main():
    mock("POST", "/_admin/reset")
    mock("POST", "/_admin/stripe/customers/seed?count=3")
    psql(f"""
        CREATE SERVER standby_test FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'stripe', base_url '{MOCK}', poll_interval '200ms');
        CREATE USER MAPPING FOR PUBLIC SERVER standby_test OPTIONS (api_key '{ACCOUNT}');
        CREATE SCHEMA standby_test;
        IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER standby_test INTO standby_test;""")
    check("the primary backfills", wait_for(
        lambda: value("SELECT phase = 'incremental' AND rows = 3 FROM sequin.sync_status WHERE server = 'standby_test'") == "t", 20))

    stop_standby()
    made = as_postgres(f"{BIN}/pg_basebackup", "-h", os.environ["PGHOST"], "-p", os.environ["PGPORT"],
                       "-U", "postgres", "-D", STANDBY, "-R", "-X", "stream", "-c", "fast")
    if made.returncode != 0:
        raise RuntimeError(f"pg_basebackup failed: {made.stderr}")
    port = free_port()
    with open(os.path.join(STANDBY, "postgresql.conf"), "a") as conf:
        conf.write(f"# the standby of tests/standby.py\nport = {port}\nunix_socket_directories = '{STANDBY}'\n")
    started = as_postgres(f"{BIN}/pg_ctl", "-D", STANDBY, "-l", LOG, "-w", "start")
    if started.returncode != 0:
        raise RuntimeError(f"the standby did not start: {started.stderr}\n{open(LOG).read()}")
    try:
        on_standby(port)
    finally:
        stop_standby()
        psql("DROP SCHEMA standby_test CASCADE; DROP SERVER standby_test CASCADE")


def on_standby(port):
    check("the standby is in recovery", value("SELECT pg_is_in_recovery()", port) == "t")
    check("reads on the standby", value("SELECT count(*) FROM standby_test.customers", port) == "3")
    check("no sync worker on the standby",
          value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sequin sync'", port) == "0")

    # A change upstream: the primary syncs it, and it streams to the standby.
    mock("POST", "/_admin/stripe/customers", {"email": "replicated@example.com"})
    check("a synced change reaches the standby", wait_for(
        lambda: value("SELECT count(*) FROM standby_test.customers WHERE email = 'replicated@example.com'", port) == "1", 20))

    requests_before = mock("GET", "/_admin/requests")["by_route"]
    for name, sql in [
        ("INSERT", "INSERT INTO standby_test.customers (email) VALUES ('x@example.com')"),
        ("UPDATE", "UPDATE standby_test.customers SET name = 'x'"),
        ("DELETE", "DELETE FROM standby_test.customers"),
        ("sync_now", "SELECT sequin.sync_now('standby_test.customers')"),
        ("resync", "SELECT sequin.resync('standby_test.customers')"),
        ("pause", "SELECT sequin.pause('standby_test')"),
        ("resume", "SELECT sequin.resume('standby_test')"),
    ]:
        error = error_of(sql, port)
        check(f"{name} on the standby is 25006", error.startswith("25006") and ("recovery" in error or "read-only" in error), error)
    writes = {route: n for route, n in mock("GET", "/_admin/requests")["by_route"].items()
              if not route.startswith("GET") and n != requests_before.get(route)}
    check("no write request left the standby", writes == {}, str(writes))

    status = value("SELECT phase, rows FROM sequin.sync_status WHERE server = 'standby_test'", port)
    check("sync_status on the standby", status == "incremental|4", status)
    check("rate_limit_status on the standby",
          error_of("SELECT * FROM sequin.rate_limit_status", port) == "no error")

    log = open(LOG).read()
    check("no crash or panic in the standby's log",
          "terminated by signal" not in log and "panicked at" not in log)


if __name__ == "__main__":
    # A failed step still stops the standby (main's finally).
    stack.run(main, "standby")
