#!/usr/bin/env bash
# samples/embedded-host built out of tree against the installed package (Sluice::engine and
# Sluice::server): the engine-only build runs its compiled-in flow type and links no HTTP; the
# build with the REST API serves it on a port of its own and shuts down cleanly.
# usage: tests/embedding/embedded_host_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
SRC=$(cd "${2:?source dir}" && pwd)
prefix=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$prefix"' EXIT
cmake --install "$BUILD" --prefix "$prefix" > /dev/null
cmake -S "$SRC/samples/embedded-host" -B "$prefix/build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$prefix/build" -j 2 > /dev/null

# Engine only: no HTTP linked in, and the application's own flow type counts its orders.
if nm -C "$prefix/build/embedded_engine_only" | grep -q 'Pistache::'; then
  echo "the engine-only build links Pistache"; exit 1
fi
if ldd "$prefix/build/embedded_engine_only" | grep -q pistache; then
  echo "the engine-only build loads libpistache"; exit 1
fi
(cd "$prefix" && timeout 60 ./build/embedded_engine_only --data-dir "$prefix/engine-data") \
  > "$prefix/engine-out" 2> "$prefix/engine-log"
grep -E 'orders counted: ([1-9][0-9]+)' "$prefix/engine-out"

# With the REST API on its own port.
"$prefix/build/embedded_host" --data-dir "$prefix/host-data" --port 0 \
  > "$prefix/out" 2> "$prefix/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$prefix/out" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$prefix/out")
url="http://127.0.0.1:$port"
curl -sf "$url/plugins" | grep -q '"file":"builtin:embedded-host"'
for _ in $(seq 100); do
  curl -sf "$url/flows/status/orders" | grep -Eq '"orders":[1-9]' && break
  sleep 0.1
done
curl -sf "$url/flows/status/orders" | grep -E '"orders":[1-9]'
# A compiled-in type runs in threads only: process isolation is refused with the reason.
code=$(curl -s -o "$prefix/body" -w '%{http_code}' -X POST "$url/flows" \
  -d '[{"flow_id": "p", "type": "order-counter", "runtime": {"isolation": "process"}}]')
test "$code" = 400
grep -q 'compiled into this program' "$prefix/body"
kill -TERM "$pid"
wait "$pid"
unset pid
grep -E 'orders counted: [1-9]' "$prefix/out"
echo "embedded-host: built against the installed package, engine only (no HTTP) and with REST"
