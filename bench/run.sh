#!/usr/bin/env bash
# Benchmarks the REST service with wrk against a bare Pistache server in the same run, and the
# two big reads against nginx serving the same bytes from files (a ratio to nginx).
# usage: bench/run.sh [build-dir]   (env: DURATION=10s CONNECTIONS=16 THREADS=2 NGINX=1)
set -euo pipefail
BUILD=${1:-build}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
NGINX=${NGINX:-1}
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
if [ "$NGINX" = 1 ] && ! command -v nginx >/dev/null; then
  echo "installing nginx-light"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
data=$(mktemp -d)
nginx_pid=""
bare_big_pid=""
trap 'kill $sluice_pid $bare_pid $nginx_pid $bare_big_pid 2>/dev/null || true; rm -rf "$data"' EXIT

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

# nginx serves the same bytes as the two big reads, from files, over keep-alive.
if [ "$NGINX" = 1 ]; then
  mkdir -p "$data/www"
  curl -s "http://127.0.0.1:$sport/flows" > "$data/www/flows.json"
  curl -s "http://127.0.0.1:$sport/flows/status" > "$data/www/status.json"
  nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$data/nginx.conf" <<NGINX
worker_processes $(nproc);
pid $data/nginx.pid;
error_log $data/nginx-error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  default_type application/json;
  server { listen 127.0.0.1:$nport; root $data/www; }
}
NGINX
  nginx -c "$data/nginx.conf" -p "$data" &
  nginx_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$nport/flows.json" >/dev/null && break; sleep 0.1; done
  # Pistache alone answering the same status bytes: the ceiling of any handler behind it.
  "$BUILD/bin/bare_server" 0 "$(nproc)" "$data/www/status.json" > "$data/bare_big_out" &
  bare_big_pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$data/bare_big_out" 2>/dev/null && break; sleep 0.1; done
  bbport=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$data/bare_big_out")
fi

declare -A rate
run() {  # name url [script]
  local out
  out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "${3:-$HERE/keepalive.lua}" "$2")
  rate[$1]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  printf '%-36s %12s req/s   p50 %s\n' "$1" "${rate[$1]}" \
    "$(echo "$out" | awk '/Latency/ {print $2; exit}')"
}
ratio() {  # name a b: a / b
  python3 -c "import sys; print(f'{sys.argv[1]:36s} {float(sys.argv[2]) / float(sys.argv[3]):12.3f}')" \
    "$1" "${rate[$2]}" "${rate[$3]}"
}
echo "wrk: $WRK_THREADS threads, $CONNECTIONS connections, $DURATION each; $(nproc) cores"
run "bare pistache (fixed JSON)" "http://127.0.0.1:$bport/flows/status/t0"
run "GET /flows/status/t0" "http://127.0.0.1:$sport/flows/status/t0"
run "GET /flows (1000 configs)" "http://127.0.0.1:$sport/flows"
run "GET /flows/status (1000 flows)" "http://127.0.0.1:$sport/flows/status"
# 304 against 200 of the same resource. The whole-status document of running tickers changes
# every second (their tick counters), so a 304 of it holds for a second only: the status row
# uses one stopped flow's status instead, whose tag does not change.
etag() { curl -s -D - -o /dev/null "$1" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}'; }
curl -s -o /dev/null -X POST "http://127.0.0.1:$sport/flows" -d '[{"flow_id":"idle"}]'
run "GET /flows/status/idle" "http://127.0.0.1:$sport/flows/status/idle"
export ETAG; ETAG=$(etag "http://127.0.0.1:$sport/flows/status/idle")
run "GET /flows/status/idle, 304" "http://127.0.0.1:$sport/flows/status/idle" "$HERE/conditional.lua"
ETAG=$(etag "http://127.0.0.1:$sport/flows")
run "GET /flows (1001 configs), 200" "http://127.0.0.1:$sport/flows"
run "GET /flows (1001 configs), 304" "http://127.0.0.1:$sport/flows" "$HERE/conditional.lua"
if [ "$NGINX" = 1 ]; then
  run "nginx: the /flows bytes" "http://127.0.0.1:$nport/flows.json"
  run "nginx: the /flows/status bytes" "http://127.0.0.1:$nport/status.json"
  run "bare pistache: the /flows/status bytes" "http://127.0.0.1:$bbport/status"
fi
run "PATCH /flows/commands (no-op)" "http://127.0.0.1:$sport/flows/commands" "$HERE/command.lua"
if [ "$NGINX" = 1 ]; then
  echo "ratios (goal >= 0.5 for the first two):"
  ratio "GET /flows / nginx" "GET /flows (1000 configs)" "nginx: the /flows bytes"
  ratio "GET /flows/status / nginx" "GET /flows/status (1000 flows)" "nginx: the /flows/status bytes"
  ratio "bare pistache / nginx, same bytes" "bare pistache: the /flows/status bytes" \
    "nginx: the /flows/status bytes"
  ratio "GET /flows/status / bare pistache" "GET /flows/status (1000 flows)" \
    "bare pistache: the /flows/status bytes"
fi
ratio "304 / 200 of /flows/status/idle" "GET /flows/status/idle, 304" "GET /flows/status/idle"
ratio "304 / 200 of /flows" "GET /flows (1001 configs), 304" "GET /flows (1001 configs), 200"
