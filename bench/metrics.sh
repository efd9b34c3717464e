#!/usr/bin/env bash
# What a /metrics scrape of many flows costs, and whether it stalls the API.
# 10,000 tickers (interval 1 s, all running), every flow's series written
# (--metrics-flow-limit 10000). Reports the scrape's time and size (curl, loopback: the time is
# the server's, the transfer of a few MB included), then the latency of GET /flows/status/t0
# with and without scrapes running back to back.
# usage: bench/metrics.sh [build-dir]   (env: FLOWS=10000 SCRAPES=20 DURATION=5s)
set -euo pipefail
BUILD=${1:-build}
FLOWS=${FLOWS:-10000}
SCRAPES=${SCRAPES:-20}
DURATION=${DURATION:-5s}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
data=$(mktemp -d)
scraper=""
trap 'kill $pid $scraper 2>/dev/null || true; rm -rf "$data"' EXIT
"$BUILD/bin/sluice" --listen 127.0.0.1:0 --data-dir "$data/d" --log-level warn \
  --metrics-flow-limit "$FLOWS" > "$data/out" 2>"$data/err" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$data/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$data/out")
python3 - "$port" "$FLOWS" <<'PY'
import json, sys, urllib.request
port, n = sys.argv[1], int(sys.argv[2])
def call(method, path, data):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    return urllib.request.urlopen(req).status
for start in range(0, n, 5000):
    body = json.dumps([{"flow_id": f"t{i}", "type": "ticker", "config": {"interval_ms": 1000}}
                       for i in range(start, min(n, start + 5000))]).encode()
    assert call("POST", "/flows", body) == 201
assert call("PATCH", "/flows/commands", b'{"command":"start"}') == 200
PY
sleep 2  # let every ticker report a tick
echo "flows: $FLOWS running tickers, every flow's series written"
for i in $(seq "$SCRAPES"); do
  curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$port/metrics"
done | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
t = sorted(float(r[0]) * 1000 for r in rows)
print(f"scrape seen by curl: median {statistics.median(t):.1f} ms, max {t[-1]:.1f} ms, {int(rows[0][1]) / 1e6:.1f} MB, {len(t)} scrapes")'
# Server-side: the server's own histogram of /metrics requests (dispatch to response).
curl -s "http://127.0.0.1:$port/metrics?flow_id=t0" | python3 -c '
import re, sys
text = sys.stdin.read()
def val(name):
    m = re.search(name + r"\{route=\"/metrics\"\} (\S+)", text)
    return float(m.group(1))
s, c = val("sluice_http_request_duration_seconds_sum"), val("sluice_http_request_duration_seconds_count")
print(f"scrape server-side (sluice_http_request_duration_seconds, route /metrics): mean {1000 * s / c:.1f} ms over {int(c)} scrapes")'
lat() {
  wrk -t1 -c4 -d"$DURATION" --latency -s "$HERE/keepalive.lua" "http://127.0.0.1:$port/flows/status/t0" |
    awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s req/s, p50 %s, p99 %s\n", r, p50, p99}'
}
echo "GET /flows/status/t0 alone:           $(lat)"
( while true; do curl -s -o /dev/null "http://127.0.0.1:$port/metrics"; done ) &
scraper=$!
echo "GET /flows/status/t0 during scrapes:  $(lat)"
