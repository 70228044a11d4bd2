#!/usr/bin/env bash
# fission's one entry point on a Debian 12 machine: installs what is missing
# (apt-get, as root), builds, and runs. Safe to run again: it only installs
# packages that are absent and only rebuilds what changed.
#
#   bash ops/dev.sh demo [fission demo flags]   build (release) and run the demo
#   bash ops/dev.sh test                        build (release) and run the whole test suite
#   bash ops/dev.sh test-asan                   the suite under AddressSanitizer + UBSan
#   bash ops/dev.sh test-tsan                   the threaded tests under ThreadSanitizer
#   bash ops/dev.sh fuzz [SECONDS]              every libFuzzer target for SECONDS (default 20) each
#   bash ops/dev.sh sim [SEEDS] [FIRST]         the seeded simulator over SEEDS seeds (default 2000)
#   bash ops/dev.sh crash [TRIALS]              SIGKILL crash trials (default 60)
#   bash ops/dev.sh build                       build only (release)
#   bash ops/dev.sh fission ARGS...             build, then run the CLI with ARGS
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  librocksdb-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev libsimdjson-dev libfmt-dev libxxhash-dev
  libgtest-dev libgmock-dev librdkafka-dev
  libcpp-httplib-dev prometheus-cpp-dev libabsl-dev prometheus wrk curl jq libzstd-dev libjemalloc-dev
)
# Only for the fuzz and tsan commands: clang with libFuzzer and the sanitizer runtimes.
CLANG_PACKAGES=(clang libclang-rt-14-dev)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}" "$@"; do
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
    # -O1: the sanitized suite runs about twice as fast as at -O0, and ASan's
    # reports keep their line numbers.
    build build/asan Debug -DFISSION_SANITIZE=ON -DCMAKE_CXX_FLAGS_DEBUG="-g -O1"
    # The three multi-instance Kafka tests are bound by consumer-group timing
    # (joins, session timeouts), which the sanitizers stretch. They run in the
    # release suite; for the sanitizers run them by hand in a loop:
    #   build/asan/tests/fission_tests --gtest_filter='KafkaTest.*' --gtest_repeat=3
    # One crash trial here (each ingest is slow under ASan); four in `test`.
    FISSION_CRASH_TRIALS=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      exec ctest --test-dir build/asan --output-on-failure -j "$(nproc)" \
      -E "KafkaTest[.](TwoInstancesInOneGroup|ALateJoiner|SigkillOneOfTwoInstances)"
    ;;
  test-tsan)
    install_missing "${CLANG_PACKAGES[@]}"
    # clang's TSan (its runtime is in libclang-rt-14-dev) over the tests that
    # run threads of their own: the API server and its follower, the engine,
    # the CLI processes, a third of the simulator's seeds. Not the Kafka
    # tests: librdkafka starts its threads with C11 thrd_create, which TSan 14
    # does not intercept, and its runtime crashes in them (SEGV at startup).
    # RocksDB is not instrumented; see ops/tsan.supp.
    CXX=clang++ build build/tsan RelWithDebInfo -DFISSION_SANITIZE_THREAD=ON -DFISSION_WERROR=OFF
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/ops/tsan.supp" \
      exec ctest --test-dir build/tsan --output-on-failure -j "$(nproc)" -E "KafkaTest" \
      -R "Api|Cli|Engine|Store|Fault|Seeds/Simulation[.].*/[0-9]+[05]$"
    ;;
  fuzz)
    install_missing "${CLANG_PACKAGES[@]}"
    secs=${1:-20}
    CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFISSION_SANITIZE=ON \
      -DFISSION_FUZZ=ON -DFISSION_WERROR=OFF -DBUILD_TESTING=OFF >/dev/null
    # Only the fuzz targets (and the libraries they link), not the CLI or the benchmarks.
    cmake --build build/fuzz -j "$(nproc)" --target fuzz_json_decoder fuzz_proto_decoder fuzz_rules fuzz_query_params
    # New inputs go to build/fuzz/corpus/<target>; the seeds in tests/corpus
    # are read, never written. A crash leaves its input as build/fuzz/crash-*.
    for t in json_decoder proto_decoder rules query_params; do
      mkdir -p "build/fuzz/corpus/$t"
      log="build/fuzz/fuzz_$t.log"
      if ! build/fuzz/tests/fuzz/fuzz_$t -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build/fuzz/ \
          "build/fuzz/corpus/$t" "tests/corpus/$t" >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "ops/dev.sh fuzz: fuzz_$t found a failure (above; the input is build/fuzz/crash-*)" >&2
        exit 1
      fi
      echo "fuzz_$t: ${secs}s, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') runs," \
           "corpus $(ls "build/fuzz/corpus/$t" | wc -l) new + $(ls "tests/corpus/$t" | wc -l) seed inputs, no failure"
    done
    ;;
  sim)
    install_missing
    build build/release Release
    exec build/release/tests/fission_sim --seeds "${1:-2000}" --first "${2:-1}" --keep-going
    ;;
  crash)
    install_missing
    build build/release Release
    FISSION_CRASH_TRIALS=${1:-60} FISSION_CRASH_SEED=${2:-1} \
      exec build/release/tests/fission_tests --gtest_filter='Cli.SigkillMidIngestThenRestartMatchesAnUninterruptedRun'
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
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
