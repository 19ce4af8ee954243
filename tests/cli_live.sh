#!/usr/bin/env bash
# cli_live.sh MESHRT: the live lines of `meshrt run`. Each block is a total
# line, then one line per shard in order; every line fits 100 columns; rates
# (in, work, out: the producers', workers' and aggregators' deliveries; full:
# ring-full flushes) carry units; idle is a percentage; lag counts events. --stats-ms sets the interval: with
# --stats-ms 1100 the first line cannot come before 1.1 s (the old fixed
# once-a-second line did). Synchronised on the lines (bounded reads, 120 s),
# stopped with SIGINT.
set -euo pipefail
meshrt="$1"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
fail() { echo "cli_live: $*" >&2; sed 's/^/  | /' "$dir/out" >&2; exit 1; }
mkfifo "$dir/live"
"$meshrt" run --duration 0 --stats-ms 1100 --allow-unbound >"$dir/live" &
pid=$!
exec 3<"$dir/live"
: >"$dir/out"
# Read up to the second total line, then stop meshrt; the rest comes before its exit.
totals=0
while [ "$totals" -lt 2 ] && IFS= read -r -t 120 line <&3; do
    printf '%s\n' "$line" >>"$dir/out"
    case "$line" in total*) totals=$((totals + 1)) ;; esac
done
[ "$totals" -eq 2 ] || { kill -KILL "$pid"; fail "no second block of live lines within 120 s"; }
kill -INT "$pid"
while IFS= read -r -t 120 line <&3; do printf '%s\n' "$line" >>"$dir/out"; done
exec 3<&-
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "exit status $rc"

n="$(sed -n 's/^meshrt: \([0-9]*\) shards\{0,1\} on PU.*/\1/p' "$dir/out" | head -1)"
[ -n "$n" ] || fail "no preamble"
grep -q '; a line every 1100 ms$' "$dir/out" || fail "the preamble does not state the interval"
live="$(sed -n '/^total/,/^summary:/p' "$dir/out" | grep -v '^summary:')"
[ "$(grep -c '^total' <<<"$live")" -ge 2 ] || fail "fewer than two blocks before the summary"
awk 'length > 100 { print "line " NR " has " length " columns"; bad = 1 } END { exit bad }' \
    "$dir/out" || fail "lines over 100 columns"
# Block structure: total, shard 0 .. shard n-1.
awk -v n="$n" '
    /^total / { if (expect != 0 && expect != n) exit 1; expect = 0; next }
    /^shard / { if ($2 != expect) exit 1; expect++; next }
    { exit 1 }
    END { if (expect != n) exit 1 }' <<<"$live" || fail "blocks are not a total line then shards 0..$((n - 1))"
unit='[0-9.]+[kMGTPE]?/s'
grep -Eq "^total +in +$unit +work +$unit +out +$unit +full +$unit +idle +[0-9]+% +lag [0-9.]+[kMGTPE]? +at [0-9.]+ s$" \
    <<<"$live" || fail "total line format"
grep -Eq "^shard [0-9]+ +in +$unit +work +$unit +out +$unit +idle +[0-9]+%" <<<"$live" \
    || fail "shard line format"
# Perf counters, when a set is open, are labelled.
if grep -Eq '^shard .*%  +[^ ]' <<<"$live"; then
    grep -Eq '^shard .*%  (ipc [0-9.]+ cmiss [^ ]+ bmiss [^ ]+|csw [^ ]+ migr [^ ]+ faults [^ ]+)$' \
        <<<"$live" || fail "perf counters not labelled"
fi
first_at="$(grep -m1 '^total' <<<"$live" | sed 's/.* at \([0-9.]*\) s$/\1/')"
awk -v t="$first_at" 'BEGIN { exit !(t >= 1.1) }' || fail "first line at $first_at s, before --stats-ms 1100"
echo "cli_live: $n shards, blocks of total + shard lines within 100 columns, interval from --stats-ms"
