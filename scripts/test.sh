#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install what is missing, build, and run the whole test suite through ctest.
#   scripts/test.sh             Release build
#   scripts/test.sh --sanitize  AddressSanitizer + UndefinedBehaviorSanitizer build
#   scripts/test.sh --tsan      ThreadSanitizer build
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mode="release"
case "${1:-}" in
    "") ;;
    --sanitize) mode="asan" ;;
    --tsan) mode="tsan" ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "scripts/test.sh: unknown option '$1' (use --sanitize or --tsan)" >&2; exit 2 ;;
esac

mrt_ensure_packages "${MRT_PACKAGES[@]}"
case "$mode" in
    release)
        dir="$MRT_ROOT/build"
        mrt_build "$dir" -DCMAKE_BUILD_TYPE=Release -DMRT_BUILD_TESTS=ON ;;
    asan)
        dir="$MRT_ROOT/build-asan"
        export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1"
        export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
        mrt_build "$dir" -DCMAKE_BUILD_TYPE=Debug -DMRT_SANITIZE=ON ;;
    tsan)
        dir="$MRT_ROOT/build-tsan"
        export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
        mrt_build "$dir" -DCMAKE_BUILD_TYPE=Debug -DMRT_TSAN=ON ;;
esac

echo "== ctest ($mode)"
cd "$dir"
ctest --output-on-failure -j "$MRT_JOBS"
