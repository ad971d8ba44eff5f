#!/usr/bin/env bash
# keygate side by side with nginx and a peer gateway (Portkey), on this machine, in one run.
#
#   bench/run.sh                 # full: 10 s cells, 3 repeats, 1/16/64/256 connections
#   bench/run.sh --quick         # development: 2 s cells, 1 repeat, 1 and 64 connections
#   bench/run.sh --duration 5 --repeats 3 --conns "1 16 64 256" --streams 10000 --seq 10000
#   options: --targets "direct nginx keygate portkey"  --no-micro  --out FILE (the report)
#            --prompt-kb N: the "long" cells, JSON requests carrying an N KiB conversation, at 64
#                       connections (default 64; 0: none)
#            --profile: also perf-record keygate (cpu-clock) under 64 connections, JSON and SSE,
#                       and print where its time goes (FILE.perf-json.txt, FILE.perf-sse.txt)
#            --keygate-preload LIB: run keygate with LD_PRELOAD=LIB (e.g. another malloc)
#   env BENCH_CMAKE_ARGS: extra CMake arguments for the Release build (-DKEYGATE_JEMALLOC=OFF)
#
# Installs what it needs (Debian: wrk, nginx-light; npm: bench/portkey from its lock file),
# builds keygate Release in build-bench/, starts bench/fast_stub.c as the upstream, and measures
# every target under the same conditions: the target pinned to core 0, wrk and the stub to core 1
# (taskset). Per cell (target, mode, connections, repeat) it records wrk's requests/s and
# latency percentiles, the target's peak RSS (VmHWM) and its CPU time per request (utime+stime
# from /proc/<pid>/stat over the cell, divided by the requests). Then: sequential single-request
# latency and time to the first SSE event over one keep-alive connection (bench_client seq),
# fidelity of streams through keygate under load, N concurrent slow SSE streams (RSS per stream),
# and the Google Benchmark micro-benchmarks. bench/report.py prints the table and the targets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmdline="bench/run.sh $*"

duration=10 repeats=3 conns="1 16 64 256" streams=10000 seq_n=10000 micro=1 profile=0
prompt_kb=64
keygate_preload=""
targets="direct nginx keygate portkey"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=2 repeats=1 conns="1 64" streams=1000 seq_n=1000 ;;
    --duration) duration=$2; shift ;;
    --repeats) repeats=$2; shift ;;
    --conns) conns=$2; shift ;;
    --streams) streams=$2; shift ;;
    --seq) seq_n=$2; shift ;;
    --prompt-kb) prompt_kb=$2; shift ;;
    --targets) targets=$2; shift ;;
    --no-micro) micro=0 ;;
    --profile) profile=1 ;;
    --keygate-preload) keygate_preload=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# ---------------------------------------------------------------- install and build
need=()
pkgs=(wrk nginx-light libbenchmark-dev sqlite3)
[ "$profile" = 1 ] && pkgs+=(linux-perf)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
case " $targets " in *" portkey "*)
  grep -qs '"version": "1.15.2"' "$root/bench/portkey/node_modules/@portkey-ai/gateway/package.json" ||
    npm ci --prefix "$root/bench/portkey" --no-audit --no-fund --loglevel=error ;;
esac
. "$root/bench/lib.sh"
build=$root/build-bench
bench_build "$build" keygate micro_bench fast_stub bench_client
kg=$build/src/keygate

# 10,000 streams are 20,000+ sockets in keygate (and as many in the client and the stub).
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_tmpdir keygate_bench
hwm_kib() {  # sum of VmHWM (peak RSS) of the given pids
  local t=0 p
  for p in "$@"; do t=$(( t + $(awk '/^VmHWM/ { print $2 }' "/proc/$p/status") )); done
  echo "$t"
}

# ---------------------------------------------------------------- the upstream stub (core 1)
stub_port=$(free_port)
taskset -c 1 "$build/bench/fast_stub" --port "$stub_port" --slow-interval-ms 1000 \
  2>"$tmp/stub.log" &
stub_pid=$!; pids+=("$stub_pid")
wait_port "$stub_port"

write_bodies "$tmp"
if [ "$prompt_kb" -gt 0 ]; then  # long.body: the JSON request with a long conversation before it
  mkdir -p "$tmp/long" && write_bodies "$tmp/long" "$prompt_kb" && cp "$tmp/long/json.body" "$tmp/long.body"
fi
# What a client must assemble from a stream: the upstream's own body (de-chunked by curl).
curl -sf --data-binary "@$tmp/sse.body" "http://127.0.0.1:$stub_port/v1/chat/completions" \
  >"$tmp/sse.expect"

# ---------------------------------------------------------------- targets (core 0)
declare -A port headers target_pids no_sse
port[direct]=$stub_port; headers[direct]=""; target_pids[direct]=$stub_pid

start_nginx() {
  local p; p=$(free_port)
  write_nginx_conf "$tmp/nginx" "$stub_port" "$p"
  taskset -c 0 nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" &
  pids+=($!)
  wait_port "$p"
  local master; master=$(cat "$tmp/nginx/nginx.pid")
  port[nginx]=$p; headers[nginx]=""
  target_pids[nginx]="$master $(pgrep -P "$master" | tr '\n' ' ')"
}

start_keygate() {
  local client_key; client_key=$(keygate_setup "$kg" "$tmp" "$stub_port" 1000)
  headers[keygate]="Authorization: Bearer $client_key"
  # The same store and settings with busy polling on: the sequential cells run it too.
  sed 's/^workers = 1$/workers = 1\nbusy_poll_us = 100/' "$tmp/keygate.toml" >"$tmp/keygate-poll.toml"
  launch_keygate keygate
}

# launch_keygate NAME: serves the store with $tmp/NAME.toml as target NAME (port, pid).
launch_keygate() {
  local p; p=$(free_port)
  LD_PRELOAD=$keygate_preload taskset -c 0 "$kg" --store "$tmp/keygate.db" serve \
    --config "$tmp/$1.toml" --listen "127.0.0.1:$p" 2>>"$tmp/keygate.log" &
  local kpid=$!; pids+=("$kpid")
  wait_port "$p"
  port[$1]=$p; target_pids[$1]=$kpid
}

stop_keygate() {  # NAME: drains (every usage record is flushed) and exits
  kill -TERM "${target_pids[$1]}"
  wait "${target_pids[$1]}" 2>/dev/null || true
}

start_portkey() {
  local p; p=$(free_port)
  NODE_ENV=production taskset -c 0 node \
    "$root/bench/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" \
    --port="$p" --headless >"$tmp/portkey.log" 2>&1 &
  local npid=$!; pids+=("$npid")
  wait_port "$p"
  port[portkey]=$p
  headers[portkey]="Authorization: Bearer sk-bench|x-portkey-provider: openai|x-portkey-custom-host: http://127.0.0.1:$stub_port/v1"
  target_pids[portkey]=$npid
}

for t in $targets; do
  case $t in
    direct) ;;
    nginx) start_nginx ;;
    keygate) start_keygate ;;
    portkey) start_portkey ;;
    *) echo "bench/run.sh: unknown target $t" >&2; exit 2 ;;
  esac
done

# Every target must answer both modes correctly before anything is measured.
client_headers() {  # --header args for bench_client
  local IFS='|' h
  for h in ${headers[$1]}; do printf -- '--header\0%s\0' "$h"; done
}
for t in $targets; do
  mapfile -d '' hargs < <(client_headers "$t")
  "$build/bench/bench_client" seq --port "${port[$t]}" --body "$tmp/json.body" --n 3 \
    "${hargs[@]}" >/dev/null || { echo "bench/run.sh: $t fails JSON requests" >&2; exit 1; }
  if ! "$build/bench/bench_client" seq --port "${port[$t]}" --body "$tmp/sse.body" --n 3 \
    "${hargs[@]}" >/dev/null 2>"$tmp/precheck_$t.txt"; then
    [ "$t" = portkey ] || { echo "bench/run.sh: $t fails SSE requests" >&2; exit 1; }
    # Portkey 1.15.2 on Node 20 answers every stream with a 500 (its log: "TypeError: immutable"
    # from Headers.append on the upstream response): measured for JSON only, and said so.
    no_sse[$t]=1
    echo "NOTE $t fails SSE requests ($(head -c 200 "$tmp/precheck_$t.txt" | tr '\n' ' ')): SSE cells skipped" >>"$tmp/notes.txt"
  fi
done

results=$tmp/results.txt
echo "CMD $cmdline" >"$results"
echo "HOST cores=$(nproc) nofile=$(ulimit -n) cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" >>"$results"
echo "LOAD_BEFORE $(uptime)" >>"$results"
cat "$tmp/notes.txt" >>"$results" 2>/dev/null || true
echo "PARAMS duration=$duration repeats=$repeats conns=$conns streams=$streams seq=$seq_n keygate_preload=${keygate_preload:-none}" >>"$results"

# ---------------------------------------------------------------- profile (optional)
if [ "$profile" = 1 ] && [[ " $targets " == *" keygate "* ]]; then
  for mode in json sse; do
    perf record -e cpu-clock -F 2000 -o "$tmp/perf-$mode.data" -p "${target_pids[keygate]}" \
      2>/dev/null &
    perf_pid=$!
    BENCH_BODY_FILE="$tmp/$mode.body" BENCH_HEADERS="${headers[keygate]}" \
      taskset -c 1 wrk -t1 -c64 -d"${duration}s" --timeout 10s -s "$root/bench/post.lua" \
      "http://127.0.0.1:${port[keygate]}/v1/chat/completions" >/dev/null
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    perf report -i "$tmp/perf-$mode.data" --no-children --sort dso,symbol --percent-limit 0.7 \
      --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' |
      sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' \
      >"${out:-/tmp/keygate_bench}.perf-$mode.txt"
    perf report -i "$tmp/perf-$mode.data" --no-children --sort dso --stdio 2>/dev/null |
      grep -v '^#' | grep -v '^$' >>"${out:-/tmp/keygate_bench}.perf-$mode.txt"
    echo "PROFILE keygate $mode @64: ${out:-/tmp/keygate_bench}.perf-$mode.txt"
  done
fi

# ---------------------------------------------------------------- load cells (wrk)
run_cell() {  # target mode conns rep
  local t=$1 mode=$2 c=$3 rep=$4
  local tp
  read -ra tp <<<"${target_pids[$t]}"
  local ticks0 ticks1 user0 user1 line
  ticks0=$(cpu_ticks "${tp[@]}")
  user0=$(cpu_user_ticks "${tp[@]}")
  line=$(BENCH_BODY_FILE="$tmp/$mode.body" BENCH_HEADERS="${headers[$t]}" \
    taskset -c 1 wrk -t1 -c"$c" -d"${duration}s" --timeout 10s -s "$root/bench/post.lua" \
    "http://127.0.0.1:${port[$t]}/v1/chat/completions" | grep '^WRK')
  ticks1=$(cpu_ticks "${tp[@]}")
  user1=$(cpu_user_ticks "${tp[@]}")
  echo "CELL target=$t mode=$mode conns=$c rep=$rep ${line#WRK } cpu_ticks=$(( ticks1 - ticks0 )) user_ticks=$(( user1 - user0 )) hz=$(getconf CLK_TCK) hwm_kib=$(hwm_kib "${tp[@]}")" |
    tee -a "$results"
}
# Connections outermost (so the peak RSS read after a cell covers loads up to that one), targets
# innermost (so noise from the rest of the machine spreads over all targets alike).
for c in $conns; do
  for rep in $(seq 1 "$repeats"); do
    for mode in json sse; do
      for t in $targets; do
        [ "$mode" = sse ] && [ -n "${no_sse[$t]:-}" ] && continue
        run_cell "$t" "$mode" "$c" "$rep"
      done
    done
  done
done

# Long prompts: real chat requests carry the conversation so far. 64 connections only.
if [ "$prompt_kb" -gt 0 ]; then
  for rep in $(seq 1 "$repeats"); do
    for t in $targets; do run_cell "$t" long 64 "$rep"; done
  done
  echo "PARAMS prompt_kb=$prompt_kb long_body_bytes=$(stat -c %s "$tmp/long.body")" >>"$results"
fi

# ---------------------------------------------------------------- sequential latency
# keygate twice: as configured above, and then with busy polling (server.busy_poll_us = 100, the
# same store), in place of the first; the first is back for the sections after.
seq_cells() {  # TARGET NAME: sequential cells against TARGET's port, reported as NAME
  local n=$seq_n; [ "$1" = portkey ] && n=$(( seq_n < 2000 ? seq_n : 2000 ))  # ~1 ms each
  mapfile -d '' hargs < <(client_headers "$1")
  for mode in json sse; do
    [ "$mode" = sse ] && [ -n "${no_sse[$1]:-}" ] && continue
    line=$(taskset -c 1 "$build/bench/bench_client" seq --port "${port[$1]}" \
      --body "$tmp/$mode.body" --n "$n" "${hargs[@]}" | grep '^RESULT')
    echo "SEQ target=$2 mode=$mode ${line#RESULT }" | tee -a "$results"
  done
}
for t in $targets; do
  seq_cells "$t" "$t"
  if [ "$t" = keygate ]; then
    stop_keygate keygate
    launch_keygate keygate-poll; headers[keygate-poll]=${headers[keygate]}
    seq_cells keygate-poll keygate-poll
    stop_keygate keygate-poll
    launch_keygate keygate
  fi
done

# ---------------------------------------------------------------- fidelity under load
# While wrk drives 64 streaming connections through keygate, a client checks that every stream
# it assembles equals the upstream's byte for byte (content, usage chunk, [DONE]).
if [[ " $targets " == *" keygate "* ]]; then
  mapfile -d '' hargs < <(client_headers keygate)
  BENCH_BODY_FILE="$tmp/sse.body" BENCH_HEADERS="${headers[keygate]}" \
    taskset -c 1 wrk -t1 -c64 -d"$(( duration > 5 ? duration : 5 ))s" --timeout 10s \
    -s "$root/bench/post.lua" "http://127.0.0.1:${port[keygate]}/v1/chat/completions" \
    >"$tmp/fidelity_wrk.txt" &
  wrk_pid=$!
  sleep 0.5
  line=$(taskset -c 1 "$build/bench/bench_client" seq --port "${port[keygate]}" \
    --body "$tmp/sse.body" --expect "$tmp/sse.expect" --n 1000 "${hargs[@]}" | grep '^RESULT' ||
    true)
  wait "$wrk_pid"
  echo "FIDELITY target=keygate ${line#RESULT } $(grep '^WRK' "$tmp/fidelity_wrk.txt" | sed 's/^WRK /wrk_/')" |
    tee -a "$results"
fi

# ---------------------------------------------------------------- concurrent slow streams
for t in keygate nginx; do
  [[ " $targets " == *" $t "* ]] || continue
  mapfile -d '' hargs < <(client_headers "$t")
  read -ra tp <<<"${target_pids[$t]}"
  pid=${tp[-1]}  # keygate's process; nginx's worker
  line=$(taskset -c 1 "$build/bench/bench_client" streams --port "${port[$t]}" \
    --body "$tmp/slow.body" --n "$streams" --pid "$pid" "${hargs[@]}" | grep '^RESULT' || true)
  echo "STREAMS target=$t ${line#RESULT }" | tee -a "$results"
  sleep 2  # let the closed streams drain before the next target
done

# ---------------------------------------------------------------- usage recorded by keygate
if [[ " $targets " == *" keygate "* ]]; then
  stop_keygate keygate  # drains and flushes usage records
  echo "USAGE target=keygate $(sqlite3 "$tmp/keygate.db" \
    "SELECT 'records=' || count(*) || ' status_200=' || sum(status = 200) ||
            ' fast_with_usage=' || sum(model NOT LIKE '%slow%' AND output_tokens IN (20, 30)) ||
            ' fast_total=' || sum(model NOT LIKE '%slow%') FROM usage_records")" |
    tee -a "$results"
fi

# ---------------------------------------------------------------- micro-benchmarks
if [ "$micro" = 1 ]; then
  taskset -c 0 "$build/bench/micro_bench" --benchmark_min_time=0.5 \
    --benchmark_format=json >"$tmp/micro.json" 2>/dev/null
  python3 -c '
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    scale = {"ns": 1, "us": 1e3, "ms": 1e6}[b["time_unit"]]
    print("MICRO name=%s ns=%.1f cpu_ns=%.1f" % (b["name"], b["real_time"] * scale, b["cpu_time"] * scale))
' "$tmp/micro.json" | tee -a "$results"
fi

echo "LOAD_AFTER $(uptime)" >>"$results"
echo "PINNING targets on core 0; wrk, bench_client and fast_stub on core 1 (taskset)" >>"$results"
echo
if [ -n "$out" ]; then
  mkdir -p "$(dirname "$out")"
  python3 "$root/bench/report.py" "$results" | tee "$out"
else
  python3 "$root/bench/report.py" "$results"
fi
cp "$results" "${out:-/tmp/keygate_bench_results}.raw.txt" 2>/dev/null || true
