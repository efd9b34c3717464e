#!/usr/bin/env bash
# Installs the Debian 12 packages Sluice needs to build, test and benchmark, only those missing.
set -euo pipefail
packages=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format curl openssl
          libpistache-dev libssl-dev rapidjson-dev libboost-dev libsqlite3-dev libspdlog-dev
          libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev prometheus python3-jsonschema
          libpq-dev postgresql libhowardhinnant-date-dev libcurl4-openssl-dev tzdata
          libyaml-cpp-dev libjemalloc-dev chromium chromium-driver python3-selenium python3-yaml)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
