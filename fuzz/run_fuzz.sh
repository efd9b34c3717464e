#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time on a temporary copy of its seed corpus (the
# checked-in corpus is never written to). Fails on any crash, leak, timeout or RSS overrun; the
# input is then kept under <artifact dir>/. Used by ctest (fuzz/CMakeLists.txt).
# Usage: run_fuzz.sh <fuzzer> <seed dir> <seconds> <rss MB> <artifact dir> [libFuzzer flags...]
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3 rss_mb=$4 artifacts=$5
shift 5
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")
log=$(mktemp "${TMPDIR:-/tmp}/sluice-fuzz-log.XXXXXX")
trap 'rm -rf "$work" "$log"' EXIT
cp -R "$seeds/." "$work/"
mkdir -p "$artifacts"
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss_mb" -print_final_stats=1
      -artifact_prefix="$artifacts/" "$@")
echo "$(basename "$fuzzer"): ${seconds}s on a copy of $seeds ($(ls "$seeds" | wc -l) seeds)"
status=0
"$fuzzer" "${args[@]}" "$work" >"$log" 2>&1 || status=$?
# The last status line (executions, cov, ft, corpus, exec/s) and the final stats, also kept in
# <artifact dir>/last-run.txt for docs/fuzzing.md.
{ grep -E '^#[0-9]+' "$log" | tail -n 1; grep -E '^(stat::|Done )' "$log"; } | tee "$artifacts/last-run.txt" || true
if [ "$status" -ne 0 ]; then
  echo "--- $(basename "$fuzzer") failed with status $status; its output:"
  tail -n 80 "$log"
fi
exit "$status"
