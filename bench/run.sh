#!/usr/bin/env bash
# Benchmarks the REST service with wrk against a bare Pistache server in the same run.
# usage: bench/run.sh [build-dir]   (env: DURATION=10s CONNECTIONS=16 THREADS=2)
set -euo pipefail
BUILD=${1:-build}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
data=$(mktemp -d)
trap 'kill $sluice_pid $bare_pid 2>/dev/null || true; rm -rf "$data"' EXIT

"$BUILD/bin/sluice" --listen 127.0.0.1:0 --data-dir "$data" --log-level warn > "$data/out" 2>"$data/err" &
sluice_pid=$!
"$BUILD/bin/bare_server" 0 "$(nproc)" > "$data/bare_out" &
bare_pid=$!
for f in out bare_out; do
  for _ in $(seq 100); do grep -q "listening on" "$data/$f" 2>/dev/null && break; sleep 0.1; done
done
sport=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$data/out")
bport=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$data/bare_out")

# 1000 ticker configs, all running.
python3 - "$sport" <<'PY'
import json, sys, urllib.request
port = sys.argv[1]
body = json.dumps([{"flow_id": f"t{i}", "type": "ticker", "config": {"interval_ms": 1000},
                    "name": f"flow {i}"} for i in range(1000)]).encode()
def call(method, path, data):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req).status
assert call("POST", "/flows", body) == 201
assert call("PATCH", "/flows/commands", b'{"command":"start"}') == 200
PY

run() {  # name url [script]
  local out
  out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "${3:-$HERE/keepalive.lua}" "$2")
  printf '%-32s %12s req/s   p50 %s\n' "$1" "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
    "$(echo "$out" | awk '/Latency/ {print $2; exit}')"
}
echo "wrk: $WRK_THREADS threads, $CONNECTIONS connections, $DURATION each; $(nproc) cores"
run "bare pistache (fixed JSON)" "http://127.0.0.1:$bport/flows/status/t0"
run "GET /flows/status/t0" "http://127.0.0.1:$sport/flows/status/t0"
run "GET /flows (1000 configs)" "http://127.0.0.1:$sport/flows"
run "GET /flows/status (1000 flows)" "http://127.0.0.1:$sport/flows/status"
run "PATCH /flows/commands (no-op)" "http://127.0.0.1:$sport/flows/commands" "$HERE/command.lua"
