#!/usr/bin/env bash
# RSS per concurrent slow SSE stream, keygate and nginx, in two conditions, in one run:
#   fresh  a just-started process (after the correctness prechecks only);
#   load   a just-started process after a wrk load phase (JSON then SSE, at 64 then 256
#          connections, --load-s seconds each), as bench/run.sh measures it (its streams test
#          comes after the load cells).
# Each condition gets its own process, so one measurement's freed memory does not shape the next.
# The streams are measured as bench/run.sh does: bench_client streams (RSS of the process before,
# and with all N streams open 3 s after the last first event, / N).
#
#   bench/streams_rss.sh                       # 10,000 streams, 10 s load cells, 1 repeat
#   bench/streams_rss.sh --streams 10000 --load-s 10 --repeats 2 --targets "keygate nginx"
#   --interval-ms MS: the slow stub's time between events (default 3000: a stream lasts 66 s;
#   bench/run.sh's 1000 gives 22 s, less than setting up 10,000 streams can take on a busy
#   machine, and bench_client then reports ended streams and the figure is not valid)
#   env BENCH_CMAKE_ARGS: extra CMake arguments for the Release build (as bench/run.sh)
#   env KEYGATE_BIN: measure this keygate binary instead of building build-bench/src/keygate
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

streams=10000 load_s=10 repeats=1 targets="keygate nginx" conditions="fresh load" interval_ms=3000
while [ $# -gt 0 ]; do
  case "$1" in
    --streams) streams=$2; shift ;;
    --load-s) load_s=$2; shift ;;
    --repeats) repeats=$2; shift ;;
    --targets) targets=$2; shift ;;
    --conditions) conditions=$2; shift ;;
    --interval-ms) interval_ms=$2; shift ;;
    *) echo "bench/streams_rss.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

. "$root/bench/lib.sh"  # bench_build, bench_tmpdir, free_port, wait_port, write_bodies, …
build=$root/build-bench
bench_build "$build" keygate fast_stub bench_client
kg=${KEYGATE_BIN:-$build/src/keygate}

ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bench_tmpdir keygate_streams

stub_port=$(free_port)
taskset -c 1 "$build/bench/fast_stub" --port "$stub_port" --slow-interval-ms "$interval_ms" \
  2>"$tmp/stub.log" &
pids+=($!)
wait_port "$stub_port"

write_bodies "$tmp"
client_key=$(keygate_setup "$kg" "$tmp" "$stub_port" 1000)

# start_target T: starts a fresh T on core 0; sets tport, theader, tpid (the pid whose RSS
# counts: keygate's process, nginx's worker) and tkill (what to stop).
start_target() {
  tport=$(free_port)
  case $1 in
    keygate)
      cp "$tmp/keygate.db" "$tmp/run.db"
      taskset -c 0 "$kg" --store "$tmp/run.db" serve --config "$tmp/keygate.toml" \
        --listen "127.0.0.1:$tport" 2>"$tmp/keygate.log" &
      tpid=$!; tkill=$tpid
      theader="Authorization: Bearer $client_key"
      wait_port "$tport" ;;
    nginx)
      rm -rf "$tmp/nginx"
      write_nginx_conf "$tmp/nginx" "$stub_port" "$tport"
      taskset -c 0 nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" &
      tkill=$!
      wait_port "$tport"
      tpid=$(pgrep -P "$(cat "$tmp/nginx/nginx.pid")" | head -1)
      theader="" ;;
  esac
  local hargs=(); [ -n "$theader" ] && hargs=(--header "$theader")
  for body in json sse; do
    "$build/bench/bench_client" seq --port "$tport" --body "$tmp/$body.body" --n 3 "${hargs[@]}" \
      >/dev/null || { echo "bench/streams_rss.sh: $1 fails $body requests" >&2; exit 1; }
  done
}
stop_target() {
  kill -TERM "$tkill" 2>/dev/null || true
  wait "$tkill" 2>/dev/null || true
  sleep 1
}

for rep in $(seq 1 "$repeats"); do
  for cond in $conditions; do
    for t in $targets; do
      start_target "$t"
      if [ "$cond" = load ]; then
        for c in 64 256; do
          for mode in json sse; do
            BENCH_BODY_FILE="$tmp/$mode.body" BENCH_HEADERS="$theader" \
              taskset -c 1 wrk -t1 -c"$c" -d"${load_s}s" --timeout 10s -s "$root/bench/post.lua" \
              "http://127.0.0.1:$tport/v1/chat/completions" >/dev/null
          done
        done
      fi
      hargs=(); [ -n "$theader" ] && hargs=(--header "$theader")
      line=$(taskset -c 1 "$build/bench/bench_client" streams --port "$tport" \
        --body "$tmp/slow.body" --n "$streams" --pid "$tpid" "${hargs[@]}" | grep '^RESULT' || true)
      echo "STREAMS target=$t cond=$cond rep=$rep ${line#RESULT }"
      stop_target
    done
  done
done
