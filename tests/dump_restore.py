#!/usr/bin/env python3
"""pg_dump and restore of a database with synced tables (`make test`).

A source database gets the extension, two Stripe servers (one paused), a
backfilled customers table, a subscriptions table, an index a user made on a
shadow table, and a record in quarantine. It is dumped with plain pg_dump,
no special flags, in custom format (restored with pg_restore) and in plain
format (restored with psql). Each restore must:
  * exit 0 with no ERROR;
  * read every row through the foreign tables, equal to the source;
  * bring back the sync state: phase, cursor, counts, the pause, the
    quarantine, the user's index; `updated_idx` never moves backwards;
  * leave no orphan shadow table;
  * go on syncing (an outside change arrives) and writing (an INSERT).
Needs PGHOST/PGPORT/PGUSER/PGDATABASE and MOCK_URL (target/stack.env).
"""
import os
import subprocess
import tempfile

import stack
from stack import MOCK, check, wait_for
from stack import PGBIN as BIN

ACCOUNT = "sk_test_dump"
SOURCE = "dump_source"


def psql(sql, database=SOURCE, check=True):
    env = dict(os.environ, PGDATABASE=database)
    done = subprocess.run([f"{BIN}/psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise RuntimeError(f"psql failed in {database}: {done.stderr.strip()}\n{sql}")
    return done.stdout.strip()


def mock(method, path, body=None):
    return stack.mock(method, path, ACCOUNT, body)


def drop_database(name):
    psql(f"DROP DATABASE IF EXISTS {name}", database="postgres")


def setup():
    drop_database(SOURCE)
    mock("POST", "/_admin/reset")
    mock("POST", "/_admin/stripe/customers/seed?count=300")
    psql(f"CREATE DATABASE {SOURCE}", database="postgres")
    psql(f"""
        CREATE EXTENSION sequin_fdw;
        CREATE SERVER dumped FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'stripe', base_url '{MOCK}', poll_interval '200ms');
        CREATE USER MAPPING FOR PUBLIC SERVER dumped OPTIONS (api_key '{ACCOUNT}');
        CREATE SCHEMA billing;
        IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, subscriptions) FROM SERVER dumped INTO billing;
        CREATE SERVER resting_first FOREIGN DATA WRAPPER sequin_fdw OPTIONS (provider 'stripe', base_url '{MOCK}');
        CREATE USER MAPPING FOR PUBLIC SERVER resting_first OPTIONS (api_key '{ACCOUNT}');
        SELECT sequin.pause('resting_first');
        -- Renamed while paused: the restore finds the pause by the new name.
        ALTER SERVER resting_first RENAME TO resting;
        CREATE SCHEMA idle;
        IMPORT FOREIGN SCHEMA stripe LIMIT TO (products) FROM SERVER resting INTO idle;
    """)
    synced = wait_for(lambda: psql("SELECT bool_and(phase = 'incremental') FROM sequin.sync_status WHERE server = 'dumped'") == "t", 60)
    check("the source is backfilled", synced)
    psql("CREATE INDEX customers_by_email ON sequin_shadow.billing_customers (email)")
    # A record kept aside (hostile_replies.sql makes real ones; here only
    # its dump and restore matter).
    psql("INSERT INTO sequin.quarantine (foreign_table, id_md5, id, reason, raw)"
         " VALUES ('billing.customers', md5('cus_bad'), 'cus_bad', 'an id Postgres cannot index', '{}')")


def state(database):
    """What must survive: per table its phase, cursor and counts; the rows."""
    return {
        "catalog": psql("SELECT string_agg(format('%s|%s|%s|%s|%s', foreign_table, coalesce(restored_phase, phase),"
                        " cursor, backfill_rows, changes_applied), E'\\n' ORDER BY foreign_table::text)"
                        " FROM sequin.collections", database),
        "customers": psql("SELECT md5(string_agg(id || coalesce(name, '') || deleted, ',' ORDER BY id))"
                          " FROM billing.customers", database),
        "shadow": psql("SELECT md5(string_agg(id || updated_idx || raw::text, ',' ORDER BY id))"
                       " FROM sequin_shadow.billing_customers", database),
        "quarantine": psql("SELECT string_agg(\"table\" || ':' || left(id, 10), ',') FROM sequin.quarantined_records", database),
        "paused": psql("SELECT string_agg(server, ',') FROM sequin.sync_status WHERE phase = 'paused'", database),
        "index": psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'customers_by_email'", database),
    }


def restore(kind, dump_file, target):
    drop_database(target)
    if kind == "custom":
        psql(f"CREATE DATABASE {target}", database="postgres")
        done = subprocess.run([f"{BIN}/pg_restore", "-d", target, dump_file], capture_output=True, text=True)
    else:
        psql(f"CREATE DATABASE {target}", database="postgres")
        done = subprocess.run([f"{BIN}/psql", "-Xq", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", dump_file, "-o", os.devnull],
                              capture_output=True, text=True)
    output = done.stdout + done.stderr
    check(f"{kind}: the restore exits 0 with no ERROR", done.returncode == 0 and "ERROR" not in output,
          f"exit {done.returncode}: {output.strip()[:2000]}")


def restored_database(kind, target, before, idx_at_dump):
    ready = wait_for(lambda: psql("SELECT count(*) = 0 FROM sequin.collections WHERE phase = 'restoring'", target) == "t", 30)
    check(f"{kind}: every table leaves phase restoring once the restore is done", ready,
          psql("SELECT string_agg(foreign_table || ' ' || phase, ', ') FROM sequin.collections", target))
    after = state(target)
    for key in before:
        same = after[key] == before[key]
        check(f"{kind}: {key} as in the source", same, "" if same else f"{after[key]!r} != {before[key]!r}")
    idx = int(psql("SELECT last_value FROM sequin.updated_idx_seq", target))
    check(f"{kind}: updated_idx does not move backwards", idx >= idx_at_dump, f"{idx} < {idx_at_dump}")
    orphans = psql("SELECT string_agg(c.oid::regclass::text, ', ') FROM pg_class c"
                   " WHERE c.relnamespace = 'sequin_shadow'::regnamespace AND c.relkind = 'r'"
                   "   AND NOT EXISTS (SELECT 1 FROM sequin.collections k WHERE to_regclass(k.shadow_table) = c.oid)", target)
    check(f"{kind}: no orphan shadow table", orphans == "", orphans)
    running = wait_for(lambda: psql("SELECT state FROM sequin.sync_worker()", target) == "running", 30)
    check(f"{kind}: the restored database has its own sync worker", running, psql("SELECT detail FROM sequin.sync_worker()", target))
    # The sync goes on from the restored cursor: an outside change arrives,
    # with an updated_idx past every restored one.
    psql("SELECT sequin.resume('dumped')", target)
    some = psql("SELECT id FROM billing.customers ORDER BY id LIMIT 1", target)
    mock("POST", f"/_admin/stripe/customers/{some}", {"name": f"renamed after the {kind} restore"})
    arrived = wait_for(lambda: psql(f"SELECT name FROM billing.customers WHERE id = '{some}'", target)
                       == f"renamed after the {kind} restore", 30)
    check(f"{kind}: an outside change arrives after the restore", arrived)
    fresh = psql(f"SELECT updated_idx FROM sequin_shadow.billing_customers WHERE id = '{some}'", target)
    check(f"{kind}: the change takes an updated_idx past the dump's", int(fresh or 0) > idx_at_dump, fresh)
    created = psql(f"INSERT INTO billing.customers (email, name) VALUES ('{kind}@example.com', 'written after restore') RETURNING id", target)
    check(f"{kind}: an INSERT works after the restore",
          created.startswith("cus_") and psql(f"SELECT name FROM billing.customers WHERE id = '{created}'", target) == "written after restore")
    check(f"{kind}: the other server stays paused",
          psql("SELECT count(*) FROM sequin.sync_status WHERE server = 'resting' AND phase = 'paused'", target) == "1")
    errors = psql("SELECT string_agg(\"table\" || ': ' || last_error, '; ') FROM sequin.sync_status WHERE last_error IS NOT NULL", target)
    check(f"{kind}: no sync error after the restore", errors == "", errors)


def restore_without_catalog(dump_file, target):
    """A restore that leaves the catalog's rows out (pg_restore -L without
    them): the tables come back, compare their restored rows with a new
    backfill, and say so."""
    drop_database(target)
    psql(f"CREATE DATABASE {target}", database="postgres")
    listing = subprocess.run([f"{BIN}/pg_restore", "-l", dump_file], capture_output=True, text=True, check=True).stdout
    kept = "\n".join(line for line in listing.splitlines() if "TABLE DATA sequin collections" not in line)
    list_file = dump_file + ".list"
    with open(list_file, "w") as f:
        f.write(kept + "\n")
    done = subprocess.run([f"{BIN}/pg_restore", "-d", target, "-L", list_file, dump_file], capture_output=True, text=True)
    check("without the catalog: the restore exits 0 with no ERROR", done.returncode == 0 and "ERROR" not in done.stderr,
          done.stderr.strip()[:2000])
    psql("SELECT sequin.resume('dumped')", target)
    synced = wait_for(lambda: psql("SELECT phase FROM sequin.sync_status WHERE \"table\" = 'billing.customers'::regclass", target)
                      == "incremental", 60)
    warning = psql("SELECT last_warning FROM sequin.sync_status WHERE \"table\" = 'billing.customers'::regclass", target)
    check("without the catalog: the table is backfilled again, and says why", synced and "without its sync state" in warning, warning)
    live = {c["id"] for c in mock("GET", "/_admin/stripe/customers")["data"]}
    rows = set(psql("SELECT id FROM billing.customers WHERE NOT deleted", target).splitlines())
    check("without the catalog: the rows equal the API's", rows == live, f"{len(rows)} rows, {len(live)} in the API")


def main():
    setup()
    # Paused, so that nothing changes the source under the dump.
    psql("SELECT sequin.pause('dumped')")
    before = state(SOURCE)
    idx_at_dump = int(psql("SELECT last_value FROM sequin.updated_idx_seq"))
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o755)
        for kind, flag in (("custom", "-Fc"), ("plain", "-Fp")):
            dump_file = os.path.join(scratch, f"dump.{kind}")
            done = subprocess.run([f"{BIN}/pg_dump", flag, "-d", SOURCE, "-f", dump_file], capture_output=True, text=True)
            check(f"{kind}: pg_dump exits 0", done.returncode == 0, done.stderr.strip())
            target = f"dump_restored_{kind}"
            restore(kind, dump_file, target)
            restored_database(kind, target, before, idx_at_dump)
            drop_database(target)
        restore_without_catalog(os.path.join(scratch, "dump.custom"), "dump_restored_bare")
        drop_database("dump_restored_bare")
    drop_database(SOURCE)


if __name__ == "__main__":
    stack.run(main, "dump_restore")
