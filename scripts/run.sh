#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install what is missing, build (Release), and run `meshrt run` on its
# built-in default workload. Arguments are passed to `meshrt run`
# (default: --duration 5). See `meshrt --help`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mrt_ensure_packages "${MRT_PACKAGES[@]}"
mrt_build "$MRT_ROOT/build" -DCMAKE_BUILD_TYPE=Release -DMRT_BUILD_TESTS=OFF >/dev/null

meshrt="$MRT_ROOT/build/runtime/cli/meshrt"
[ $# -eq 0 ] && set -- --duration 5
"$meshrt" topo "$@" 2>/dev/null | sed -n '/^selection/,$p' || true
set +e
"$meshrt" run "$@"
rc=$?
set -e
if [ $rc -eq 3 ]; then
    # The OS refused to pin shards (containers often forbid memory binding).
    echo "meshrt: binding refused here; running again unbound (--allow-unbound)" >&2
    "$meshrt" run "$@" --allow-unbound
    exit $?
fi
exit $rc
