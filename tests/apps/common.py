"""Shared by the framework tests: the stack's settings, the mock's admin
interface, one Stripe server and imported schema per test, and the check
that the table and the API agree at the end."""
import json
import os
import subprocess
import sys
import urllib.request

MOCK = os.environ["MOCK_URL"]
DSN = (f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} "
       f"user={os.environ['PGUSER']} dbname={os.environ['PGDATABASE']}")
failures = []


def psql(sql):
    """Runs setup SQL as the stack's superuser."""
    done = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}\n{sql}")
    return done.stdout.strip()


def mock(method, path, account, body=None):
    sep = "&" if "?" in path else "?"
    request = urllib.request.Request(f"{MOCK}{path}{sep}account={account}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read() or b"null")


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + str(detail) if detail and not ok else ''}", flush=True)
    if not ok:
        failures.append(name)


def stripe_schema(name, account, seed=0):
    """A Stripe server `name` (API key `account`) with its customers
    imported into schema `name`, synced, and the sync paused: every change
    from here on comes from the test."""
    psql(f"DROP SCHEMA IF EXISTS {name} CASCADE; DROP SERVER IF EXISTS {name} CASCADE")
    mock("POST", "/_admin/reset", account)
    if seed:
        mock("POST", f"/_admin/stripe/customers/seed?count={seed}", account)
    psql(f"""CREATE SERVER {name} FOREIGN DATA WRAPPER sequin_fdw
               OPTIONS (provider 'stripe', base_url '{MOCK}', poll_interval '1h');
             CREATE USER MAPPING FOR PUBLIC SERVER {name} OPTIONS (api_key '{account}');
             CREATE SCHEMA {name};
             IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER {name} INTO {name};""")
    for _ in range(200):
        if psql(f"SELECT phase = 'incremental' FROM sequin.sync_status WHERE server = '{name}'") == "t":
            break
        import time
        time.sleep(0.05)
    psql(f"SELECT sequin.pause('{name}')")


def table_matches_api(name, account):
    """The live rows of `name`.customers are exactly the API's customers,
    with the same emails and names: nothing missing, nothing orphaned."""
    upstream = {c["id"]: (c.get("email"), c.get("name"))
                for c in mock("GET", "/_admin/stripe/customers", account)["data"] if not c.get("deleted")}
    rows = psql(f"SELECT coalesce(json_object_agg(id, json_build_array(email, name)), '{{}}') "
                f"FROM {name}.customers WHERE NOT deleted")
    local = {k: tuple(v) for k, v in json.loads(rows).items()}
    check(f"{name}: the table and the API hold the same {len(upstream)} customers", local == upstream,
          f"only local: {set(local) - set(upstream)}, only upstream: {set(upstream) - set(local)}, "
          f"differ: {[k for k in local if k in upstream and local[k] != upstream[k]]}")


def drop(name):
    psql(f"DROP SCHEMA IF EXISTS {name} CASCADE; DROP SERVER IF EXISTS {name} CASCADE")


def finish(test):
    print(f"{test}: {'all passed' if not failures else 'FAILED: ' + ', '.join(failures)}", flush=True)
    sys.exit(1 if failures else 0)
