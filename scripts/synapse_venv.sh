#!/usr/bin/env bash
# synapse_venv.sh — a virtual environment with Synapse (PyPI matrix-synapse), for
# the differential tests against Synapse's event code, the benchmarks (Synapse on
# PostgreSQL: the [postgres] extra) and, later, as a federation peer.
# Idempotent; prints the environment's python on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=tests/integration/.venv
version=1.163.2
if ! "$venv/bin/python" -c "import synapse, psycopg2" 2>/dev/null; then
  echo "synapse_venv: installing matrix-synapse[postgres] $version into $venv" >&2
  if ! "$venv/bin/python" -c "import synapse" 2>/dev/null; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "matrix-synapse[postgres]==$version" >&2
fi
echo "$PWD/$venv/bin/python"
