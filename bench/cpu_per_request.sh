#!/usr/bin/env bash
# keygate's cost per request, for before/after comparisons of one change (not the side-by-side
# report: that is bench/run.sh). Load-independent figures, so they hold on a busy machine:
#
#   CPU µs/request   keygate's utime+stime (/proc/PID/stat) over a wrk run, divided by requests
#   instructions/req with --callgrind: keygate under valgrind --tool=callgrind, counters zeroed
#                    after start-up, dumped after the load: all threads' instructions / requests
#
#   bench/cpu_per_request.sh [--build DIR] [--keygate BIN] [--mode json|sse] [--conns 64] [--duration 5]
#                            [--repeats 3] [--callgrind] [--perf FILE] [--syscalls] [--threads]
#                            [--keys 1000] [--store sqlite|postgres] [--prompt-kb N] [--busy-poll US]
#                            [--translate]
#
# Same set-up as bench/run.sh's keygate target: bench/fast_stub.c upstream, SQLite store,
# client-key auth, a pool of --keys keys, usage recording on, workers = 1; keygate on core 0,
# wrk and the stub on core 1. The usage writer's batches are reported from its drain at the end
# (how many records the store got). --perf FILE: perf record -e cpu-clock -g during the first run.
# --syscalls: system calls per request by name (perf stat on the syscalls tracepoints, first run).
# --threads: each busy thread's user and system CPU µs per request, by thread name (kg-worker-0,
#            kg-usage, ...), from /proc/PID/task/TID/stat, every run.
# --prompt-kb N: requests carry about N KiB of earlier turns (a long conversation), not one line.
# --busy-poll US: keygate runs with server.busy_poll_us = US (its worker polls before it sleeps).
# --translate: the requests (OpenAI chat) name "bench-claude", whose upstream speaks Anthropic
#            Messages (the stub answers /v1/messages in that format): keygate translates the
#            request, and the answer or stream back.
# --store postgres: the store is a throw-away PostgreSQL 15 (scripts/pgtest.sh: fsync off, so
#            this measures keygate's side and the server's CPU, not a disk), its processes on
#            core 1 with wrk and the stub; prints the server's CPU per request too, and checks
#            that the usage writer kept up (every request has its record after the drain).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-bench mode=json conns=64 duration=5 repeats=3 callgrind=0 perf_out="" syscalls=0 keys=1000
threads=0 store_kind=sqlite prompt_kb=0 busy_poll=0 translate=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift ;;
    --keygate) kg_bin=$2; shift ;;
    --mode) mode=$2; shift ;;
    --conns) conns=$2; shift ;;
    --duration) duration=$2; shift ;;
    --repeats) repeats=$2; shift ;;
    --callgrind) callgrind=1 ;;
    --perf) perf_out=$2; shift ;;
    --syscalls) syscalls=1 ;;
    --threads) threads=1 ;;
    --store) store_kind=$2; shift ;;
    --keys) keys=$2; shift ;;
    --prompt-kb) prompt_kb=$2; shift ;;
    --busy-poll) busy_poll=$2; shift ;;
    --translate) translate=1 ;;
    *) echo "cpu_per_request.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case $mode in json | sse) ;; *) echo "cpu_per_request.sh: --mode is json or sse" >&2; exit 2 ;; esac
case $store_kind in sqlite | postgres) ;; *) echo "cpu_per_request.sh: --store is sqlite or postgres" >&2; exit 2 ;; esac
if [ "$store_kind" = postgres ] && ! [ -x "${PGBIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then
  echo "cpu_per_request.sh: --store postgres needs PostgreSQL 15 (scripts/install-deps.sh --test)" >&2
  exit 2
fi
kg=${kg_bin:-$build/src/keygate}
for b in "$kg" "$build/bench/fast_stub"; do
  [ -x "$b" ] || { echo "cpu_per_request.sh: build $b first (ninja -C $build keygate fast_stub)" >&2; exit 2; }
done

. "$root/bench/lib.sh"  # bench_tmpdir, free_port, wait_port, cpu_ticks, write_bodies, keygate_setup
bench_tmpdir kg_cpu
trap 'echo "cpu_per_request.sh: failed at line $LINENO; keygate log:" >&2; tail -5 "$tmp/keygate.log" >&2' ERR

stub_port=$(free_port)
taskset -c 1 "$build/bench/fast_stub" --port "$stub_port" 2>"$tmp/stub.log" &
pids+=($!)
wait_port "$stub_port"
write_bodies "$tmp" "$prompt_kb"
if [ "$translate" = 1 ]; then
  sed -i 's/^{"model":"bench",/{"model":"bench-claude",/' "$tmp/json.body" "$tmp/sse.body"
fi

db=$tmp/keygate.db
pg_pids() { :; }
if [ "$store_kind" = postgres ]; then
  db=$("$root/scripts/pgtest.sh" start "$tmp/pg")
  pg_data=$(cat "$tmp/pg/pgdir" 2>/dev/null || echo "$tmp/pg")/data
  postmaster=$(head -1 "$pg_data/postmaster.pid")
  pg_pids() { echo "$postmaster" $(pgrep -P "$postmaster"); }
  for p in $(pg_pids); do taskset -p -c 1 "$p" >/dev/null; done
fi
client_key=$(keygate_setup "$kg" "$tmp" "$stub_port" "$keys" "$db")
sed -i "s/^workers = 1$/workers = 1\nbusy_poll_us = $busy_poll/" "$tmp/keygate.toml"
kg_port=$(free_port)
wrapper=()
if [ "$callgrind" = 1 ]; then
  wrapper=(valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out.%p" --dump-line=no)
fi
taskset -c 0 "${wrapper[@]}" "$kg" --store "$db" serve --config "$tmp/keygate.toml" \
  --listen "127.0.0.1:$kg_port" 2>"$tmp/keygate.log" &
kpid=$!; pids+=("$kpid")
wait_port "$kg_port"

ticks() { cpu_ticks "$kpid"; }
task_ticks() {  # "TID NAME UTIME STIME" per thread of keygate
  for t in /proc/"$kpid"/task/*; do
    printf '%s %s %s\n' "${t##*/}" "$(cat "$t/comm")" "$(awk '{ print $14, $15 }' "$t/stat")"
  done
}
load() {  # one wrk run; prints its requests
  BENCH_BODY_FILE="$tmp/$mode.body" BENCH_HEADERS="Authorization: Bearer $client_key" \
    taskset -c 1 wrk -t1 -c"$conns" -d"${duration}s" --timeout 30s -s "$root/bench/post.lua" \
    "http://127.0.0.1:$kg_port/v1/chat/completions" | grep '^WRK' >"$tmp/wrk.txt"
  sed -E 's/.* requests=([0-9]+) .*/\1/' "$tmp/wrk.txt"
}
# Warm-up (connections, caches, the allocator's steady state); not counted.
total=$(load)  # requests sent, for the usage check at the end
hz=$(getconf CLK_TCK)
if [ "$callgrind" = 1 ]; then
  callgrind_control -z "$kpid" >/dev/null
  n=$(load)
  total=$(( total + n ))
  callgrind_control -d "$kpid" >/dev/null
  sleep 1
  f=$(ls -t "$tmp"/callgrind.out.* | head -1)
  ir=$(awk '/^summary:|^totals:/ { print $2; exit }' "$f")
  echo "CALLGRIND mode=$mode conns=$conns requests=$n instructions=$ir per_request=$(( ir / n ))"
  [ -n "$perf_out" ] && cp "$f" "$perf_out"
else
  for r in $(seq 1 "$repeats"); do
    if [ "$r" = 1 ] && [ -n "$perf_out" ]; then
      perf record -e cpu-clock -F 4000 -g -o "$perf_out" -p "$kpid" 2>/dev/null &
      perf_pid=$!
    elif [ "$r" = 1 ] && [ "$syscalls" = 1 ]; then
      perf stat -e 'syscalls:sys_enter_*' -x, -o "$tmp/syscalls.txt" -p "$kpid" 2>/dev/null &
      perf_pid=$!
    fi
    [ "$threads" = 1 ] && task_ticks >"$tmp/tasks0"
    t0=$(ticks)
    # shellcheck disable=SC2046  # one pid per word
    pg0=$(cpu_ticks $(pg_pids))
    n=$(load)
    total=$(( total + n ))
    t1=$(ticks)
    # shellcheck disable=SC2046
    pg1=$(cpu_ticks $(pg_pids))
    if [ "$threads" = 1 ]; then
      task_ticks >"$tmp/tasks1"
      awk -v n="$n" -v hz="$(getconf CLK_TCK)" 'NR == FNR { u[$1] = $3; s[$1] = $4; next }
        { du = ($3 - u[$1]) * 1e6 / hz / n; ds = ($4 - s[$1]) * 1e6 / hz / n
          if (du + ds >= 0.05) printf "THREAD %-16s user %5.1f sys %5.1f us/request\n", $2, du, ds }' \
        "$tmp/tasks0" "$tmp/tasks1"
    fi
    if [ "$r" = 1 ] && { [ -n "$perf_out" ] || [ "$syscalls" = 1 ]; }; then
      kill -INT "$perf_pid"; wait "$perf_pid" || true
    fi
    if [ "$r" = 1 ] && [ "$syscalls" = 1 ]; then
      awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ && $1 / n >= 0.05 {
        sub(/syscalls:sys_enter_/, "", $3); t += $1 / n; printf "SYSCALL %-16s %6.2f per request\n", $3, $1 / n }
        END { printf "SYSCALL %-16s %6.2f per request\n", "total", t }' "$tmp/syscalls.txt" | sort -k3 -rn
    fi
    awk -v n="$n" -v t=$(( t1 - t0 )) -v hz="$hz" -v mode="$mode" -v c="$conns" -v line="$(cat "$tmp/wrk.txt")" \
      'BEGIN { printf "CPU mode=%s conns=%s requests=%d req_s=%.0f cpu_us_per_request=%.1f  (%s)\n", mode, c, n, n / '"$duration"', t * 1e6 / hz / n, line }'
    if [ "$store_kind" = postgres ]; then
      awk -v n="$n" -v t=$(( pg1 - pg0 )) -v hz="$hz" \
        'BEGIN { printf "POSTGRES server_cpu_us_per_request=%.1f (all its processes, core 1)\n", t * 1e6 / hz / n }'
    fi
  done
fi
kill -TERM "$kpid"
wait "$kpid" 2>/dev/null || true
batches=$(sed -nE 's/.*written: ([0-9]+) in ([0-9]+) batches.*/\1 \2/p' "$tmp/keygate.log")
[ -n "$batches" ] && echo "$batches" |
  awk '$2 > 0 { printf "USAGE_BATCH %d records in %d store transactions: %.1f per transaction\n", $1, $2, $1 / $2 }'
if [ "$store_kind" = postgres ]; then
  echo "USAGE records=$(psql -qtA "$db" -c 'SELECT count(*) FROM usage_records') requests=$total"
elif command -v sqlite3 >/dev/null; then
  echo "USAGE records=$(sqlite3 "$db" 'SELECT count(*) FROM usage_records') requests=$total"
fi
