#!/usr/bin/env bash
# The packages of `make package` (scripts/package.sh), for one PostgreSQL
# (PG_CONFIG, default /usr/bin/pg_config):
#   * the .deb's control fields and file list (dpkg-deb -I/-c), and the
#     tarball holding the same extension files;
#   * the .deb extracted (dpkg-deb -x) into a relocated copy of PostgreSQL
#     (scripts/pg_prefix.sh; nothing goes into the system's directories)
#     and a cluster started from it with the library preloaded: CREATE
#     EXTENSION, the version, the sync worker, and ALTER EXTENSION UPDATE
#     from every released version the package carries;
#   * that apt and dpkg would install it here (--simulate / --dry-run).
# Stops the cluster it started, also on failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
work=$root/target/package-test/pg$major
started=$(date +%s%N)
elapsed() { local ms=$(( ($(date +%s%N) - started) / 1000000 )); printf "%d.%d s" $((ms / 1000)) $((ms % 1000 / 100)); }

passed=0 failed=()
check() { # check NAME COMMAND...: passes when COMMAND succeeds
  local name=$1; shift
  if "$@"; then echo "ok   $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed+=("$name"); fi
}

mapfile -t made < <(PG_CONFIG=$PG_CONFIG bash scripts/package.sh)
deb=${made[1]}
tarball=${made[2]}
echo "     packages: $(basename "$deb"), $(basename "$tarball") (made in $(elapsed))"

# --- metadata and contents ---------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
check "the .deb is named for PostgreSQL $major, version $version and $arch" \
  test "$(basename "$deb")" = "sequin-fdw-postgresql-${major}_${version}_${arch}.deb"
check "Package: sequin-fdw-postgresql-$major" test "$(field Package)" = "sequin-fdw-postgresql-$major"
check "Version: $version" test "$(field Version)" = "$version"
check "Architecture: $arch" test "$(field Architecture)" = "$arch"
check "Depends: postgresql-$major first, then the library's shared-library needs" \
  grep -Eq "^postgresql-$major, libc6" <<<"$(field Depends)"
check "Maintainer, Section, Priority, Installed-Size and Description are set" \
  test -n "$(field Maintainer)" -a "$(field Section)" = database -a "$(field Priority)" = optional \
       -a "$(field Installed-Size)" -gt 0 -a -n "$(field Description)"

# Debian's paths, whatever pg_config built the package.
libdir=/usr/lib/postgresql/$major/lib
extdir=/usr/share/postgresql/$major/extension
doc=/usr/share/doc/sequin-fdw-postgresql-$major
expected=("$libdir/sequin_fdw.so" "$extdir/sequin_fdw.control" "$extdir/sequin_fdw--$version.sql")
for sql in sql/sequin_fdw--*.sql sql/sequin_fdw--*.control; do expected+=("$extdir/$(basename "$sql")"); done
deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort)
missing=$(comm -23 <(printf '%s\n' "${expected[@]}" | sort) <(echo "$deb_files"))
check "the .deb holds the library, the control file and every script (current $version, released, updates)" \
  test -z "$missing"
[ -z "$missing" ] || echo "     missing: $missing"
stray=$(grep -Ev "^($libdir/sequin_fdw\.so|$extdir/sequin_fdw(\.control|--.*\.sql|--.*\.control)|$doc/(README\.md|copyright))$" <<<"$deb_files" || true)
check "and nothing else (but its doc directory)" test -z "$stray"
[ -z "$stray" ] || echo "     stray: $stray"
tar_files=$(tar -tzf "$tarball" | grep -v '/$' | sed 's|^|/|' | sort)
check "the tarball holds the same extension files" test "$tar_files" = "$(grep -v "^$doc/" <<<"$deb_files")"
check "the control file's default_version is $version" \
  grep -q "^default_version = '$version'" <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ".$extdir/sequin_fdw.control")

# --- would apt and dpkg take it (nothing is installed) -------------------------
mkdir -p "$work"
if apt-cache show "postgresql-$major" >/dev/null 2>&1; then
  apt_out=$(apt-get install --simulate "$deb" 2>&1) || true
  check "apt-get install --simulate accepts it" grep -q "^Inst sequin-fdw-postgresql-$major ($version" <<<"$apt_out"
  grep -q "^Inst " <<<"$apt_out" || echo "$apt_out" | tail -5
  dpkg_dry_run() { dpkg --dry-run -i "$deb" >"$work/dpkg-dry-run.log" 2>&1 || { cat "$work/dpkg-dry-run.log"; return 1; }; }
  check "dpkg --dry-run -i accepts it" dpkg_dry_run
else
  # Its Depends (postgresql-18) is a package of PGDG's repository, which
  # this machine cannot reach: apt would refuse for that alone.
  echo "     not asked of apt and dpkg: this machine's apt sources have no postgresql-$major"
fi

# --- installed into a relocated PostgreSQL ------------------------------------
prefix=$work/pg
mkdir -p "$work"
new_pg_config=$(bash scripts/pg_prefix.sh "$prefix" "$PG_CONFIG" | tail -1)
prefix_libdir=$("$new_pg_config" --pkglibdir)
prefix_extdir=$("$new_pg_config" --sharedir)/extension
find "$prefix_libdir" "$prefix_extdir" -maxdepth 1 -name 'sequin_fdw*' -delete
# Extracted as dpkg would, then put where this PostgreSQL looks (the same
# paths for Debian's; the wheel of PostgreSQL 18 has a layout of its own).
rm -rf "$work/extracted"
dpkg-deb -x "$deb" "$work/extracted"
cp -a "$work/extracted$libdir/." "$prefix_libdir/"
cp -a "$work/extracted$extdir/." "$prefix_extdir/"
chmod 755 "$prefix"
bindir=$("$new_pg_config" --bindir)
data=$work/data
log=$work/postgres.log
rm -rf "$data" "$log"
mkdir -p "$data"
touch "$log"
chown postgres: "$data" "$log"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres() { env -u RUST_BACKTRACE runuser -u postgres -- "$@"; }
cleanup() { as_postgres "$bindir/pg_ctl" -D "$data" -w stop -m fast >/dev/null 2>&1 || true; }
trap cleanup EXIT
as_postgres "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log"
cat >>"$data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
shared_preload_libraries = 'sequin_fdw'
fsync = off
CONF
as_postgres "$bindir/pg_ctl" -D "$data" -l "$log" -w start >/dev/null
q() { "$bindir/psql" -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
q -d postgres -c "CREATE DATABASE app"
postmaster=$(head -1 "$data/postmaster.pid")
check "the server loads the library from the package, in the relocated copy" \
  grep -q " $prefix_libdir/sequin_fdw.so$" "/proc/$postmaster/maps"
check "CREATE EXTENSION sequin_fdw makes version $version" \
  test "$(q -d app -c "CREATE EXTENSION sequin_fdw; SELECT extversion FROM pg_extension WHERE extname = 'sequin_fdw'")" = "$version"
worker() { [ "$(q -d app -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sequin sync' AND datname = 'app'")" = 1 ]; }
waited=0
until worker || [ $waited -ge 100 ]; do sleep 0.1; waited=$((waited + 1)); done
check "the sync worker runs in the database with the extension" worker
check "sequin.sync_status answers" test "$(q -d app -c "SELECT count(*) FROM sequin.sync_status")" = 0
for sql in sql/sequin_fdw--*.sql; do
  name=$(basename "$sql" .sql)
  released=${name#sequin_fdw--}
  [[ $released == *--* ]] && continue
  db=from_${released//./_}
  q -d postgres -c "CREATE DATABASE $db"
  check "CREATE EXTENSION … VERSION '$released', then ALTER EXTENSION … UPDATE makes $version" \
    test "$(q -d "$db" -c "CREATE EXTENSION sequin_fdw VERSION '$released'; ALTER EXTENSION sequin_fdw UPDATE;
                            SELECT extversion FROM pg_extension WHERE extname = 'sequin_fdw'")" = "$version"
done
if grep -E 'terminated by signal|panicked at' "$log"; then
  check "the server log shows no crash or panic" false
fi

if [ ${#failed[@]} -eq 0 ]; then
  echo "package: $passed passed, 0 failed ($(elapsed))"
else
  echo "package: $passed passed, ${#failed[@]} failed: ${failed[*]} ($(elapsed))"
  exit 1
fi
