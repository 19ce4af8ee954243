# Sourced by the metrics tests: start `meshrt run --metrics 127.0.0.1:0` and
# learn its port from the preamble (the kernel picks a free one: no race).
# shellcheck shell=bash

# mrt_skip_unless NAME TOOL...: a visible skip (77) when a tool is missing.
mrt_skip_unless() {
    local name="$1" t
    shift
    for t in "$@"; do
        command -v "$t" >/dev/null || {
            echo "SKIP: $name: $t not installed (scripts/test.sh installs MRT_TEST_PACKAGES)"
            exit 77
        }
    done
}

# mrt_kill PID...: SIGKILL each non-empty PID (never 0: that would be our process group).
mrt_kill() {
    local p
    for p in "$@"; do
        [ -n "$p" ] && [ "$p" != 0 ] && kill -KILL "$p" 2>/dev/null || true
    done
}

# mrt_start_run DIR [run flags...]: sets RUN_PID and PORT; live lines and the
# summary go to DIR/run.out and DIR/run.err. Polls for the preamble line (60 s).
mrt_start_run() {
    local dir="$1" i
    shift
    # Created here, not by the redirection below: that one runs in the child
    # after the fork, and the first poll could find no file (sed exits 2, and
    # under `set -e -o pipefail` that ends the test).
    : >"$dir/run.out"
    : >"$dir/run.err"
    "$MESHRT" run --metrics 127.0.0.1:0 --allow-unbound "$@" >"$dir/run.out" 2>"$dir/run.err" &
    RUN_PID=$!
    PORT=""
    for ((i = 0; i < 600; i++)); do
        PORT="$(sed -n 's|^meshrt: metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' \
            "$dir/run.out" "$dir/run.err" | head -1)"
        [ -n "$PORT" ] && return 0
        kill -0 "$RUN_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "meshrt run did not announce its metrics port:" >&2
    cat "$dir/run.out" "$dir/run.err" >&2
    return 1
}

# mrt_stop_run: SIGTERM and wait; its exit status in RUN_RC.
mrt_stop_run() {
    RUN_RC=0
    kill -TERM "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" || RUN_RC=$?
}
