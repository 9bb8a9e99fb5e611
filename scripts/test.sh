#!/usr/bin/env bash
# test.sh — build everything and run the whole test suite:
#   1. check unit tests, built with AddressSanitizer + UndefinedBehaviorSanitizer
#   2. differential tests against Debian's python3-canonicaljson/signedjson and Synapse
#   3. fuzz targets (libFuzzer), briefly
#   4. integration tests: the real pvyhs binary (ASan build) on a real PostgreSQL,
#      driven over HTTP by pytest
# Prints one summary line "test: N passed, M failed" and exits non-zero on any failure.
# FUZZ_SECONDS (default 10) sets the time per fuzz target.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/deps.sh test || exit 1
py=/usr/bin/python3  # Debian's python sees the Debian python3-* packages
jobs=$(nproc)

passed=0 failed=0
stage() { # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); echo "--- $name: ok"
  else failed=$((failed + 1)); echo "--- $name: FAILED"; fi
}

build() { # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$jobs" >"$dir.log" 2>&1 ||
    { tail -50 "$dir.log"; return 1; }
}

stage "build (release)" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo || true
stage "build (asan+ubsan)" build build-asan -DCMAKE_BUILD_TYPE=Debug -DPVYHS_SANITIZE=ON || true

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
stage "unit tests (check, asan+ubsan)" ctest --test-dir build-asan --output-on-failure -j"$jobs"

# Differential tests, with the tools of the sanitizer build: against Debian's
# python3-canonicaljson/signedjson, and against Synapse's own event code.
export PVYHS_BUILD=$root/build-asan
stage "differential: canonical_diff" "$py" tests/diff/canonical_diff.py
if synapse_py=$(scripts/synapse_venv.sh | tail -1); then
  stage "differential: rooms_diff" "$synapse_py" tests/diff/rooms_diff.py \
    --tool "$PVYHS_BUILD/bin/rooms_hash"
else
  stage "differential: rooms_diff (installing Synapse)" false
fi

# libFuzzer is chatty: keep its output in a log and show the end only on failure.
fuzz_one() { # binary, seed corpus
  local name log
  name=$(basename "$1")
  log=build-fuzz/$name.log
  mkdir -p "build-fuzz/corpus-$name"
  if "$1" -max_total_time="${FUZZ_SECONDS:-10}" "build-fuzz/corpus-$name" \
      $( [ -d "$2" ] && echo "$2" ) >"$log" 2>&1; then
    grep -E '^Done [0-9]+ runs' "$log" | tail -1
  else
    tail -40 "$log"
    return 1
  fi
}

if command -v clang >/dev/null; then
  stage "build (fuzz, clang)" build build-fuzz -DCMAKE_C_COMPILER=clang -DPVYHS_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug
  for f in build-fuzz/bin/fuzz_*; do
    [ -x "$f" ] || continue
    corpus=tests/fuzz/corpus/$(basename "$f")
    mkdir -p "build-fuzz/corpus-$(basename "$f")"
    stage "fuzz: $(basename "$f")" fuzz_one "$f" "$corpus"
  done
fi

stage "npm packages for the real-client tests" scripts/js_deps.sh

export PVYHS_BIN=$root/build-asan/bin/pvyhs
stage "integration tests (pytest)" "$py" -m pytest -q -p no:cacheprovider tests/integration

echo "test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
