"""Shared by the framework tests: the stack's settings, the mock's admin
interface, one Stripe server and imported schema per test, and the check
that the table and the API agree at the end."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from stack import MOCK, check, mock, psql, run, wait_for  # noqa: E402,F401 - shared by the tests

DSN = (f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} "
       f"user={os.environ['PGUSER']} dbname={os.environ['PGDATABASE']}")


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
    wait_for(lambda: psql(f"SELECT phase = 'incremental' FROM sequin.sync_status WHERE server = '{name}'") == "t", 10)
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


PROXY_BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "target", "release", "sequin-proxy")
PROXY_LOGIN = "sequin_proxy_login"


class Proxy:
    """sequin-proxy (proxy/) started for one test, logged in as
    PROXY_LOGIN, a role that may only call sequin.proxy_request(); stopped
    with SIGTERM at the end, which must end it cleanly."""

    def __init__(self, *flags):
        import subprocess
        import tempfile
        psql(f"""DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PROXY_LOGIN}') THEN
                     CREATE ROLE {PROXY_LOGIN} LOGIN;
                   END IF;
                 END $$;
                 GRANT EXECUTE ON FUNCTION sequin.proxy_request(text, text, text, text, jsonb, bytea) TO {PROXY_LOGIN}""")
        self.dir = tempfile.mkdtemp(prefix="sequin-proxy-")
        port_file = os.path.join(self.dir, "url")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        conninfo = f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user={PROXY_LOGIN}"
        self.process = subprocess.Popen([PROXY_BIN, "--listen", "127.0.0.1:0", "--port-file", port_file,
                                         "--conninfo", conninfo, *flags],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10):
            raise RuntimeError(f"sequin-proxy did not start: {self.output()}")
        self.url = open(port_file).read().strip()
        self.database = os.environ["PGDATABASE"]

    def base(self, server):
        """The base URL a client of `server` is given."""
        return f"{self.url}/{self.database}/{server}"

    def output(self):
        self.log.flush()
        with open(self.log.name) as log:
            return log.read()

    def stop(self):
        self.process.terminate()
        try:
            code = self.process.wait(timeout=35)
        except Exception:  # noqa: BLE001 - killed and reported below
            self.process.kill()
            code = "killed"
        check("sequin-proxy ends cleanly on SIGTERM", code == 0, code)
        return self.output()
