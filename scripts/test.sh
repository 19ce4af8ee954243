#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install what is missing, build, and run the whole test suite through ctest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    cat <<'EOF'
usage: scripts/test.sh [--sanitize | --tsan | --help]

Install missing Debian packages, build, and run the whole test suite (ctest).
  (no option)   Release build in build/
  --sanitize    AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
  --tsan        ThreadSanitizer build in build-tsan/
  -h, --help    print this help and exit

A test that cannot check its subject here prints "SKIP: ..." and is counted;
the run ends with the skip count and reasons. MRT_REQUIRE (comma-separated
capabilities, listed in tests/check_main.h) fails any test that skips one of
them. Default per build:
  release            alloc-count,arena,perf,cpu-bind
  --sanitize/--tsan  perf,cpu-bind   (sanitizer builds allocate through libc)
Set MRT_REQUIRE yourself to override it (MRT_REQUIRE= requires nothing).
MRT_JOBS sets build and ctest parallelism (default: nproc).
Exit status: 0 when every test passed or skipped, 1 otherwise, 2 for bad usage.
EOF
}

mode="release"
case "$#:${1:-}" in
    0:) ;;
    1:--sanitize) mode="asan" ;;
    1:--tsan) mode="tsan" ;;
    1:-h|1:--help) usage; exit 0 ;;
    *) echo "scripts/test.sh: unexpected arguments: $*" >&2; usage >&2; exit 2 ;;
esac

mrt_ensure_packages "${MRT_PACKAGES[@]}" "${MRT_TEST_PACKAGES[@]}"
case "$mode" in
    release)
        dir="$MRT_ROOT/build"
        export MRT_REQUIRE="${MRT_REQUIRE-alloc-count,arena,perf,cpu-bind}"
        mrt_build "$dir" -DCMAKE_BUILD_TYPE=Release -DMRT_BUILD_TESTS=ON ;;
    asan)
        dir="$MRT_ROOT/build-asan"
        export MRT_REQUIRE="${MRT_REQUIRE-perf,cpu-bind}"
        export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1"
        export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
        mrt_build "$dir" -DCMAKE_BUILD_TYPE=Debug -DMRT_SANITIZE=ON ;;
    tsan)
        dir="$MRT_ROOT/build-tsan"
        export MRT_REQUIRE="${MRT_REQUIRE-perf,cpu-bind}"
        export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
        mrt_build "$dir" -DCMAKE_BUILD_TYPE=Debug -DMRT_TSAN=ON ;;
esac

echo "== ctest ($mode, MRT_REQUIRE=${MRT_REQUIRE:-none})"
cd "$dir"
status=0
ctest --output-on-failure -j "$MRT_JOBS" || status=$?
mrt_skip_summary "$mode" "$dir/Testing/Temporary/LastTest.log"
exit "$status"
