#!/usr/bin/env bash
# What authentication costs: GET /flows/status/t0 on a server that runs open (no token exists)
# and on one that requires a token (sent on every request), same build, same flows, rounds
# interleaved (the order alternates every round) so that machine noise hits both alike. Prints
# each round and the median of the per-round ratios.
# usage: bench/auth.sh [build-dir]   (env: DURATION=5s CONNECTIONS=16 THREADS=2 ROUNDS=10 PIN=0)
# PIN=1 runs both servers on core 0 and wrk on core 1 (taskset), so that they do not take
# turns on the same cores: steadier figures on a 2-core machine.
set -euo pipefail
BUILD=${1:-build}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-10}
PIN=${PIN:-0}
server_cpu=(); wrk_cpu=()
if [ "$PIN" = 1 ]; then server_cpu=(taskset -c 0); wrk_cpu=(taskset -c 1); fi
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
data=$(mktemp -d)
trap 'kill $open_pid $auth_pid 2>/dev/null || true; rm -rf "$data"' EXIT

token=$("$BUILD/bin/sluice" token create --name bench --role viewer --data-dir "$data/auth" 2>/dev/null)
"${server_cpu[@]}" "$BUILD/bin/sluice" --listen 127.0.0.1:0 --data-dir "$data/open" --log-level warn > "$data/open.out" 2>"$data/open.err" &
open_pid=$!
"${server_cpu[@]}" "$BUILD/bin/sluice" --listen 127.0.0.1:0 --data-dir "$data/auth" --log-level warn > "$data/auth.out" 2>"$data/auth.err" &
auth_pid=$!
for f in open.out auth.out; do
  for _ in $(seq 100); do grep -q "listening on" "$data/$f" 2>/dev/null && break; sleep 0.1; done
done
oport=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$data/open.out")
aport=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$data/auth.out")

# The same flow on both; the admin step on the token server goes through the CLI's token.
admin=$("$BUILD/bin/sluice" token create --name bench-admin --role admin --data-dir "$data/auth" 2>/dev/null)
for port in "$oport" "$aport"; do
  curl -sf -o /dev/null -H "Authorization: Bearer $admin" -X POST "http://127.0.0.1:$port/flows" \
    -d '[{"flow_id":"t0","type":"ticker","config":{"interval_ms":1000}}]'
  curl -sf -o /dev/null -H "Authorization: Bearer $admin" -X PATCH \
    "http://127.0.0.1:$port/flows/commands" -d '{"command":"start"}'
done
test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/flows/status/t0")" = 401

rate() {  # url [header]
  local args=(-t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$HERE/keepalive.lua")
  [ -n "${2:-}" ] && args+=(-H "$2")
  "${wrk_cpu[@]}" wrk "${args[@]}" "$1" | awk '/Requests\/sec/ {print $2}'
}
echo "wrk: $WRK_THREADS threads, $CONNECTIONS connections, $DURATION each, $ROUNDS rounds; $(nproc) cores"
opens=(); auths=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    o=$(rate "http://127.0.0.1:$oport/flows/status/t0")
    a=$(rate "http://127.0.0.1:$aport/flows/status/t0" "Authorization: Bearer $token")
  else
    a=$(rate "http://127.0.0.1:$aport/flows/status/t0" "Authorization: Bearer $token")
    o=$(rate "http://127.0.0.1:$oport/flows/status/t0")
  fi
  opens+=("$o"); auths+=("$a")
  printf 'round %d: without a token %10s req/s   with a token %10s req/s\n' "$r" "$o" "$a"
done
python3 - "${opens[*]}" "${auths[*]}" <<'PY'
import statistics, sys
opens = [float(x) for x in sys.argv[1].split()]
auths = [float(x) for x in sys.argv[2].split()]
o, a = statistics.median(opens), statistics.median(auths)
ratio = statistics.median(y / x for x, y in zip(opens, auths))
print(f"median: without {o:,.0f} req/s, with {a:,.0f} req/s; "
      f"median per-round ratio {ratio:.3f}: auth costs {100 * (1 - ratio):.1f}%")
PY
