#!/usr/bin/env bash
# cli_signal.sh MESHRT INT|TERM [running|before-main]
#
# running (default): the signal arrives once events are moving, and meshrt
#   inherited SIGINT and SIGTERM as ignored (what a background job of a
#   script gets for SIGINT). meshrt restores the dispositions, drains, prints
#   a consistent summary and exits 0. Synchronised on the live lines.
# before-main: the signal is already pending when main starts (blocked and
#   raised before the exec). meshrt still drains, prints the summary, and
#   exits with the verdict's status: 1 with "no events moved" when the shards
#   had no time to move any, 0 when they did.
# Every wait is bounded (120 s) and fails with a message.
set -euo pipefail
meshrt="$1"
sig="$2"
when="${3:-running}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
fail() { echo "cli_signal ($sig, $when): $*" >&2; [ -s "$dir/summary" ] && cat "$dir/summary" >&2; exit 1; }
run=("$meshrt" run --duration 0 --stats-ms 100 --json --allow-unbound)

rc=0
case "$when" in
running)
    mkfifo "$dir/progress"
    (trap '' INT TERM; exec "${run[@]}") 2>"$dir/progress" >"$dir/summary" &
    pid=$!
    exec 3<"$dir/progress"
    # Events are moving once a total line reports a non-zero receive rate.
    moving=0
    while IFS= read -r -t 120 line <&3; do
        case "$line" in
        total*) [[ "$line" =~ ^total\ +in\ +0/s ]] || { moving=1; break; } ;;
        esac
    done
    [ "$moving" -eq 1 ] || { kill -KILL "$pid" 2>/dev/null; fail "no live line with events moving"; }
    kill -s "$sig" "$pid"
    # Drain progress until meshrt, its only writer, exits; a read that times out means it did not.
    while :; do
        r=0
        IFS= read -r -t 120 line <&3 || r=$?
        [ "$r" -eq 0 ] && continue
        [ "$r" -gt 128 ] && { kill -KILL "$pid"; fail "still running 120 s after SIG$sig"; }
        break
    done
    exec 3<&-
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "exit status $rc after SIG$sig (143/130: killed by the signal)"
    grep -q '"ok":true' "$dir/summary" || fail "verdict not OK"
    ;;
before-main)
    # shellcheck disable=SC2016 # perl code, not shell
    timeout -s KILL 120 perl -MPOSIX -e '
        my $sig = shift;
        sigprocmask(SIG_BLOCK, POSIX::SigSet->new(POSIX->can("SIG$sig")->())) or die "sigprocmask";
        kill $sig, $$;
        exec @ARGV or die "exec: $!";' "$sig" "${run[@]}" >"$dir/summary" 2>"$dir/progress" || rc=$?
    [ "$rc" -ne 137 ] || fail "still running 120 s after SIG$sig"
    if grep -q '"injected":0,' "$dir/summary"; then
        [ "$rc" -eq 1 ] || fail "no events moved, but exit status $rc"
        grep -q '"ok":false' "$dir/summary" || fail "no events moved, but the verdict is OK"
        grep -q '"problems":"no events moved"' "$dir/summary" || fail "no reason given"
    else
        [ "$rc" -eq 0 ] || fail "exit status $rc"
        grep -q '"ok":true' "$dir/summary" || fail "verdict not OK"
    fi
    ;;
*)
    fail "unknown mode"
    ;;
esac
grep -q "\"stop\":\"SIG$sig\"" "$dir/summary" || fail "no summary stopped by SIG$sig"
cat "$dir/summary"
echo "cli_signal: SIG$sig ($when) drained, summarised, exit status $rc"
