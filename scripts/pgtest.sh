#!/usr/bin/env bash
# A throw-away PostgreSQL for the test suite.
#   scripts/pgtest.sh start DIR   -> starts a server in DIR, writes the DSN to DIR/dsn, prints it
#   scripts/pgtest.sh stop DIR    -> stops it and removes DIR
# Port: $KEYGATE_PGTEST_PORT or a free one from 55432 up. initdb refuses root, so as root the
# server runs as the `postgres` system user.
set -euo pipefail
cmd=${1:?usage: pgtest.sh start|stop DIR}
dir=${2:?usage: pgtest.sh start|stop DIR}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    if [ -f "$dir/dsn" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      cat "$dir/dsn"; exit 0
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      --no-sync --no-instructions >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # A free port is only free until somebody takes it: another test run on this machine may pick
    # the same one between our probe and our bind. So on a failed start, try the next free port.
    port=${KEYGATE_PGTEST_PORT:-55432}
    for attempt in 1 2 3 4 5; do
      if [ -z "${KEYGATE_PGTEST_PORT:-}" ]; then
        while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
      fi
      if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null; then
        break
      fi
      if [ -n "${KEYGATE_PGTEST_PORT:-}" ] || [ "$attempt" = 5 ]; then cat "$dir/pg.log" >&2; exit 1; fi
      port=$((port + 1 + RANDOM % 16))
    done
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres keygate_test
    echo "postgresql://postgres@127.0.0.1:$port/keygate_test" | tee "$dir/dsn"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: pgtest.sh start|stop DIR" >&2; exit 2 ;;
esac
