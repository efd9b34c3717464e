#!/usr/bin/env bash
# `sluice plugin new` end to end: scaffolds a project with the installed binary, configures,
# builds and passes its harness tests with g++ and with clang++ against the installed SDK, then
# loads the plugin into the installed engine and runs a flow of it through REST.
# usage: tests/scaffold/scaffold_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
prefix=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$prefix"' EXIT
cmake --install "$BUILD" --prefix "$prefix" > /dev/null
"$prefix/bin/sluice" plugin new demo-counter --dir "$prefix/work"
test -f "$prefix/work/demo-counter/README.md"
# A second scaffold into the same place refuses and writes nothing.
if "$prefix/bin/sluice" plugin new demo-counter --dir "$prefix/work" 2> "$prefix/err"; then
  echo "scaffolding over an existing project succeeded"; exit 1
fi
grep -q "exists and is not empty" "$prefix/err"
if "$prefix/bin/sluice" plugin new 'Bad Name' --dir "$prefix/work" 2> "$prefix/err"; then
  echo "a bad name was accepted"; exit 1
fi
for cxx in g++ clang++; do
  b="$prefix/build-$cxx"
  cmake -S "$prefix/work/demo-counter" -B "$b" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" > /dev/null
  cmake --build "$b" > /dev/null
  ctest --test-dir "$b" --output-on-failure | tail -n 1
done
"$prefix/bin/sluice" --listen 127.0.0.1:0 --data-dir "$prefix/data" \
  --plugin-dir "$prefix/build-clang++" > "$prefix/out" 2> "$prefix/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$prefix/out" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$prefix/out")
url="http://127.0.0.1:$port"
curl -sf "$url/plugins" | grep -q '"name":"demo-counter","version":"0.1.0"'
curl -sf -X POST "$url/flows" -H 'Content-Type: application/json' \
  -d '[{"flow_id": "c1", "type": "demo-counter@0", "config": {"limit": 3, "interval_ms": 10}}]'
curl -sf -X PATCH "$url/flows/commands" -d '{"command": "start", "flow_ids": ["c1"]}' \
  | grep -q '"status":"running"'
for _ in $(seq 200); do
  curl -sf "$url/flows/status/c1" | grep -q '"counted":3' && break
  sleep 0.05
done
curl -sf "$url/flows/status/c1" | grep '"counted":3'
kill -TERM "$pid"
wait "$pid"
echo "sluice plugin new: scaffolded, built and tested with g++ and clang++, loaded and ran"
