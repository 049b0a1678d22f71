"""What the tests that drive the local stack share (tests/*.py and
tests/apps): psql as the stack's superuser, the mock's admin interface for
one account, waiting for a condition, and the pass/fail tally. Needs
PGHOST/PGPORT/PGUSER/PGDATABASE and MOCK_URL (target/stack.env, or
target/stack18.env for PostgreSQL 18)."""
import json
import os
import subprocess
import sys
import time
import urllib.request

# Empty for tests that start a mock of their own (tests/upgrade.py).
MOCK = os.environ.get("MOCK_URL", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The stack under test (scripts/stack.sh writes these into the env file):
# its directory, its PostgreSQL's programs and pg_config.
STACK_DIR = os.environ.get("SEQUIN_STACK", os.path.join(ROOT, "target", "stack"))
PG_CONFIG = os.environ.get("SEQUIN_PG_CONFIG", "/usr/bin/pg_config")
PGBIN = os.environ.get("PGBIN") or subprocess.run([PG_CONFIG, "--bindir"], capture_output=True,
                                                  text=True, check=True).stdout.strip()
failures = []


def psql(sql, check=True, port=None):
    """Runs SQL with psql and returns its unaligned output."""
    env = dict(os.environ, PGPORT=str(port)) if port else None
    done = subprocess.run([f"{PGBIN}/psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}\n{sql}")
    return done.stdout.strip()


def mock(method, path, account, body=None):
    """Calls the mock's admin interface for `account`; its JSON reply."""
    sep = "&" if "?" in path else "?"
    request = urllib.request.Request(f"{MOCK}{path}{sep}account={account}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read() or b"null")


def stack_sh(*args):
    """Runs scripts/stack.sh (restart, say) on the stack under test."""
    subprocess.run(["bash", f"{ROOT}/scripts/stack.sh", *args], check=True,
                   env=dict(os.environ, PG_CONFIG=PG_CONFIG))


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + str(detail) if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


def wait_for(condition, timeout, every=0.05):
    """True once `condition()` is; errors while the server restarts count as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except (RuntimeError, OSError):
            pass
        time.sleep(every)
    return False


def run(main, name):
    """Runs a test's main, any exception a failure of its own, and exits 1 on failures."""
    try:
        main()
    except Exception as error:  # noqa: BLE001 - reported as a failed check
        check(f"the {name} test ran", False, repr(error))
    print(f"{name}: {'all passed' if not failures else 'FAILED: ' + ', '.join(failures)}", flush=True)
    sys.exit(1 if failures else 0)
