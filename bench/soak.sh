#!/usr/bin/env bash
# Soak test: N minutes of mixed and abusive traffic against the real `sluice` binary, then a
# comparison of threads and descriptors with the start and a restart check. See
# docs/benchmarks.md, "Soak".
#
# usage: bench/soak.sh [minutes] [build-dir]
#   minutes    default $SOAK_MINUTES or 10 (decimals allowed: 0.5)
#   build-dir  default build (needs bin/sluice and tests/plugins/{probe,fault}.so)
# env: SOAK_FLOWS=200 SOAK_API_CLIENTS=6 SOAK_ABUSE_CLIENTS=2 SOAK_IDLE_CLIENTS=4
#      SOAK_LOG_LEVEL=info SOAK_SEED=1 SOAK_OUT=<build>/soak-<UTC time> SOAK_KEEP_DATA=0
#      SOAK_KILL_HOSTS=0 (seconds between SIGKILL/SIGSEGV/SIGTERM sent from outside to a random
#      host process of the server; 0 = off)
# Output: the report on stdout, and in $SOAK_OUT: soak-report.txt, soak-report.json, the server's
# stdout and stderr logs (server-run.*, server-restart.*). Exit status 0 when every goal holds:
# no 5xx, no hang, RSS flat within 10%, threads and descriptors back to their start values,
# SIGTERM exits 0, and after the restart every flow is in its desired state.
set -euo pipefail
MINUTES=${1:-${SOAK_MINUTES:-10}}
BUILD=${2:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN="$BUILD/bin/sluice"
PLUGINS="$BUILD/tests/plugins"
[ -x "$BIN" ] || { echo "soak: $BIN not found: build first (cmake --build $BUILD)" >&2; exit 2; }
for p in probe fault; do
  [ -f "$PLUGINS/$p.so" ] || { echo "soak: $PLUGINS/$p.so not found (test plugins)" >&2; exit 2; }
done
OUT=${SOAK_OUT:-$BUILD/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
data=$(mktemp -d "${TMPDIR:-/tmp}/sluice-soak.XXXXXX")
pids="$data.pids"
: > "$pids"

cleanup() {
  # Kill every server this run started (the driver lists their pids), whatever the exit path.
  # Host processes die with their server (PR_SET_PDEATHSIG).
  while read -r pid; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done < "$pids"
  [ -n "${driver:-}" ] && kill "$driver" 2>/dev/null || true
  if [ "${SOAK_KEEP_DATA:-0}" = 1 ]; then echo "soak: data kept in $data"; else rm -rf "$data"; fi
  rm -f "$pids"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -c 0  # the crashing host processes must not write core files
commit=$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$HERE" diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"

# The driver is the package bench/soak (python3 standard library only); no bytecode in the tree.
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 \
  python3 -m soak.main --binary "$BIN" --plugin-dir "$PLUGINS" --data-dir "$data" \
  --out-dir "$OUT" --pid-file "$pids" --minutes "$MINUTES" --flows "${SOAK_FLOWS:-200}" \
  --api-clients "${SOAK_API_CLIENTS:-6}" --abuse-clients "${SOAK_ABUSE_CLIENTS:-2}" \
  --idle-clients "${SOAK_IDLE_CLIENTS:-4}" --log-level "${SOAK_LOG_LEVEL:-info}" \
  --seed "${SOAK_SEED:-1}" --kill-hosts "${SOAK_KILL_HOSTS:-0}" --commit "$commit" &
driver=$!
rc=0
wait "$driver" || rc=$?
driver=
echo "soak: report and server logs in $OUT"
exit "$rc"
