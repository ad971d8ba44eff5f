# Shared by bench/run.sh and bench/cpu_per_request.sh (sourced): ports, CPU ticks, and keygate's
# bench set-up (the same config and store for both, so their figures compare).

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

# The bench's stores are throw-away: a fixed master key, for the set-up and for `serve`.
KEYGATE_MASTER_KEY=$(printf 'ab%.0s' $(seq 32))
export KEYGATE_MASTER_KEY

# keygate_setup KEYGATE DIR STUB_PORT KEYS: writes DIR/keygate.toml (one worker; models "bench"
# and "bench-slow" on pool "bench" at the stub), creates DIR/keygate.db with the pool, KEYS
# upstream keys and a client key, and prints the client key.
keygate_setup() {
  local kg=$1 dir=$2 stub_port=$3 keys=$4
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
EOT
  "$kg" --store "$dir/keygate.db" pool create bench --provider stub >/dev/null
  seq 1 "$keys" | awk '{ printf "sk-bench-pool-key-%06d-abcdefghijklmnop\n", $1 }' |
    "$kg" --store "$dir/keygate.db" keys import --pool bench >/dev/null
  "$kg" --store "$dir/keygate.db" clients create bench 2>/dev/null | grep -o 'kg-[0-9a-f]*'
}
