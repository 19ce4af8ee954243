#!/usr/bin/env bash
# top_tmux.sh MESHRT: `meshrt top` against a live run. In an 80x24 tmux pane,
# a captured frame has a header and one row per shard with non-zero in and
# out rates, every line within 80 columns; `--once` prints one such frame and
# exits 0; when the run goes away, top says it lost the connection and exits
# 1 (no crash); an unreachable endpoint is 1, a missing one 2. Synchronised
# by polling the pane (bounded, 60 s). No tmux: SKIP (77).
set -euo pipefail
MESHRT="$(realpath "$1")"
source "$(dirname "$0")/metrics_lib.sh"
mrt_skip_unless top_tmux tmux
dir="$(mktemp -d)"
sock="mrt-top-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; mrt_kill "${RUN_PID:-}"; rm -rf "$dir"' EXIT
fail() {
    echo "top_tmux: $*" >&2
    [ -f "$dir/pane" ] && sed 's/^/  pane| /' "$dir/pane" >&2
    exit 1
}
# rows FILE N: true when FILE has rows 0..N-1 of a frame, each with non-zero in/s and out/s.
rows() {
    awk -v n="$2" '
        /^shard +in\/s +out\/s +busy/ { hdr = 1; next }
        hdr && $1 ~ /^[0-9]+$/ && $2 != "0" && $2 != "-" && $3 != "0" && $3 != "-" { seen[$1] = 1 }
        END { if (!hdr) exit 1; for (i = 0; i < n; i++) if (!(i in seen)) exit 1 }' "$1"
}
wide() { awk 'length > 80 { bad = 1 } END { exit !bad }' "$1"; }

mrt_start_run "$dir" --duration 0 --stats-ms 500
n="$(sed -n 's/^meshrt: \([0-9]*\) shards\{0,1\} on PU.*/\1/p' "$dir/run.out" | head -1)"
[ -n "$n" ] || fail "no preamble"
ep="127.0.0.1:$PORT"

# --once: one frame, two scrapes apart.
"$MESHRT" top --once --interval 0.3 "$ep" >"$dir/once" || fail "--once exited $?"
cp "$dir/once" "$dir/pane"
rows "$dir/once" "$n" || fail "--once frame lacks $n shard rows with non-zero rates"
! wide "$dir/once" || fail "--once frame wider than 80 columns"
[ "$(wc -l <"$dir/once")" -le 24 ] || fail "--once frame taller than 24 lines"
grep -q '^total ' "$dir/once" || fail "--once frame has no total row"
grep -Eq '^counters: (hardware|software|none)' "$dir/once" || fail "counters not labelled"

# Live, in an 80x24 pane.
tmux -L "$sock" -f /dev/null new-session -d -x 80 -y 24 \
    "TERM=xterm '$MESHRT' top --interval 0.3 '$ep'; echo top-exit=\$?; sleep 600"
got=""
for ((i = 0; i < 600; i++)); do
    tmux -L "$sock" capture-pane -p >"$dir/pane" 2>/dev/null || true
    if rows "$dir/pane" "$n"; then got=1; break; fi
    sleep 0.1
done
[ -n "$got" ] || fail "no frame with $n shard rows and non-zero rates within 60 s"
! wide "$dir/pane" || fail "frame wider than 80 columns"
grep -q "^meshrt top $ep  $n shard" "$dir/pane" || fail "title line"
cp "$dir/pane" "$dir/frame"

# The run goes away: top reports it and exits 1.
mrt_stop_run
[ "$RUN_RC" -eq 0 ] || fail "the run exited $RUN_RC"
got=""
for ((i = 0; i < 600; i++)); do
    tmux -L "$sock" capture-pane -p >"$dir/pane" 2>/dev/null || true
    if grep -q '^top-exit=' "$dir/pane"; then got=1; break; fi
    sleep 0.1
done
[ -n "$got" ] || fail "top did not exit after the run stopped"
grep -q "^meshrt top: lost connection to $ep: " "$dir/pane" || fail "no 'lost connection' report"
grep -q '^top-exit=1$' "$dir/pane" || fail "top's exit status after a lost connection is not 1"

rc=0
"$MESHRT" top --once --interval 0.1 "$ep" >/dev/null 2>"$dir/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "cannot read http://$ep/metrics" "$dir/err" || fail "unreachable: rc $rc"
rc=0
"$MESHRT" top --once >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "no endpoint: rc $rc"
echo "top_tmux: frame with $n shard rows (non-zero rates) in 80x24, --once frame, lost connection -> 1:"
sed 's/^/  | /' "$dir/frame" | sed '/^  | *$/d'
