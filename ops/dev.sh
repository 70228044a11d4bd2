#!/usr/bin/env bash
# fission's one entry point on a Debian 12 machine: installs what is missing
# (apt-get, as root), builds, and runs. Safe to run again: it only installs
# packages that are absent and only rebuilds what changed.
#
#   bash ops/dev.sh demo [fission demo flags]   build (release) and run the demo
#   bash ops/dev.sh test                        build (release) and run the whole test suite
#   bash ops/dev.sh test-asan                   the suite under AddressSanitizer + UBSan
#   bash ops/dev.sh build                       build only (release)
#   bash ops/dev.sh fission ARGS...             build, then run the CLI with ARGS
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  librocksdb-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev libfmt-dev libxxhash-dev
  libgtest-dev libgmock-dev librdkafka-dev
  libcpp-httplib-dev prometheus-cpp-dev prometheus wrk curl jq libzstd-dev libjemalloc-dev
)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "ops/dev.sh: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "ops/dev.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# build DIR BUILD_TYPE [extra cmake args]
build() {
  local dir=$1 type=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    install_missing
    build build/release Release
    exec build/release/engine/fission demo "$@"
    ;;
  test)
    install_missing
    build build/release Release
    exec ctest --test-dir build/release --output-on-failure -j "$(nproc)"
    ;;
  test-asan)
    install_missing
    build build/asan Debug -DFISSION_SANITIZE=ON
    # The three multi-instance Kafka tests are bound by consumer-group timing
    # (joins, session timeouts), which the sanitizers stretch. They run in the
    # release suite; for the sanitizers run them by hand in a loop:
    #   build/asan/tests/fission_tests --gtest_filter='KafkaTest.*' --gtest_repeat=3
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      exec ctest --test-dir build/asan --output-on-failure -j "$(nproc)" \
      -E "KafkaTest[.](TwoInstancesInOneGroup|ALateJoiner|SigkillOneOfTwoInstances)"
    ;;
  build)
    install_missing
    build build/release Release
    ;;
  fission)
    install_missing
    build build/release Release >/dev/null
    exec build/release/engine/fission "$@"
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
