#!/usr/bin/env bash
# run.sh [test files or folders...] — run SyTest (matrix-org/sytest, the Perl
# conformance suite Synapse and Dendrite run) against the pvyhs of this
# checkout.
#
#   tests/sytest/run.sh tests/10apidoc tests/30rooms/01state.pl
#   tests/sytest/run.sh                     # the whole suite
#
# Paths are SyTest's (relative to its checkout). Builds pvyhs (RelWithDebInfo,
# in build/), then runs SyTest's run-tests.pl with the pvyhs plugin of this
# folder (lib/SyTest/HomeserverFactory/Pvyhs.pm, `-I Pvyhs`): two pvyhs
# servers, each with its own embedded PostgreSQL, TLS on loopback with a
# certificate from SyTest's test CA. The log goes to last-run.log here (or
# $SYTEST_LOG) and the summary (counts per directory, each test's result) to
# summary.txt (or $SYTEST_SUMMARY).
#
# Needs: perl with SyTest's modules (Debian packages, see MISSING below),
# openssl, PostgreSQL server binaries (as pvyhs's embedded database does),
# git. Environment:
#   SYTEST_DIR      a SyTest checkout (default: cloned into .sytest/)
#   SYTEST_REF      the commit cloned (default: the one this was tried with)
#   SYTEST_LOG      the log (default tests/sytest/last-run.log)
#   SYTEST_SUMMARY  the summary (default tests/sytest/summary.txt)
#   SYTEST_WORK     SyTest's work folder: servers' configs, logs, databases
#                   (default tests/sytest/.work; server-N/pvyhs.log is each
#                   server's log)
#   PORT_RANGE      ports SyTest allocates (default 20800:20899)
#   BLACKLIST       SyTest's -B file: tests not run (default blacklist.txt
#                   here; each entry says why)
#   SKIP_BUILD=1    use the existing build/bin/pvyhs
#   PERL5LIB        where modules without a Debian package are (SyTest needs
#                   Net::Async::HTTP::Server >= 0.09, which Debian 12 lacks)
# Extra run-tests.pl options go after `--`: run.sh tests/31sync -- -C
# The body is one function, read whole before it runs.
main() {
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SYTEST_DIR=${SYTEST_DIR:-$here/.sytest}
SYTEST_REF=${SYTEST_REF:-404d274c0ae7a35ed5e9d6ba0ca31aa4d7e8d6b9}
SYTEST_LOG=${SYTEST_LOG:-$here/last-run.log}
SYTEST_SUMMARY=${SYTEST_SUMMARY:-$here/summary.txt}
SYTEST_WORK=${SYTEST_WORK:-$here/.work}
PORT_RANGE=${PORT_RANGE:-20800:20899}
BLACKLIST=${BLACKLIST:-$here/blacklist.txt}

files=()
extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; extra=("$@"); break; fi
  files+=("$1"); shift
done

if [ ! -f "$SYTEST_DIR/run-tests.pl" ]; then
  git clone -q https://github.com/matrix-org/sytest "$SYTEST_DIR"
  git -C "$SYTEST_DIR" checkout -q "$SYTEST_REF"
fi

# SyTest's modules (its cpanfile) and the Debian 12 packages holding them.
# Crypt::Ed25519 has none: lib/Crypt/Ed25519.pm here stands in for it, over
# CryptX (libcryptx-perl).
missing=""
while read -r mod pkg; do
  perl -I"$here/lib" -M"$mod" -e1 2>/dev/null || missing="$missing $mod($pkg)"
done <<'MODS'
Class::Method::Modifiers libclass-method-modifiers-perl
Crypt::PK::Ed25519 libcryptx-perl
Data::Dump libdata-dump-perl
DBI libdbi-perl
DBD::Pg libdbd-pg-perl
Digest::HMAC_SHA1 libdigest-hmac-perl
Email::Address::XS libemail-address-xs-perl
Email::MIME libemail-mime-perl
File::Slurper libfile-slurper-perl
Future libfuture-perl
HTTP::Request libhttp-message-perl
IO::Async libio-async-perl
IO::Async::SSL libio-async-ssl-perl
IO::Socket::SSL libio-socket-ssl-perl
JSON libjson-perl
List::UtilsBy liblist-utilsby-perl
Metrics::Any libmetrics-any-perl
Module::Pluggable libmodule-pluggable-perl
Net::Async::HTTP libnet-async-http-perl
Net::Async::HTTP::Server (CPAN:Net-Async-HTTP-Server,on-PERL5LIB)
Net::SSLeay libnet-ssleay-perl
Struct::Dumb libstruct-dumb-perl
YAML::XS libyaml-libyaml-perl
MODS
if [ -n "$missing" ]; then
  echo "run.sh: perl modules missing (Debian package):$missing" >&2
  exit 1
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j2 --target pvyhs pvyhs-thumbnail
fi

mkdir -p "$SYTEST_WORK"
blacklist=()
[ -f "$BLACKLIST" ] && blacklist=(-B "$BLACKLIST")

# run-tests.pl takes files; expand folders into their files.
args=()
for f in "${files[@]+"${files[@]}"}"; do
  if [ -d "$SYTEST_DIR/$f" ]; then
    while IFS= read -r g; do args+=("${g#"$SYTEST_DIR"/}"); done \
      < <(find "$SYTEST_DIR/$f" -name '*.pl' | sort)
  else
    args+=("$f")
  fi
done

cd "$SYTEST_DIR"
set +e
# shellcheck disable=SC2086
perl -I"$here/lib" -MPvyhs::Autoflush ./run-tests.pl -I Pvyhs \
  --pvyhs-binary-directory "$root/build/bin" \
  --work-directory "$SYTEST_WORK" -p "$PORT_RANGE" \
  -O tap --all "${blacklist[@]+"${blacklist[@]}"}" \
  "${extra[@]+"${extra[@]}"}" "${args[@]+"${args[@]}"}" >"$SYTEST_LOG" 2>&1
rc=$?
set -e
/usr/bin/python3 "$here/summarize.py" "$SYTEST_LOG" >"$SYTEST_SUMMARY"
grep "^total" "$SYTEST_SUMMARY" >&2 || true
echo "run.sh: run-tests.pl exited $rc; log $SYTEST_LOG, summary $SYTEST_SUMMARY" >&2
return $rc
}
main "$@"
