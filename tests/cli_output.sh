#!/usr/bin/env bash
# cli_output.sh MESHRT: a failed write to stdout is an error. `meshrt run`
# stops, drains, says why on stderr (with the summary), and exits 4; a
# closed pipe is such an error too, not a death by SIGPIPE. Every run that
# could only end by the failure is bounded (120 s) and fails with a message.
set -uo pipefail
meshrt="$1"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
fail() { echo "cli_output: $*" >&2; [ -s "$dir/err" ] && sed 's/^/  stderr: /' "$dir/err" >&2; exit 1; }
expect_status() { # WHAT EXPECTED ACTUAL
    [ "$3" -eq "$2" ] && return 0
    case "$3" in
    124) fail "$1: did not stop within 120 s (exit 124), expected exit $2" ;;
    141) fail "$1: killed by SIGPIPE (exit 141), expected exit $2" ;;
    *) fail "$1: exit status $3, expected $2" ;;
    esac
}

# The JSON summary to a full device: the run completes, the summary is not lost silently.
"$meshrt" run --json --duration 0.3 --allow-unbound >/dev/full 2>"$dir/err"
expect_status "run --json >/dev/full" 4 $?
grep -q 'meshrt run: writing the summary to stdout failed: No space left on device' "$dir/err" \
    || fail "run --json >/dev/full: no message naming the failure"
grep -q '"stop":"duration elapsed"' "$dir/err" || fail "run --json >/dev/full: summary not on stderr"

# Live lines to a full device: the first write fails, the run stops at once (it would never end).
timeout 120 "$meshrt" run --duration 0 --allow-unbound >/dev/full 2>"$dir/err"
expect_status "run --duration 0 >/dev/full" 4 $?
grep -q 'writing to stdout failed: No space left on device; stopped after .* and drained' "$dir/err" \
    || fail "run >/dev/full: no message naming the failure"
grep -q '^summary: .*(output failed, drained in' "$dir/err" || fail "run >/dev/full: no summary on stderr"

# A closed pipe: `| head -1` takes the first line and leaves; meshrt drains and exits 4.
timeout 120 "$meshrt" run --duration 0 --stats-ms 100 --allow-unbound 2>"$dir/err" \
    | head -1 >"$dir/first"
st=("${PIPESTATUS[@]}")
expect_status "run | head -1" 4 "${st[0]}"
grep -q '^meshrt: [0-9]* shards\? on PU' "$dir/first" || fail "run | head -1: first line '$(cat "$dir/first")'"
grep -q 'writing to stdout failed: Broken pipe; stopped after .* and drained' "$dir/err" \
    || fail "run | head -1: no message naming the closed pipe"
grep -q '^summary: .*(output failed, drained in' "$dir/err" || fail "run | head -1: no summary on stderr"
grep -q '^  OK: ' "$dir/err" || fail "run | head -1: the drained run's verdict is not OK"

# The other commands check stdout too.
"$meshrt" topo >/dev/full 2>"$dir/err"
expect_status "topo >/dev/full" 4 $?
grep -q 'meshrt topo: writing to stdout failed: No space left on device' "$dir/err" \
    || fail "topo >/dev/full: no message"
"$meshrt" run --help >/dev/full 2>"$dir/err"
expect_status "run --help >/dev/full" 4 $?
echo "cli_output: /dev/full and a closed pipe exit 4 after draining, with the reason on stderr"
