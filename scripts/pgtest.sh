#!/usr/bin/env bash
# A throw-away PostgreSQL for the test suite.
#   scripts/pgtest.sh start DIR   -> starts a server in DIR, writes the DSN to DIR/dsn, prints it
#   scripts/pgtest.sh stop DIR    -> stops it and removes DIR
# Port: $KEYGATE_PGTEST_PORT or a free one from 55432 up. initdb refuses root, so as root the
# server runs as the `postgres` system user, and its files (data, log, socket) live in a directory
# of its own under /tmp, named in DIR/pgdir: DIR may sit below a directory `postgres` cannot enter
# (a checkout in a `mktemp -d` directory is 0700).
set -euo pipefail
cmd=${1:?usage: pgtest.sh start|stop DIR}
dir=${2:?usage: pgtest.sh start|stop DIR}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# The server's own directory (see above); empty when there is none.
pg_dir() {
  if [ -f "$dir/pgdir" ]; then cat "$dir/pgdir"; elif [ -d "$dir/data" ]; then echo "$dir"; fi
}

case "$cmd" in
  start)
    pg=$(pg_dir)
    if [ -f "$dir/dsn" ] && [ -n "$pg" ] && as_pg "$PGBIN/pg_ctl" -D "$pg/data" status >/dev/null 2>&1; then
      cat "$dir/dsn"; exit 0
    fi
    [ -n "$pg" ] && [ "$pg" != "$dir" ] && rm -rf "$pg"
    rm -rf "$dir"; mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      pg=$(mktemp -d /tmp/keygate-pgtest.XXXXXX)
      chown postgres:postgres "$pg"
      echo "$pg" >"$dir/pgdir"
    else
      pg=$dir
    fi
    chmod 700 "$pg"
    as_pg "$PGBIN/initdb" -D "$pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      --no-sync --no-instructions >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # A free port is only free until somebody takes it: another test run on this machine may pick
    # the same one between our probe and our bind. So on a failed start, try the next free port.
    port=${KEYGATE_PGTEST_PORT:-55432}
    for attempt in 1 2 3 4 5; do
      if [ -z "${KEYGATE_PGTEST_PORT:-}" ]; then
        while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
      fi
      if as_pg "$PGBIN/pg_ctl" -D "$pg/data" -l "$pg/pg.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null; then
        break
      fi
      if [ -n "${KEYGATE_PGTEST_PORT:-}" ] || [ "$attempt" = 5 ]; then cat "$pg/pg.log" >&2; exit 1; fi
      port=$((port + 1 + RANDOM % 16))
    done
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres keygate_test
    echo "postgresql://postgres@127.0.0.1:$port/keygate_test" | tee "$dir/dsn"
    ;;
  stop)
    pg=$(pg_dir)
    if [ -n "$pg" ] && [ -d "$pg/data" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [ -n "$pg" ] && [ "$pg" != "$dir" ] && rm -rf "$pg"
    rm -rf "$dir"
    ;;
  *) echo "usage: pgtest.sh start|stop DIR" >&2; exit 2 ;;
esac
