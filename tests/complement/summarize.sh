#!/usr/bin/env bash
# summarize.sh LOG — counts and the failing tests from a `go test -v` log of
# Complement (top-level tests and subtests counted apart).
set -euo pipefail
log=$1
count() { grep -cE "^$1--- $2:" "$log" || true; }
echo "top-level tests: pass $(count '' PASS)  fail $(count '' FAIL)  skip $(count '' SKIP)"
echo "subtests:        pass $(count ' +' PASS)  fail $(count ' +' FAIL)  skip $(count ' +' SKIP)"
echo
echo "== failing (top level, then subtests indented) =="
grep -E '^ *--- FAIL:' "$log" | sed -E 's/ \([0-9.]+s\)$//' || true
echo
echo "== skipped, with the reason =="
grep -E -B1 '^ *--- SKIP:' "$log" | grep -vE '^--$' | sed -E 's/ \([0-9.]+s\)$//' || true
echo
echo "== packages =="
grep -E '^(ok|FAIL|panic:)' "$log" || true
