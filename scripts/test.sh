#!/usr/bin/env bash
# The test command: installs what it needs, builds under AddressSanitizer + UndefinedBehavior-
# Sanitizer, and runs every test (unit, store conformance on SQLite and a throw-away PostgreSQL,
# CLI end-to-end, multi-process race/storm/crash, integration with the real binary and the
# official OpenAI/Anthropic SDKs). Exits non-zero if anything fails.
#   KEYGATE_SANITIZER=asan|tsan|none (default asan)   KEYGATE_BUILD_DIR=…   extra args go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# The official SDKs the integration tests run as clients (tests/integration/sdk): exactly the
# versions of the committed lock file. With the dashboard's below, the only downloads of the test
# command besides apt.
npm ci --prefix tests/integration/sdk --no-audit --no-fund --loglevel=error
# The dashboard's browser test (tests/dashboard): playwright-core drives Debian's chromium (no
# browser download), axe-core checks accessibility; the versions of the committed lock file.
npm ci --prefix tests/dashboard --no-audit --no-fund --loglevel=error

sanitizer=${KEYGATE_SANITIZER:-asan}
build_dir=${KEYGATE_BUILD_DIR:-build-$sanitizer}
flags=(-DCMAKE_BUILD_TYPE=Debug)
case "$sanitizer" in
  asan) flags+=(-DKEYGATE_ASAN=ON -DKEYGATE_TSAN=OFF) ;;
  tsan) flags+=(-DKEYGATE_ASAN=OFF -DKEYGATE_TSAN=ON) ;;
  none) flags+=(-DKEYGATE_ASAN=OFF -DKEYGATE_TSAN=OFF) ;;
  *) echo "KEYGATE_SANITIZER must be asan, tsan or none" >&2; exit 2 ;;
esac
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

start=$(date +%s)
cmake -S . -B "$build_dir" -G Ninja "${flags[@]}" -DKEYGATE_BUILD_BENCH=ON >/dev/null
ninja -C "$build_dir"
echo "test.sh: built in $(( $(date +%s) - start ))s"
cd "$build_dir"
ctest --output-on-failure -j2 --timeout 900 "$@"
echo "test.sh: finished in $(( $(date +%s) - start ))s"
