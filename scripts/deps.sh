#!/usr/bin/env bash
# deps.sh [build|test] — install the Debian packages pvyhs needs, if missing.
# Idempotent: prints one line saying what it installs (or that nothing is missing).
set -euo pipefail

build_pkgs=(cmake gcc make pkg-config libmicrohttpd-dev libcurl4-openssl-dev libpq-dev
            libsodium-dev libssl-dev libjansson-dev libyaml-dev libvips-dev check postgresql)
test_pkgs=(python3 python3-pytest python3-venv python3-canonicaljson python3-signedjson
           python3-nacl python3-pil clang libclang-rt-14-dev wrk curl procps openssl
           python3-matrix-nio python3-olm chromium)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

# npm may come with a nodejs package from elsewhere; only without any npm do
# we take Debian's.
[ "${1:-build}" = test ] && ! command -v npm >/dev/null && want+=(npm)

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#want[@]} Debian packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
