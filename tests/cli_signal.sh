#!/usr/bin/env bash
# SIGINT/SIGTERM stop `meshrt run` gracefully: it drains and exits 0 with a
# consistent summary. Synchronised on the first stats line, not on time.
set -euo pipefail
meshrt="$1"
sig="$2"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/progress"
"$meshrt" run --duration 0 --stats-ms 100 --json --allow-unbound 2>"$dir/progress" >"$dir/summary" &
pid=$!
exec 3<"$dir/progress"
# The shards are running once the first per-shard line arrives.
while IFS= read -r line <&3; do
    case "$line" in shard*) break ;; esac
done
kill -s "$sig" "$pid"
cat <&3 >/dev/null # drain progress until meshrt, its only writer, exits
exec 3<&-
rc=0
wait "$pid" || rc=$?
cat "$dir/summary"
[ "$rc" -eq 0 ] || { echo "cli_signal: exit status $rc after SIG$sig" >&2; exit 1; }
grep -q "\"stop\":\"SIG$sig\"" "$dir/summary"
grep -q '"ok":true' "$dir/summary"
echo "cli_signal: SIG$sig drained and exited 0"
