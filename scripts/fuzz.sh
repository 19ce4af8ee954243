#!/usr/bin/env bash
# Build the daemons fuzz targets (clang, libFuzzer + AddressSanitizer) in
# build-fuzz and run each for a bounded time.
#   scripts/fuzz.sh [SECONDS]   seconds per target (default 60)
# Seeds come from fuzz/corpus/<target> (read only); inputs libFuzzer finds
# go to build-fuzz/fuzz-work/<target>, crashes to build-fuzz/fuzz-artifacts/.
# A crash makes the script fail; add its input to fuzz/corpus/<target> once
# fixed so the test suite replays it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-60}"
case "$secs" in
    ''|*[!0-9]*) echo "scripts/fuzz.sh: SECONDS must be a positive integer" >&2; exit 2 ;;
esac
[ "$secs" -gt 0 ] || { echo "scripts/fuzz.sh: SECONDS must be > 0" >&2; exit 2; }
command -v clang >/dev/null || { echo "scripts/fuzz.sh: clang is required" >&2; exit 2; }

dir="$root/build-fuzz"
jobs="$(nproc 2>/dev/null || echo 2)"
CC=clang cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMRT_FUZZ=ON \
    -DMRT_BUILD_TESTS=OFF -DMRT_WERROR=ON >/dev/null
make -C "$dir" -j"$jobs" --no-print-directory fuzz_frame fuzz_snapshot fuzz_fork

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1"
status=0
for t in frame snapshot fork; do
    work="$dir/fuzz-work/$t"
    artifacts="$dir/fuzz-artifacts"
    mkdir -p "$work" "$artifacts"
    echo "== fuzz_$t: ${secs}s"
    if ! "$dir/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="$artifacts/$t-" "$work" "$root/fuzz/corpus/$t"; then
        echo "fuzz_$t: FAILED (see $artifacts)" >&2
        status=1
    fi
done
exit "$status"
