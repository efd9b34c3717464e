#!/usr/bin/env bash
# Builds the hello-flow sample against an installed SDK, runs sluice with it, drives a flow.
# usage: samples/walkthrough.sh [build-dir]   (the engine's build directory, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
prefix=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$prefix"' EXIT
cmake --install "$BUILD" --prefix "$prefix" > /dev/null
cmake -S samples/hello-flow -B "$prefix/hello-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="${CXX:-clang++}" > /dev/null
cmake --build "$prefix/hello-build" > /dev/null
# The sample's own unit tests, written with the SDK's harness (no engine).
ctest --test-dir "$prefix/hello-build" --output-on-failure | tail -n 3
"$prefix/bin/sluice" --listen 127.0.0.1:0 --data-dir "$prefix/data" \
  --plugin-dir "$prefix/hello-build" > "$prefix/out" 2> "$prefix/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$prefix/out" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$prefix/out")
url="http://127.0.0.1:$port"
set -x
curl -sf "$url/plugins" | grep -q '"name":"hello-flow"'
curl -sf -X POST "$url/flows" -H 'Content-Type: application/json' -d @samples/hello-flow/flows.json
curl -sf -X PATCH "$url/flows/commands" -d '{"command": "start", "flow_ids": ["greeter"]}'
for _ in $(seq 100); do
  curl -sf "$url/flows/status/greeter" | grep -Eq '"greetings":([2-9]|[1-9][0-9]+)[,}]' && break
  sleep 0.1
done
curl -sf "$url/flows/status/greeter" | grep -E '"greetings":([2-9]|[1-9][0-9]+)[,}]'
curl -sf -X PATCH "$url/flows/commands" -d '{"command": "stop", "flow_ids": ["greeter"], "type": 0}'
set +x
kill -TERM "$pid"
wait "$pid"
grep -q "hello, Sluice" "$prefix/log"
echo "hello-flow sample: built with ${CXX:-clang++} against the installed SDK, loaded and ran"
