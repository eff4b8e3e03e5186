#!/usr/bin/env bash
# A private PostgreSQL cluster for Sealroom's provisioning tests, benchmark and local deployment.
#   scripts/postgres.sh [start]   initialise (once) and start; prints DATABASE_URL=... on the last line
#   scripts/postgres.sh stop      stop it (fast shutdown)
#   scripts/postgres.sh status    exit 0 when it runs
# Listens on 127.0.0.1 only, trust authentication for local connections (loopback test/dev use only;
# production deployments point DATABASE_URL at their own server).
# Overrides: SEALROOM_PG_DIR (data, default <repo>/.data/postgres), SEALROOM_PG_PORT (default 54329).
# Idempotent and safe to call from parallel processes (one flock per data directory).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${SEALROOM_PG_DIR:-$repo/.data/postgres}"
port="${SEALROOM_PG_PORT:-54329}"
cmd="${1:-start}"

bindir=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then bindir="$d"; break; fi
done
if [ -z "$bindir" ]; then
  echo "postgres.sh: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin." >&2
  echo "postgres.sh: install them with 'apt-get install postgresql' (listed in scripts/apt-packages.txt; 'npm run setup' does it)." >&2
  exit 2
fi

# initdb and postgres refuse to run as root: run them as the 'postgres' OS user then.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$dir"
exec 9>"$dir.lock"
flock 9

pgdata="$dir/data"
running() { as_owner "$bindir/pg_ctl" status -D "$pgdata" >/dev/null 2>&1; }

case "$cmd" in
  start)
    if [ ! -f "$pgdata/PG_VERSION" ]; then
      rm -rf "$pgdata"
      mkdir -p "$pgdata" "$dir/run"
      if [ "$(id -u)" = 0 ]; then chown postgres: "$dir" "$pgdata" "$dir/run"; fi
      chmod 700 "$pgdata"
      as_owner "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if ! running; then
      # fsync off: test and benchmark data is disposable; never use this cluster for real fleets.
      as_owner "$bindir/pg_ctl" start -D "$pgdata" -w -t 60 -l "$dir/postgres.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/run -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        >/dev/null 9>&- || { tail -n 20 "$dir/postgres.log" >&2; exit 1; }
    fi
    if ! as_owner "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc \
      "SELECT 1 FROM pg_database WHERE datname='sealroom'" postgres | grep -q 1; then
      as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres sealroom
    fi
    echo "DATABASE_URL=postgres://postgres@127.0.0.1:$port/sealroom"
    ;;
  stop)
    if [ -f "$pgdata/PG_VERSION" ] && running; then
      as_owner "$bindir/pg_ctl" stop -D "$pgdata" -m fast -w >/dev/null
    fi
    ;;
  status)
    running
    ;;
  *)
    echo "usage: postgres.sh [start|stop|status]" >&2
    exit 64
    ;;
esac
