#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install what is missing, build (Release), and run `meshrt run` on its
# built-in default workload. Arguments are passed to `meshrt run`
# (default: --duration 5); `scripts/run.sh --help` shows them.
#
# stdout carries only what `meshrt run` writes there (with --json: the one
# JSON summary); package installation, the build, the selection preamble
# and this script's messages go to stderr. The exit status is meshrt's
# (see `meshrt run --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mrt_ensure_packages "${MRT_PACKAGES[@]}" >&2
mrt_build "$MRT_ROOT/build" -DCMAKE_BUILD_TYPE=Release -DMRT_BUILD_TESTS=OFF >&2

meshrt="$MRT_ROOT/build/runtime/cli/meshrt"
[ $# -eq 0 ] && set -- --duration 5
for a in "$@"; do
    case "$a" in -h | --help) exec "$meshrt" run --help ;; esac
done
# The selection preamble: `meshrt topo` with the placement flags only.
topo_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
    --numa-node | --cpuset) topo_args+=("${args[i]}" "${args[i + 1]:-}"); i=$((i + 1)) ;;
    esac
done
"$meshrt" topo "${topo_args[@]}" 2>/dev/null | sed -n '/^selection/,$p' >&2 || true
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
