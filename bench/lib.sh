# shellcheck shell=bash
# Shared by bench/run.sh, bench/cpu_per_request.sh and bench/streams_rss.sh (sourced): the
# Release build, the scratch directory, ports, CPU ticks, the request bodies, nginx's
# configuration and keygate's bench set-up (the same for all, so their figures compare).

# bench_build BUILD TARGET...: the Release build the benchmarks measure (jemalloc, no sanitizers;
# extra CMake arguments in $BENCH_CMAKE_ARGS, split into words).
bench_build() {
  local build=$1; shift
  local src; src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  # shellcheck disable=SC2086
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKEYGATE_ASAN=OFF \
    -DKEYGATE_JEMALLOC=ON ${BENCH_CMAKE_ARGS:-} -DKEYGATE_TSAN=OFF -DKEYGATE_BUILD_TESTS=OFF \
    -DKEYGATE_BUILD_BENCH=ON >/dev/null
  ninja -C "$build" "$@" >/dev/null
}

# bench_tmpdir NAME: makes the scratch directory $tmp and the list $pids of processes to stop; on
# exit, they are stopped, a throw-away PostgreSQL in $tmp/pg (scripts/pgtest.sh) too, and $tmp
# removed.
bench_tmpdir() {
  tmp=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -d "$tmp/pg" ]; then
    "$(dirname "${BASH_SOURCE[0]}")/../scripts/pgtest.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}


free_port() {  # a port nothing listens on, below the ephemeral range (32768-60999 on Linux)
  local p
  while :; do
    # Not an ephemeral port: after a 10,000-stream test those are busy with connections in
    # TIME_WAIT, and a listener there failed to bind ("nothing listens on port …").
    p=$(( 20000 + RANDOM % 12000 ))
    ss -ltnH "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}
wait_port() {  # waits up to 30 s for a listener on port $1
  for _ in $(seq 1 300); do
    ss -ltnH "sport = :$1" | grep -q . && return 0
    sleep 0.1
  done
  echo "bench: nothing listens on port $1" >&2; return 1
}
cpu_ticks() {  # utime+stime of the given pids, in clock ticks
  local t=0 p
  for p in "$@"; do
    t=$(( t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat") ))
  done
  echo "$t"
}

cpu_user_ticks() {  # utime alone (user space; the rest of cpu_ticks is the kernel's)
  local t=0 p
  for p in "$@"; do
    t=$(( t + $(awk '{ sub(/^.*\) /, ""); print $12 }' "/proc/$p/stat") ))
  done
  echo "$t"
}

# write_bodies DIR [PROMPT_KB]: the request bodies — DIR/json.body (a chat completion), DIR/sse.body
# (the same, streamed with usage) and DIR/slow.body (a stream of the stub's slow model). With
# PROMPT_KB, the conversation before the question is about that many KiB of earlier turns.
write_bodies() {
  local messages='"messages":[{"role":"user","content":"Say hello in one short sentence, please."}]'
  if [ "${2:-0}" -gt 0 ]; then
    local turn='{"role":"user","content":"Explain, in a few sentences, how a reverse proxy keeps connections to its upstream alive and why that matters for latency under load."},{"role":"assistant","content":"It pools idle connections per upstream and reuses them, so most requests skip the TCP and TLS handshakes; under load that removes round trips from every request."},'
    local turns="" n=$(( $2 * 1024 / ${#turn} + 1 ))
    for ((i = 0; i < n; i++)); do turns+=$turn; done
    messages='"messages":['"$turns"'{"role":"user","content":"Say hello in one short sentence, please."}]'
  fi
  local stream='"stream":true,"stream_options":{"include_usage":true}'
  printf '{"model":"bench",%s}' "$messages" >"$1/json.body"
  printf '{"model":"bench",%s,%s}' "$messages" "$stream" >"$1/sse.body"
  printf '{"model":"bench-slow",%s,%s}' "$messages" "$stream" >"$1/slow.body"
}

# write_nginx_conf DIR STUB_PORT PORT: nginx as the plain reverse proxy the benchmarks compare
# with (one worker, keep-alive to the stub, no buffering, no access log), listening on PORT;
# writes DIR/nginx.conf (its pid file, logs and temp paths in DIR).
write_nginx_conf() {
  local dir=$1 stub_port=$2 port=$3
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 100000;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 50000; use epoll; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream stub { server 127.0.0.1:$stub_port; keepalive 1024; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$port backlog=65535;
    location / {
      proxy_pass http://stub;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;      # SSE: each event goes out as it arrives
      client_body_buffer_size 1m;  # a long prompt stays in memory (as in keygate), not a temp file
      proxy_read_timeout 300s;
    }
  }
}
EOF
}

# The bench's stores are throw-away: a fixed master key, for the set-up and for `serve`.
KEYGATE_MASTER_KEY=$(printf 'ab%.0s' $(seq 32))
export KEYGATE_MASTER_KEY

# keygate_setup KEYGATE DIR STUB_PORT KEYS [STORE]: writes DIR/keygate.toml (one worker; models
# "bench" and "bench-slow" on pool "bench" at the stub; "bench-claude" on pool "bench-claude", the
# stub as an Anthropic Messages upstream, for translated requests), creates the store (STORE: a
# PostgreSQL URL, or by default the SQLite file DIR/keygate.db) with the pools, KEYS upstream keys
# in "bench" (100 in "bench-claude") and a client key, and prints the client key.
keygate_setup() {
  local kg=$1 dir=$2 stub_port=$3 keys=$4 store=${5:-$2/keygate.db}
  cat >"$dir/keygate.toml" <<EOT
[server]
workers = 1
[providers.stub]
base_url = "http://127.0.0.1:$stub_port"
[pools.bench]
provider = "stub"
[[models]]
id = "bench"
pool = "bench"
upstream = "bench-upstream"
price = { input = 1, output = 2 }
[[models]]
id = "bench-slow"
pool = "bench"
price = { input = 1, output = 2 }
[providers.stub-claude]
base_url = "http://127.0.0.1:$stub_port"
format = "anthropic-messages"
auth = "x-api-key"
[pools.bench-claude]
provider = "stub-claude"
[[models]]
id = "bench-claude"
pool = "bench-claude"
upstream = "claude-bench"
price = { input = 1, output = 2 }
EOT
  local pool provider count
  while read -r pool provider count; do  # each pool with its keys
    "$kg" --store "$store" pool create "$pool" --provider "$provider" >/dev/null
    seq 1 "$count" | awk -v p="$pool" '{ printf "sk-%s-key-%06d-abcdefghijklmnop\n", p, $1 }' |
      "$kg" --store "$store" keys import --pool "$pool" >/dev/null
  done <<EOP
bench stub $keys
bench-claude stub-claude 100
EOP
  "$kg" --store "$store" clients create bench 2>/dev/null | grep -o 'kg-[0-9a-f]*'
}
