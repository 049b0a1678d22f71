#!/usr/bin/env python3
"""ALTER EXTENSION sequin_fdw UPDATE from the released 0.1.0, end to end
(`make test`, or alone: `python3 tests/upgrade.py`).

  1. Builds 0.1.0 from its commit (git archive into target/upgrade/, built
     with the main target/ directory, so only the crate itself compiles
     when the current tree was built before) and checks that it generates
     the kept sql/sequin_fdw--0.1.0.sql byte for byte; packages the current
     tree (scripts/package.sh --tree-only).
  2. Installs 0.1.0 into a relocated copy of PostgreSQL (scripts/pg_prefix.sh,
     never the system's directories), starts a cluster of its own and the
     mock, and makes state worth keeping: synced tables imported by another
     superuser, a reader granted one of them, a backfill, a row written
     through a foreign table, a paused server with a change waiting.
  3. Stops the cluster, installs the current version's files, starts it:
     until the update the worker waits (and says so); then ALTER EXTENSION
     sequin_fdw UPDATE, and checks: the version, the rows, the sync going on
     (changes made while it waited and after), writes, sync_status, the
     paused server, the reader's rights.
  4. Compares, generically, the updated database with one where the current
     version was created fresh: every object of the extension described
     from the catalogs (definitions, columns in order, constraints, indexes,
     triggers, owners, privileges, initial privileges, comments), the shadow
     tables 0.1.0 made against those the current version makes for the same
     foreign tables, and, once the user objects are dropped, the pg_dump
     --binary-upgrade --schema-only outputs (which spell out extension
     members). Each prints a unified diff when it fails.
Stops everything it started, also on failure.
"""
import difflib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stack import check, failures, wait_for

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "upgrade"
OLD_COMMIT = "133be8e"
OLD = "0.1.0"
NEW = re.search(r'^version = "(.*)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
PG_CONFIG = os.environ.get("PG_CONFIG", "/usr/bin/pg_config")
# The 0.1.0 build has a target directory of its own: a cdylib's output has
# no hash in its name, so two versions built in one directory overwrite each
# other's library while cargo takes the older one for fresh. The first time,
# it is seeded with a copy of the main target/release (the dependencies are
# the same, so only the crate itself compiles); later runs reuse it. An
# existing empty directory in UPGRADE_OLD_TARGET_DIR builds from scratch.
OLD_TARGET_DIR = Path(os.environ.get("UPGRADE_OLD_TARGET_DIR", WORK / f"target-{OLD}"))
DATABASE = "app"
FRESH = "fresh"
ADMIN, READER = "upgrade_admin", "upgrade_reader"
LIVE_KEY, HELD_KEY = "sk_test_upgrade_live", "sk_test_upgrade_held"
# A Salesforce org: 0.1.0 imported contacts with columns that name no
# field; 0.2.0 binds them to describe's fields.
SF_KEY = "sk_test_upgrade_salesforce"

timings = []
started = {}


def timed(label, fn, *args):
    t0 = time.monotonic()
    result = fn(*args)
    elapsed = time.monotonic() - t0
    timings.append((label, elapsed))
    print(f"     {label}: {elapsed:.1f} s", flush=True)
    return result


def run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def as_postgres(*cmd):
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    return run(["runuser", "-u", "postgres", "--", *map(str, cmd)], env=env)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- building ---------------------------------------------------------------

def build_old():
    """0.1.0's package tree, built from its commit (reused when up to date:
    cargo decides)."""
    try:
        commit = run(["git", "-C", ROOT, "rev-parse", "--verify", f"{OLD_COMMIT}^{{commit}}"]).strip()
    except RuntimeError as error:
        raise RuntimeError(f"commit {OLD_COMMIT} (release {OLD}) is not in this clone; a shallow clone "
                           f"needs `git fetch --unshallow`") from error
    src = WORK / f"src-{OLD}"
    marker = src / ".sequin-commit"
    if not marker.exists() or marker.read_text() != commit:
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        archive = subprocess.Popen(["git", "-C", ROOT, "archive", commit], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise RuntimeError(f"git archive {commit} failed")
        marker.write_text(commit)
    seed_old_target_dir()
    tree = WORK / f"pkg-{OLD}"
    shutil.rmtree(tree, ignore_errors=True)
    log = WORK / f"build-{OLD}.log"
    with open(log, "w") as out:
        done = subprocess.run(["cargo", "pgrx", "package", "--pg-config", PG_CONFIG, "--out-dir", tree], cwd=src,
                              stdout=out, stderr=subprocess.STDOUT,
                              env=dict(os.environ, CARGO_TARGET_DIR=str(OLD_TARGET_DIR)))
    if done.returncode != 0:
        print(log.read_text()[-5000:])
        raise RuntimeError(f"building {OLD} failed (see {log})")
    return tree


def seed_old_target_dir():
    """A copy of the main release build without this workspace's own
    crates, when the 0.1.0 target directory does not exist yet."""
    main = ROOT / "target" / "release"
    if OLD_TARGET_DIR.exists() or not (main / "deps").is_dir():
        return
    partial = OLD_TARGET_DIR.with_name(OLD_TARGET_DIR.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    run(["cp", "-a", main, partial / "release"])
    own = re.compile(r"^(lib)?sequin[_-](fdw|mock)([-.].*)?$")
    for sub in ("", "deps", ".fingerprint", "build"):
        directory = partial / "release" / sub
        for path in directory.iterdir() if directory.is_dir() else []:
            if own.match(path.name):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    partial.rename(OLD_TARGET_DIR)


def build_new():
    out = run(["bash", ROOT / "scripts" / "package.sh", "--tree-only"])
    return Path(out.strip().splitlines()[-1])


def ext_file(tree, name):
    return tree / run([PG_CONFIG, "--sharedir"]).strip().lstrip("/") / "extension" / name


# --- the relocated PostgreSQL and its cluster -------------------------------

class Cluster:
    def __init__(self):
        self.prefix = WORK / "pg"
        pg_config = run(["bash", ROOT / "scripts" / "pg_prefix.sh", self.prefix, PG_CONFIG]).strip().splitlines()[-1]
        self.bindir = Path(run([pg_config, "--bindir"]).strip())
        self.dirs = [Path(run([pg_config, "--pkglibdir"]).strip()),
                     Path(run([pg_config, "--sharedir"]).strip()) / "extension"]
        self.data = WORK / "data"
        self.log = WORK / "postgres.log"
        self.port = free_port()

    def install(self, tree):
        """The package tree's files, as new files (never written in place)."""
        for directory in self.dirs:
            for old in directory.glob("sequin_fdw*"):
                old.unlink()
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                dest = self.prefix / path.relative_to(tree)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                dest.chmod(0o644)

    def init(self):
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        shutil.chown(self.data, "postgres", "postgres")
        self.log.unlink(missing_ok=True)
        self.log.touch()
        shutil.chown(self.log, "postgres", "postgres")
        as_postgres(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--locale=C.UTF-8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"""
# tests/upgrade.py
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.data}'
shared_preload_libraries = 'sequin_fdw'
sequin.database = '{DATABASE}'
fsync = off
""")

    def start(self):
        as_postgres(self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "start")
        started["postgres"] = self

    def stop(self, mode="fast"):
        as_postgres(self.bindir / "pg_ctl", "-D", self.data, "-w", "stop", "-m", mode)
        started.pop("postgres", None)

    def psql(self, sql, db=DATABASE, user="postgres", check=True):
        done = subprocess.run([self.bindir / "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                               "-p", str(self.port), "-U", user, "-d", db, "-c", sql],
                              capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}\n{sql[:500]}")
        return done.stdout.strip() if check else done

    def log_text(self):
        return self.log.read_text(errors="replace")


class Mock:
    def __init__(self):
        run(["cargo", "build", "--release", "-q", "-p", "sequin-mock"], cwd=ROOT)
        url_file = WORK / "mock.url"
        url_file.unlink(missing_ok=True)
        self.out = open(WORK / "mock.log", "w")
        self.process = subprocess.Popen([ROOT / "target" / "release" / "sequin-mock", "--listen", "127.0.0.1:0",
                                         "--port-file", url_file], stdout=self.out, stderr=subprocess.STDOUT)
        started["mock"] = self
        if not wait_for(lambda: url_file.exists() and url_file.read_text(), 10, 0.05):
            raise RuntimeError("sequin-mock did not start")
        self.url = url_file.read_text().strip()

    def __call__(self, method, path, account, body=None):
        sep = "&" if "?" in path else "?"
        request = urllib.request.Request(f"{self.url}{path}{sep}account={account}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read() or b"null")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        started.pop("mock", None)


# --- describing what the extension made, generically -------------------------

def describe_sql(objects, with_extension):
    """One line per fact about each object (classid, objid) that `objects`
    selects: independent of OIDs, physical column numbers and the order
    objects were made in."""
    extension_facts = """
    SELECT 'extension', 'properties', pg_catalog.concat_ws(' | ', e.extversion, e.extrelocatable, n.nspname,
           pg_catalog.pg_get_userbyid(e.extowner),
           (SELECT pg_catalog.string_agg(x::pg_catalog.regclass::text, ', ' ORDER BY x::pg_catalog.regclass::text)
              FROM pg_catalog.unnest(e.extconfig) x),
           pg_catalog.array_to_string(e.extcondition, ', '))
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'sequin_fdw'
    UNION ALL
    SELECT m.kind || ' ' || m.name, 'member', '' FROM objects m
    UNION ALL
    -- Initial privileges recorded for something that is no member (a GRANT
    -- in an update script on a user's table): pg_dump would skip them.
    SELECT 'not a member: ' || (pg_catalog.pg_identify_object(i.classoid, i.objoid, i.objsubid)).identity,
           'initial privileges', i.privtype::text || ' ' || i.initprivs::text
      FROM pg_catalog.pg_init_privs i
     WHERE i.privtype = 'e'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = i.classoid AND d.objid = i.objoid AND d.deptype = 'e')
    UNION ALL""" if with_extension else ""
    return f"""
WITH objects AS (
    SELECT o.classid, o.objid, (pg_catalog.pg_identify_object(o.classid, o.objid, 0)).type AS kind,
           (pg_catalog.pg_identify_object(o.classid, o.objid, 0)).identity AS name
      FROM ({objects}) o
), rels AS (
    SELECT m.kind, m.name, c.* FROM objects m JOIN pg_catalog.pg_class c ON c.oid = m.objid
     WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
), cols AS (
    SELECT r.kind, r.name, a.*, pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS position
      FROM rels r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid
     WHERE a.attnum > 0 AND NOT a.attisdropped
), facts(object, fact, value) AS ({extension_facts}
    SELECT m.kind || ' ' || m.name, 'comment',
           pg_catalog.obj_description(m.objid, pg_catalog.textin(pg_catalog.regclassout(m.classid)))
      FROM objects m
     WHERE pg_catalog.obj_description(m.objid, pg_catalog.textin(pg_catalog.regclassout(m.classid))) IS NOT NULL
    UNION ALL
    SELECT r.kind || ' ' || r.name, 'relation', pg_catalog.concat_ws(' | ', r.relkind, r.relpersistence,
           pg_catalog.pg_get_userbyid(r.relowner), r.relacl::text, r.reloptions::text, r.relrowsecurity,
           r.relforcerowsecurity, r.relreplident)
      FROM rels r
    UNION ALL
    SELECT c.kind || ' ' || c.name, 'column ' || pg_catalog.lpad(c.position::text, 3, '0'),
           pg_catalog.concat_ws(' | ', c.attname, pg_catalog.format_type(c.atttypid, c.atttypmod),
               CASE WHEN c.attnotnull THEN 'not null' END,
               (SELECT 'default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
                 WHERE d.adrelid = c.attrelid AND d.adnum = c.attnum),
               CASE WHEN c.attcollation <> 0 THEN 'collate ' || c.attcollation::pg_catalog.regcollation::text END,
               NULLIF(c.attidentity::text, ''), NULLIF(c.attgenerated::text, ''), c.attacl::text,
               -- (Builds of PostgreSQL that record an attribute version
               -- there: not part of the definition.)
               NULLIF(pg_catalog.array_to_string(ARRAY(SELECT o FROM pg_catalog.unnest(c.attoptions) o
                                                        WHERE o NOT LIKE 'pg\\_attver=%'), ','), ''),
               c.attstorage, 'comment ' || pg_catalog.col_description(c.attrelid, c.attnum))
      FROM cols c
    UNION ALL
    SELECT r.kind || ' ' || r.name, 'constraint ' || k.conname, pg_catalog.pg_get_constraintdef(k.oid)
      FROM rels r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid
    UNION ALL
    SELECT r.kind || ' ' || r.name, 'index', pg_catalog.pg_get_indexdef(i.indexrelid)
      FROM rels r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT r.kind || ' ' || r.name, 'trigger ' || t.tgname,
           pg_catalog.pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
      FROM rels r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.oid
    UNION ALL
    SELECT r.kind || ' ' || r.name, 'rule ' || w.rulename, pg_catalog.pg_get_ruledef(w.oid)
      FROM rels r JOIN pg_catalog.pg_rewrite w ON w.ev_class = r.oid
    UNION ALL
    SELECT r.kind || ' ' || r.name, 'policy ' || p.polname,
           pg_catalog.concat_ws(' | ', p.polcmd, p.polpermissive, p.polroles::text,
               pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
      FROM rels r JOIN pg_catalog.pg_policy p ON p.polrelid = r.oid
    UNION ALL
    SELECT r.kind || ' ' || r.name, 'sequence',
           pg_catalog.concat_ws(' | ', s.seqtypid::pg_catalog.regtype::text, s.seqstart, s.seqincrement, s.seqmax,
               s.seqmin, s.seqcache, s.seqcycle)
      FROM rels r JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid
    UNION ALL
    SELECT m.kind || ' ' || m.name, 'function',
           pg_catalog.concat_ws(' | ', pg_catalog.pg_get_userbyid(p.proowner), p.proacl::text,
               CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_catalog.pg_get_functiondef(p.oid)
                    ELSE p.prokind::text || ' ' || pg_catalog.pg_get_function_arguments(p.oid) END)
      FROM objects m JOIN pg_catalog.pg_proc p ON p.oid = m.objid
     WHERE m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    UNION ALL
    SELECT m.kind || ' ' || m.name, 'event trigger',
           pg_catalog.concat_ws(' | ', t.evtevent, t.evtfoid::pg_catalog.regprocedure::text, t.evtenabled,
               t.evttags::text, pg_catalog.pg_get_userbyid(t.evtowner))
      FROM objects m JOIN pg_catalog.pg_event_trigger t ON t.oid = m.objid
     WHERE m.classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass
    UNION ALL
    SELECT m.kind || ' ' || m.name, 'schema',
           pg_catalog.concat_ws(' | ', pg_catalog.pg_get_userbyid(n.nspowner), n.nspacl::text)
      FROM objects m JOIN pg_catalog.pg_namespace n ON n.oid = m.objid
     WHERE m.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
    UNION ALL
    SELECT m.kind || ' ' || m.name, 'foreign-data wrapper',
           pg_catalog.concat_ws(' | ', w.fdwhandler::pg_catalog.regprocedure::text,
               w.fdwvalidator::pg_catalog.regprocedure::text, w.fdwoptions::text, w.fdwacl::text,
               pg_catalog.pg_get_userbyid(w.fdwowner))
      FROM objects m JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = m.objid
     WHERE m.classid = 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass
    UNION ALL
    SELECT m.kind || ' ' || m.name, 'type',
           pg_catalog.concat_ws(' | ', t.typtype, pg_catalog.pg_get_userbyid(t.typowner), t.typacl::text,
               (SELECT pg_catalog.string_agg(l.enumlabel, ', ' ORDER BY l.enumsortorder)
                  FROM pg_catalog.pg_enum l WHERE l.enumtypid = t.oid))
      FROM objects m JOIN pg_catalog.pg_type t ON t.oid = m.objid
     WHERE m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
    UNION ALL
    -- Anything of another kind (operators, casts, ...): at least its
    -- description, and its comment above.
    SELECT m.kind || ' ' || m.name, 'object', pg_catalog.pg_describe_object(m.classid, m.objid, 0)
      FROM objects m
     WHERE m.classid NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass,
                             'pg_catalog.pg_event_trigger'::pg_catalog.regclass,
                             'pg_catalog.pg_namespace'::pg_catalog.regclass,
                             'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass,
                             'pg_catalog.pg_type'::pg_catalog.regclass)
    UNION ALL
    SELECT m.kind || ' ' || m.name,
           'initial privileges' || CASE WHEN i.objsubid <> 0 THEN ' of column ' || i.objsubid ELSE '' END,
           i.privtype::text || ' ' || i.initprivs::text
      FROM objects m JOIN pg_catalog.pg_init_privs i ON i.classoid = m.classid AND i.objoid = m.objid
)
SELECT object || ' :: ' || fact || coalesce(' :: ' || NULLIF(value, ''), '')
  FROM facts ORDER BY object, fact, value"""


EXTENSION_MEMBERS = """
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
       AND e.extname = 'sequin_fdw'"""

SHADOW_TABLES = """
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, c.oid AS objid FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'sequin_shadow'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p')"""


def compare(name, left_label, left, right_label, right):
    """Checks two texts are equal; prints a unified diff when not."""
    if left == right:
        return check(name, True, f"{len(left.splitlines())} lines alike")
    diff = "".join(difflib.unified_diff(left.splitlines(True), right.splitlines(True), left_label, right_label, n=2))
    check(name, False, f"they differ:\n{diff}")
    return False


def normalized_dump(cluster, db):
    """pg_dump --binary-upgrade --schema-only (it spells out extension
    members, their initial privileges and physical details), without what
    differs between two databases of equal definitions: OIDs, relfilenodes,
    transaction ids, values kept for rows written before a column was
    added, dropped columns' placeholders, sequence positions, the dump's
    random restrict key."""
    text = run([cluster.bindir / "pg_dump", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
                "--schema-only", "--binary-upgrade", db])
    keep = []
    for line in text.splitlines():
        if (line.startswith(("\\restrict", "\\unrestrict", "-- set missing value."))
                or "binary_upgrade_set_next_" in line or "binary_upgrade_set_missing_value" in line
                or "pg_catalog.setval(" in line or "pg.dropped." in line):
            continue
        line = re.sub(r"relfrozenxid = '\d+', relminmxid = '\d+'", "relfrozenxid = …, relminmxid = …", line)
        line = re.sub(r"^WHERE oid = '\d+';", "WHERE oid = …;", line)
        # The configuration tables by name, in their order (their oids differ).
        if "binary_upgrade_create_empty_extension(" in line:
            line = re.sub(r"'\{[0-9,]*\}'", "'{" + cluster.psql(
                "SELECT string_agg(c::regclass::text, ',' ORDER BY n) FROM pg_catalog.pg_extension e,"
                " unnest(e.extconfig) WITH ORDINALITY AS x(c, n) WHERE e.extname = 'sequin_fdw'", db=db) + "}'", line, count=1)
        keep.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(keep)) + "\n"


# --- the test ----------------------------------------------------------------

def main():
    WORK.mkdir(parents=True, exist_ok=True)
    os.chmod(WORK, 0o755)
    # The current tree first: the 0.1.0 build starts from a copy of its
    # dependencies.
    new_tree = timed(f"build {NEW} (scripts/package.sh --tree-only)", build_new)
    check(f"the {NEW} package has the update script",
          ext_file(new_tree, f"sequin_fdw--{OLD}--{NEW}.sql").exists())
    old_tree = timed(f"build {OLD} from {OLD_COMMIT} (cargo pgrx package, target dir {OLD_TARGET_DIR})", build_old)
    kept = ROOT / "sql" / f"sequin_fdw--{OLD}.sql"
    generated = ext_file(old_tree, f"sequin_fdw--{OLD}.sql")
    check(f"{OLD_COMMIT} generates the kept sql/sequin_fdw--{OLD}.sql byte for byte",
          generated.read_bytes() == kept.read_bytes())

    cluster = Cluster()
    cluster.install(old_tree)
    cluster.init()
    mock = Mock()
    cluster.start()
    timed(f"state at {OLD}", make_state, cluster, mock)
    cluster.stop()
    cluster.install(new_tree)
    cluster.start()
    timed(f"update to {NEW} and checks", update_and_check, cluster, mock)
    timed("comparison with a fresh install", compare_with_fresh, cluster, mock)
    log = cluster.log_text()
    crashed = [line for line in log.splitlines() if "terminated by signal" in line or "panicked at" in line]
    check("the server log shows no crash or panic", not crashed, "\n".join(crashed[:5]))


def sync_status(cluster, server):
    return cluster.psql(f"SELECT string_agg(\"table\" || ' ' || phase || ' ' || coalesce(rows, -1), ', ' ORDER BY 1) "
                        f"FROM sequin.sync_status WHERE server = '{server}'")


def salesforce_sql(mock):
    return f"""
        CREATE SERVER sf FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'salesforce', base_url '{mock.url}', token_url '{mock.url}/services/oauth2/token',
                   poll_interval '300ms');
        CREATE USER MAPPING FOR PUBLIC SERVER sf
          OPTIONS (client_id 'upgrade-cid', client_secret 'upgrade-secret', refresh_token '{state["sf_token"]}');
    """


def make_state(cluster, mock):
    for key in (LIVE_KEY, HELD_KEY, SF_KEY):
        mock("POST", "/_admin/reset", key)
    mock("POST", "/_admin/salesforce/Contact/seed?count=5", SF_KEY)
    state["sf_token"] = mock("POST", "/_admin/oauth/grants", SF_KEY,
                             {"client_id": "upgrade-cid", "client_secret": "upgrade-secret"})["refresh_token"]
    mock("POST", "/_admin/stripe/customers/seed?count=40", LIVE_KEY)
    mock("POST", "/_admin/stripe/products/seed?count=5", LIVE_KEY)
    mock("POST", "/_admin/stripe/customers/seed?count=10", HELD_KEY)
    cluster.psql(f"CREATE DATABASE {DATABASE}", db="postgres")
    cluster.psql(f"CREATE ROLE {ADMIN} SUPERUSER LOGIN; CREATE ROLE {READER} LOGIN", db="postgres")
    cluster.psql("CREATE EXTENSION sequin_fdw")
    check(f"the extension is created at {OLD}",
          cluster.psql("SELECT extversion FROM pg_extension WHERE extname = 'sequin_fdw'") == OLD)
    # Synced tables made by another superuser than the extension's owner
    # (0.1.0 gave shadow tables to the role that made the foreign table).
    cluster.psql(f"""
        CREATE SERVER live FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'stripe', base_url '{mock.url}', poll_interval '300ms');
        CREATE USER MAPPING FOR PUBLIC SERVER live OPTIONS (api_key '{LIVE_KEY}');
        CREATE SCHEMA stripe;
        IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers, products) FROM SERVER live INTO stripe;
        GRANT USAGE ON SCHEMA stripe TO {READER};
        GRANT SELECT ON stripe.customers TO {READER};
        CREATE SERVER held FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'stripe', base_url '{mock.url}', poll_interval '300ms');
        CREATE USER MAPPING FOR PUBLIC SERVER held OPTIONS (api_key '{HELD_KEY}');
        CREATE SCHEMA held;
        IMPORT FOREIGN SCHEMA stripe LIMIT TO (customers) FROM SERVER held INTO held;
    """ + salesforce_sql(mock) + """
        CREATE SCHEMA sf;
        IMPORT FOREIGN SCHEMA salesforce LIMIT TO (contacts) FROM SERVER sf INTO sf;
    """, user=ADMIN)
    backfilled = wait_for(lambda: sync_status(cluster, "live") == "stripe.customers incremental 40, "
                          "stripe.products incremental 5" and sync_status(cluster, "held") == "held.customers incremental 10"
                          and sync_status(cluster, "sf") == "sf.contacts incremental 5", 60)
    check(f"backfill at {OLD}", backfilled, f"live: {sync_status(cluster, 'live')}; held: {sync_status(cluster, 'held')}")
    written = cluster.psql("INSERT INTO stripe.customers (email, name) VALUES ('before@example.com', 'Written at 0.1.0') "
                           "RETURNING id")
    check(f"a write through a foreign table at {OLD}", mock("GET", f"/_admin/stripe/customers/{written}", LIVE_KEY)
          .get("name") == "Written at 0.1.0", written)
    cluster.psql("SELECT sequin.pause('held')")
    target = sorted(c["id"] for c in mock("GET", "/_admin/stripe/customers", HELD_KEY)["data"])[0]
    mock("POST", f"/_admin/stripe/customers/{target}", HELD_KEY, {"name": "changed while paused"})
    time.sleep(1)
    check(f"a paused server does not sync at {OLD}",
          cluster.psql(f"SELECT name FROM held.customers WHERE id = '{target}'") != "changed while paused")
    state.update(written=written, held_target=target,
                 rows=cluster.psql("SELECT string_agg(id || '=' || coalesce(name, ''), ',' ORDER BY id) FROM stripe.customers"),
                 max_idx=int(cluster.psql("SELECT max(updated_idx) FROM stripe.customers")))


state = {}


def update_and_check(cluster, mock):
    # Until ALTER EXTENSION ... UPDATE the new library works with the old
    # catalog: the worker waits, and says so.
    waiting = wait_for(lambda: "the sync waits for ALTER EXTENSION sequin_fdw UPDATE" in cluster.log_text(), 20)
    check(f"the {NEW} worker waits for the update of a {OLD} database", waiting)
    first = sorted(state["rows"].split(","))[0].split("=")[0]
    mock("POST", f"/_admin/stripe/customers/{first}", LIVE_KEY, {"name": "changed while waiting"})
    readable = cluster.psql("SELECT count(*) FROM stripe.customers", check=False)
    check(f"reads of synced tables work before the update", readable.returncode == 0,
          (readable.stdout + readable.stderr).strip())

    t0 = time.monotonic()
    cluster.psql("ALTER EXTENSION sequin_fdw UPDATE")
    print(f"     ALTER EXTENSION sequin_fdw UPDATE: {(time.monotonic() - t0) * 1000:.0f} ms")
    check(f"extversion is {NEW}", cluster.psql("SELECT extversion FROM pg_extension WHERE extname = 'sequin_fdw'") == NEW)
    rows_now = cluster.psql("SELECT string_agg(id || '=' || coalesce(name, ''), ',' ORDER BY id) FROM stripe.customers "
                            f"WHERE updated_idx <= {state['max_idx']} AND id <> '{first}'")
    expected = ",".join(r for r in state["rows"].split(",") if not r.startswith(first + "="))
    check("the rows are still there", rows_now == expected and len(state["rows"].split(",")) == 41,
          f"{len(rows_now.split(','))} unchanged rows of 41")
    arrived = wait_for(lambda: cluster.psql(f"SELECT name FROM stripe.customers WHERE id = '{first}'")
                       == "changed while waiting", 15)
    check("a change made while the worker waited arrives after the update", arrived)
    created = mock("POST", "/_admin/stripe/customers", LIVE_KEY, {"email": "after@example.com", "name": "Made after"})
    arrived = wait_for(lambda: cluster.psql(f"SELECT name FROM stripe.customers WHERE id = '{created['id']}'")
                       == "Made after", 15)
    check("the sync goes on: an outside change shows up", arrived)
    written = cluster.psql("INSERT INTO stripe.customers (email, name) VALUES ('new@example.com', 'Written at 0.2.0') "
                           "RETURNING id")
    cluster.psql(f"UPDATE stripe.customers SET name = 'Renamed at 0.2.0' WHERE id = '{state['written']}'")
    check("writes work: INSERT and UPDATE reach the API and the table",
          mock("GET", f"/_admin/stripe/customers/{written}", LIVE_KEY).get("name") == "Written at 0.2.0"
          and mock("GET", f"/_admin/stripe/customers/{state['written']}", LIVE_KEY).get("name") == "Renamed at 0.2.0"
          and cluster.psql(f"SELECT name FROM stripe.customers WHERE id = '{state['written']}'") == "Renamed at 0.2.0",
          written)
    contact = sorted(c["Id"] for c in mock("GET", "/_admin/salesforce/Contact", SF_KEY)["records"])[0]
    mock("PATCH", f"/_admin/salesforce/Contact/{contact}", SF_KEY, {"Title": "Changed upstream"})
    check(f"a Salesforce table of {OLD} syncs on: an outside change shows up", wait_for(lambda: cluster.psql(
        f"SELECT title FROM sf.contacts WHERE id = '{contact}'") == "Changed upstream", 15))
    cluster.psql(f"UPDATE sf.contacts SET last_name = 'Renamed at 0.2.0' WHERE id = '{contact}'")
    check(f"… and writes through it reach the API", mock("GET", f"/_admin/salesforce/Contact/{contact}", SF_KEY)
          .get("LastName") == "Renamed at 0.2.0")
    refused = cluster.psql(f"UPDATE sf.contacts SET created_date = now() WHERE id = '{contact}'", check=False)
    check(f"… and its columns follow describe (a field Salesforce sets is refused)",
          refused.returncode != 0 and "not updateable" in refused.stderr, refused.stderr.strip())
    status = cluster.psql("SELECT string_agg(concat_ws(' ', \"table\", phase, rows, backfill, sweep, quarantined_records, "
                          "last_error), '; ' ORDER BY 1) FROM sequin.sync_status")
    check("sequin.sync_status works", status == "held.customers paused 10 done off 0; stripe.customers incremental 43 done off 0; "
          "stripe.products incremental 5 done off 0; sf.contacts incremental 5 done off 0", status)
    check("the paused server stays paused", cluster.psql(
        f"SELECT name FROM held.customers WHERE id = '{state['held_target']}'") != "changed while paused")
    cluster.psql("SELECT sequin.resume('held')")
    check("resuming it brings the change it missed", wait_for(lambda: cluster.psql(
        f"SELECT name FROM held.customers WHERE id = '{state['held_target']}'") == "changed while paused", 15))
    through = cluster.psql("SELECT count(*) FROM stripe.customers", user=READER, check=False)
    direct = cluster.psql("SELECT count(*) FROM sequin_shadow.stripe_customers", user=READER, check=False)
    check("the reader reads the table granted to it, and its shadow table",
          through.stdout.strip() == "43" and direct.stdout.strip() == "43", (through.stderr + direct.stderr).strip())
    denied = cluster.psql("SELECT count(*) FROM sequin_shadow.held_customers", user=READER, check=False)
    check("and no other shadow table", denied.returncode != 0 and "permission denied" in denied.stderr,
          denied.stderr.strip())
    check("the worker runs", cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sequin sync' AND datname = current_database()") == "1")
    restorable = cluster.psql(
        "SELECT count(*) FROM sequin.collections c JOIN pg_catalog.pg_foreign_table f ON f.ftrelid = c.foreign_table"
        " WHERE NOT ('shadow_table=' || c.shadow_table = ANY (f.ftoptions)) OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
        "   WHERE d.objid = c.foreign_table AND d.refobjid = to_regclass(c.shadow_table) AND d.deptype = 'n')")
    check("every table of 0.1.0 can be dumped and restored: its shadow_table option and dependency", restorable == "0",
          f"{restorable} tables lack them")


def compare_with_fresh(cluster, mock):
    cluster.psql(f"CREATE DATABASE {FRESH}", db="postgres")
    cluster.psql("CREATE EXTENSION sequin_fdw", db=FRESH)
    compare(f"the extension's objects after the update equal a fresh {NEW} install (catalogs)",
            f"{DATABASE} (updated from {OLD})", cluster.psql(describe_sql(EXTENSION_MEMBERS, True)) + "\n",
            f"{FRESH} (created at {NEW})", cluster.psql(describe_sql(EXTENSION_MEMBERS, True), db=FRESH) + "\n")

    # The same foreign tables (as pg_dump writes them: definitions, owners,
    # grants) made at the new version: their shadow tables must equal those
    # made by 0.1.0 and updated.
    cluster.psql(f"""
        CREATE SERVER live FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'stripe', base_url '{mock.url}', poll_interval '300ms');
        CREATE USER MAPPING FOR PUBLIC SERVER live OPTIONS (api_key '{LIVE_KEY}');
        CREATE SERVER held FOREIGN DATA WRAPPER sequin_fdw
          OPTIONS (provider 'stripe', base_url '{mock.url}', poll_interval '300ms');
        CREATE USER MAPPING FOR PUBLIC SERVER held OPTIONS (api_key '{HELD_KEY}');
    """ + salesforce_sql(mock), db=FRESH, user=ADMIN)
    tables = run([cluster.bindir / "pg_dump", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
                  "--schema-only", "-n", "stripe", "-n", "held", "-n", "sf", DATABASE])
    replay = subprocess.run([cluster.bindir / "psql", "-Xq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                             str(cluster.port), "-U", "postgres", "-d", FRESH], input=tables, capture_output=True, text=True)
    if replay.returncode != 0:
        raise RuntimeError(f"replaying the foreign tables failed: {replay.stderr}")
    compare(f"shadow tables made by {OLD} and updated equal those {NEW} makes for the same foreign tables",
            f"{DATABASE} (made at {OLD})", cluster.psql(describe_sql(SHADOW_TABLES, False)) + "\n",
            f"{FRESH} (made at {NEW})", cluster.psql(describe_sql(SHADOW_TABLES, False), db=FRESH) + "\n")

    # Without the user's objects, the whole schema of both databases.
    for db in (DATABASE, FRESH):
        cluster.psql("DROP SCHEMA stripe, held, sf CASCADE; DROP SERVER live, held, sf CASCADE", db=db)
    compare(f"pg_dump --binary-upgrade --schema-only: the updated database equals a fresh {NEW} one",
            f"{DATABASE} (updated from {OLD})", normalized_dump(cluster, DATABASE),
            f"{FRESH} (created at {NEW})", normalized_dump(cluster, FRESH))


def stop_everything():
    cluster = started.get("postgres")
    if cluster:
        try:
            cluster.stop()
        except RuntimeError:
            try:
                cluster.stop("immediate")
            except RuntimeError as error:
                print(f"could not stop the cluster: {error}")
    mock = started.get("mock")
    if mock:
        mock.stop()


if __name__ == "__main__":
    major = run([PG_CONFIG, "--version"]).split()[1].split(".")[0]
    if major != "15":
        # 0.1.0 was built for PostgreSQL 15 only: no database of another
        # version has it to update. (tests/package.sh still runs the update
        # script there: CREATE EXTENSION … VERSION '0.1.0', then UPDATE.)
        print(f"upgrade: not applicable on PostgreSQL {major}: {OLD} was released for PostgreSQL 15 only")
        sys.exit(0)
    t_start = time.monotonic()
    try:
        main()
    except Exception as error:  # noqa: BLE001 - reported as a failed check
        check("the upgrade test ran", False, repr(error))
    finally:
        stop_everything()
    total = time.monotonic() - t_start
    print("upgrade timings: " + "; ".join(f"{label} {secs:.1f} s" for label, secs in timings) + f"; total {total:.1f} s")
    print(f"upgrade: {'all passed' if not failures else 'FAILED: ' + ', '.join(failures)}", flush=True)
    sys.exit(1 if failures else 0)
