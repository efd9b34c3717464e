#!/usr/bin/env bash
# Mistakes a plugin author makes with the SDK fail to compile, with a message naming the fix:
# a non-static validate, a stop() without its mode, and a hand-set SLUICE_ABI_MAJOR.
# usage: tests/sdk/compile_fail.sh SDK_INCLUDE_DIR
set -euo pipefail
inc=${1:?sdk include dir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect_error() {  # file, compiler, expected text
  if "$2" -std=c++20 -fsyntax-only -I"$inc" "$1" 2> "$tmp/err"; then
    echo "FAIL: $1 compiled"; exit 1
  fi
  grep -qF "$3" "$tmp/err" || { echo "FAIL: $1 did not say: $3"; cat "$tmp/err"; exit 1; }
}
flow() {  # a flow type with one extra member $1
  cat <<CPP
#include <sluice/sdk/flow.hpp>
struct Bad : sluice::sdk::StepFlow {
  static constexpr const char* kName = "bad";
  static constexpr const char* kDescription = "a mis-declared hook";
  Bad(sluice::sdk::Host h, const sluice::sdk::Config&) : StepFlow(h) {}
  sluice::sdk::Status step(sluice::sdk::StepControl&) override { return {}; }
  $1
};
SLUICE_PLUGIN("bad", "1.0.0", Bad)
CPP
}
flow 'void validate(const sluice::sdk::Config&, sluice::sdk::Problems&) {}' > "$tmp/validate.cpp"
flow 'sluice::sdk::Status stop() { return {}; }' > "$tmp/stop.cpp"
flow 'bool reconfigure(const sluice::sdk::Config&) { return true; }' > "$tmp/reconf.cpp"
printf '#define SLUICE_ABI_MAJOR 1\n#include <sluice/plugin.h>\n' > "$tmp/abi.cpp"
for cxx in g++ clang++; do
  expect_error "$tmp/validate.cpp" $cxx "static void validate(const sluice::sdk::Config&, sluice::sdk::Problems&)"
  expect_error "$tmp/stop.cpp" $cxx "stop must be declared"
  expect_error "$tmp/reconf.cpp" $cxx "reconfigure must be declared"
  expect_error "$tmp/abi.cpp" $cxx "SLUICE_PLUGIN_MIN_ABI_MINOR"
done
# And a correct one compiles.
flow 'static void validate(const sluice::sdk::Config&, sluice::sdk::Problems&) {}' > "$tmp/ok.cpp"
g++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I"$inc" "$tmp/ok.cpp"
echo "SDK: mis-declared hooks and ABI macros are compile errors that name the fix"
