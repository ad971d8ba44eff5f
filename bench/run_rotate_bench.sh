#!/usr/bin/env bash
# Builds rotate_bench in Release (no sanitizers) in build-bench/ and runs it against a temporary
# SQLite file and a throw-away PostgreSQL (scripts/pgtest.sh), then prints a table.
#   bench/run_rotate_bench.sh            # 16 processes, 10 s per mode
#   PROCS=8 SECONDS_PER_MODE=5 bench/run_rotate_bench.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
procs=${PROCS:-16}
seconds=${SECONDS_PER_MODE:-10}
keys=${KEYS:-2000}
# Enough backups that no mode runs out within the window (SQLite rotates about 10x faster).
backups_sqlite=${BACKUPS_SQLITE:-150000}
backups_pg=${BACKUPS_PG:-40000}

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKEYGATE_ASAN=OFF \
  -DKEYGATE_TSAN=OFF -DKEYGATE_BUILD_TESTS=OFF >/dev/null
ninja -C "$build" rotate_bench >/dev/null

tmp=$(mktemp -d /tmp/rotate_bench.XXXXXX)
# pgtest.sh creates the directory itself and hands it to the postgres user: it must not sit
# inside the private $tmp.
pgdir=$(mktemp -u -d /tmp/rotate_bench_pg.XXXXXX)
cleanup() {
  "$root/scripts/pgtest.sh" stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

run() {
  "$build/bench/rotate_bench" --store "$1" --backups "$2" --procs "$procs" --keys "$keys" \
    --seconds "$seconds" | tee -a "$tmp/results"
}

echo "== SQLite ($tmp/bench.db, WAL, synchronous=NORMAL)"
run "$tmp/bench.db" "$backups_sqlite"
echo "== PostgreSQL 15 (throw-away: fsync=off, synchronous_commit=off)"
dsn=$("$root/scripts/pgtest.sh" start "$pgdir" | tail -n 1)
run "$dsn" "$backups_pg"

echo
echo "Store::Rotate, $procs processes, $(nproc) cores, ${seconds} s per mode"
awk '
  BEGIN {
    printf "%-9s %-11s %12s %14s %9s %9s %9s %7s\n",
           "store", "mode", "rotations/s", "already_rot/s", "p50 ms", "p99 ms", "max ms", "errors"
  }
  /^RESULT/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    printf "%-9s %-11s %12s %14s %9s %9s %9s %7s\n", f["store"], f["mode"], f["rotated_per_s"],
           f["already_rotated_per_s"], f["p50_ms"], f["p99_ms"], f["max_ms"], f["errors"]
  }' "$tmp/results"
