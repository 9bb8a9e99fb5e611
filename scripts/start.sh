#!/usr/bin/env bash
# start.sh — build what is missing and run pvyhs on http://localhost:8008.
# First start writes ./homeserver.yaml (server_name localhost), a signing key
# and ./data (with its own PostgreSQL cluster). Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target pvyhs >/dev/null
exec build/bin/pvyhs serve "$@"
