#!/usr/bin/env bash
# Installs the Debian 12 packages keygate needs.
#   scripts/install-deps.sh          build + run
#   scripts/install-deps.sh --test   build + run + the services and tools the test suite starts
#                                    (and Node with npm, for the SDK tests, unless present)
# Boost is the versioned 1.81 set: never add an unversioned libboost-*-dev (it pulls 1.74).
set -euo pipefail

build_pkgs=(build-essential cmake ninja-build pkg-config ccache mold
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libcurl4-openssl-dev libssl-dev libsimdjson-dev libsqlite3-dev libpq-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev libsodium-dev
  libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev sqlite3 curl)
test_pkgs=(postgresql-15 tinyproxy microsocks nghttp2-server chromium)

pkgs=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then
  pkgs+=("${test_pkgs[@]}")
  # Node and npm run the official SDKs in the integration tests: a node already on the PATH (any
  # recent one, e.g. from NodeSource) is used as it is; otherwise Debian's.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    pkgs+=(nodejs npm)
  fi
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q "${missing[@]}"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${missing[@]}"
fi
