#!/usr/bin/env bash
# run.sh [go test arguments...] — run Complement (the Matrix homeserver
# conformance suite) against the pvyhs of this checkout.
#
#   tests/complement/run.sh -run 'TestLogin|TestRegistration'
#   tests/complement/run.sh                 # the whole of ./tests and ./tests/csapi
#
# Builds pvyhs (RelWithDebInfo, in build/), an image complement-pvyhs:latest
# from build/bin and this folder's Dockerfile, then runs `go test -v` in a
# Complement checkout. The output goes to last-run.log here (or
# $COMPLEMENT_LOG), a summary (counts, failing tests) to summary.txt and, for
# each failing test, the lines saying why to failures.txt.
#
# Needs: a running Docker daemon (20.10 or newer), Go, git. Environment:
#   COMPLEMENT_DIR   a Complement checkout (default: cloned into .complement/)
#   COMPLEMENT_REF   the commit cloned (default: the one this was tried with)
#   COMPLEMENT_PKGS  the Go packages to run (default: "./tests/ ./tests/csapi/";
#                    the MSC packages under tests/msc* are left out)
#   PARALLEL         go test -parallel (default 2)
#   TIMEOUT          go test -timeout (default 120m)
#   COMPLEMENT_IMAGE the image built and run (default complement-pvyhs:latest)
#   SKIP_BUILD=1     reuse the existing image
#   PASS_PVYHS_EXTRA_CONFIG  YAML lines appended to every homeserver's config
#                    (keys the entrypoint does not set), e.g.
#                    'enable_authenticated_media: false'
# Docker Hub unreachable? The base image is then made with debootstrap
# (needs root and a Debian mirror) and kept as pvyhs-complement-base:bookworm.
# The body is one function, read whole before it runs: editing this file
# during a run does not change what the running shell does next.
main() {
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
COMPLEMENT_DIR=${COMPLEMENT_DIR:-$here/.complement}
COMPLEMENT_REF=${COMPLEMENT_REF:-50044edb68c37c7ee4c1506f76d904d3d513fe2c}
COMPLEMENT_PKGS=${COMPLEMENT_PKGS:-./tests/ ./tests/csapi/}
COMPLEMENT_LOG=${COMPLEMENT_LOG:-$here/last-run.log}
image=${COMPLEMENT_IMAGE:-complement-pvyhs:latest}

docker info >/dev/null 2>&1 || { echo "run.sh: no Docker daemon (start dockerd as root)" >&2; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j2 --target pvyhs pvyhs-thumbnail

  base=debian:bookworm-slim
  if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; then
    base=pvyhs-complement-base:bookworm
    if ! docker image inspect "$base" >/dev/null 2>&1; then
      echo "run.sh: Docker Hub unreachable; building $base with debootstrap" >&2
      rootfs=$(mktemp -d)
      debootstrap --variant=minbase \
        --include=libmicrohttpd12,libcurl4,libpq5,libsodium23,libssl3,libjansson4,libyaml-0-2,libvips42,postgresql-15,ca-certificates,openssl,curl \
        bookworm "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
      rm -rf "$rootfs" "$rootfs.log"
    fi
  fi
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  mkdir "$ctx/bin"
  cp "$here/Dockerfile" "$here/entrypoint.sh" "$ctx/"
  cp "$root/build/bin/pvyhs" "$root/build/bin/pvyhs-thumbnail" "$ctx/bin/"
  docker build -q --build-arg BASE="$base" -t "$image" "$ctx" >/dev/null
  echo "run.sh: built $image from $base" >&2
fi

if [ ! -d "$COMPLEMENT_DIR/.git" ]; then
  git clone -q https://github.com/matrix-org/complement "$COMPLEMENT_DIR"
  git -C "$COMPLEMENT_DIR" checkout -q "$COMPLEMENT_REF"
fi

# Leftovers of an interrupted run would hold ports and names.
docker ps -aq --filter label=complement_context | xargs -r docker rm -f >/dev/null

cd "$COMPLEMENT_DIR"
set +e
# shellcheck disable=SC2086
COMPLEMENT_SHARE_ENV_PREFIX=${COMPLEMENT_SHARE_ENV_PREFIX:-PASS_} \
COMPLEMENT_BASE_IMAGE=$image COMPLEMENT_SPAWN_HS_TIMEOUT_SECS=${COMPLEMENT_SPAWN_HS_TIMEOUT_SECS:-60} \
  go test -v -count=1 -p 1 -parallel "${PARALLEL:-2}" -timeout "${TIMEOUT:-120m}" \
  "$@" $COMPLEMENT_PKGS >"$COMPLEMENT_LOG" 2>&1
rc=$?
set -e
"$here/summarize.sh" "$COMPLEMENT_LOG" >"$here/summary.txt"
"$here/failures.py" "$COMPLEMENT_LOG" >"$here/failures.txt"
cat "$here/summary.txt" | head -20
echo "run.sh: go test exit $rc; full output in $COMPLEMENT_LOG, summary in $here/summary.txt, causes in $here/failures.txt" >&2
exit $rc
}
main "$@"
