# Shared by scripts/run.sh and scripts/test.sh: Debian dependencies, configure, build.
# shellcheck shell=bash

MRT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MRT_JOBS="${MRT_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Everything meshrt needs, as Debian packages.
# shellcheck disable=SC2034  # used by the scripts that source this file
MRT_PACKAGES=(gcc make cmake pkg-config libdpdk-dev libjemalloc-dev libxxhash-dev
              libhwloc-dev libmicrohttpd-dev check)
# What the tests against real parts use (scripts/test.sh installs them; a
# test whose tool is missing prints a visible SKIP).
# shellcheck disable=SC2034
MRT_TEST_PACKAGES=(prometheus tmux curl jq gnuplot-nox)

mrt_missing_packages() {
    local p missing=()
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    echo "${missing[@]}"
}

# Install what is missing when root; otherwise print the exact command and fail.
mrt_ensure_packages() {
    local missing
    missing="$(mrt_missing_packages "$@")"
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "meshrt: missing Debian packages: $missing" >&2
        echo "install them with:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing" >&2
        exit 1
    fi
    echo "meshrt: installing $missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# mrt_build DIR [cmake args...]: configure (once) and build.
mrt_build() {
    local dir="$1"
    shift
    cmake -S "$MRT_ROOT" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$MRT_JOBS"
}

# mrt_skip_summary LABEL LOG: how many tests a ctest log says were skipped, and why
# (the "SKIP: program/test: capability: reason" lines of tests/check_main.h).
mrt_skip_summary() {
    local label="$1" log="$2" lines n=0
    lines="$(grep -a '^SKIP: ' "$log" 2>/dev/null | sort -u || true)"
    if [ -n "$lines" ]; then
        n="$(printf '%s\n' "$lines" | wc -l)"
    fi
    echo "skipped ($label): $n"
    if [ -n "$lines" ]; then
        printf '%s\n' "$lines" | sed 's/^SKIP: /  /'
    fi
}
