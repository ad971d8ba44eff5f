#!/usr/bin/env bash
# The run command: installs what it needs, builds an optimized keygate, and runs `keygate serve`
# on the embedded SQLite store (./keygate.db) unless told otherwise. Arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DKEYGATE_BUILD_TESTS=OFF \
  -DKEYGATE_BUILD_BENCH=OFF >/dev/null
ninja -C build-release keygate
exec build-release/src/keygate serve "$@"
