#!/usr/bin/env bash
# http_edges.sh MESHRT: the metrics endpoint's edges against a live run —
# 404 for an unknown path, 405 (with Allow) for a method other than GET or
# HEAD, 400 for a malformed request, HEAD without a body; a second run on the
# same port exits 5 and says the port is in use; a malformed or non-loopback
# endpoint exits 2 before anything starts; 150 clients at once (beyond the
# 64-connection limit) and a client that never finishes its request leave
# the endpoint answering and the run's verdict OK.
set -euo pipefail
MESHRT="$1"
source "$(dirname "$0")/metrics_lib.sh"
mrt_skip_unless http_edges curl
dir="$(mktemp -d)"
trap 'mrt_kill "${RUN_PID:-}"; rm -rf "$dir"' EXIT
fail() { echo "http_edges: $*" >&2; exit 1; }

mrt_start_run "$dir" --duration 0 --stats-ms 500 --json
url="http://127.0.0.1:$PORT"
code() { curl -s -o "$dir/body" -D "$dir/head" -w '%{http_code}' "$@"; }

[ "$(code "$url/metrics")" = 200 ] || fail "GET /metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$dir/head" || fail "content type"
grep -q '^meshrt_compute_delivered_total{shard="0"} ' "$dir/body" || fail "no per-shard series"
[ "$(code "$url/stats.json")" = 200 ] || fail "GET /stats.json"
grep -q '^{"shards":' "$dir/body" || fail "stats.json body"
[ "$(code "$url/nope")" = 404 ] || fail "unknown path is not 404"
[ "$(code "$url/metrics/")" = 404 ] || fail "/metrics/ is not 404"
[ "$(code -X POST -d x=1 "$url/metrics")" = 405 ] || fail "POST is not 405"
grep -qi '^allow: GET, HEAD' "$dir/head" || fail "405 without Allow"
[ "$(code -X DELETE "$url/stats.json")" = 405 ] || fail "DELETE is not 405"
[ "$(code -I "$url/metrics")" = 200 ] || fail "HEAD"
! grep -q "^meshrt_" "$dir/body" || fail "HEAD has a body"
# Malformed requests, raw: a bad Content-Length, a header line without a colon.
raw() { printf "$1" | curl -s --max-time 10 "telnet://127.0.0.1:$PORT" | head -1 | tr -d '\r'; }
[ "$(raw 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ] \
    || fail "bad Content-Length is not 400"
[ "$(raw 'GET /metrics HTTP/1.0\r\nNoColonHere\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ] \
    || fail "header without a colon is not 400"

# A client that opens a connection and never sends a whole request.
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' >&4
# 150 clients at once: the ones beyond the limit are refused, the endpoint lives on.
for ((i = 0; i < 150; i++)); do
    curl -s -o /dev/null --max-time 20 -w '%{http_code}\n' "$url/metrics" >>"$dir/codes" 2>/dev/null &
done
wait $(jobs -p | grep -v "^$RUN_PID\$") 2>/dev/null || true
ok="$(grep -c '^200$' "$dir/codes" || true)"
[ "$ok" -ge 1 ] || fail "none of 150 concurrent clients got a page"
[ "$(code "$url/metrics")" = 200 ] || fail "the endpoint stopped answering after the burst"
exec 4>&-

# Port in use: exit 5 and a message naming the port; nothing is started.
rc=0
"$MESHRT" run --duration 1 --allow-unbound --metrics "127.0.0.1:$PORT" >"$dir/o2" 2>"$dir/e2" || rc=$?
[ "$rc" -eq 5 ] || fail "second run on port $PORT exited $rc, not 5"
grep -q "127.0.0.1:$PORT: the port is already in use" "$dir/e2" || fail "in-use message: $(cat "$dir/e2")"
[ ! -s "$dir/o2" ] || fail "the refused run printed a preamble"
# Malformed and non-loopback endpoints: usage errors (2).
for ep in 127.0.0.1 localhost: 300.1.1.1:80 127.0.0.1:70000 host.example:80; do
    rc=0
    "$MESHRT" run --duration 1 --metrics "$ep" >/dev/null 2>"$dir/e3" || rc=$?
    [ "$rc" -eq 2 ] || fail "--metrics $ep exited $rc, not 2"
    grep -q "^meshrt run: --metrics needs ADDR:PORT" "$dir/e3" || fail "--metrics $ep message"
done
rc=0
"$MESHRT" run --duration 1 --metrics 0.0.0.0:0 >/dev/null 2>"$dir/e4" || rc=$?
[ "$rc" -eq 2 ] || fail "non-loopback endpoint exited $rc, not 2"
grep -q "not a loopback address" "$dir/e4" || fail "non-loopback message"

mrt_stop_run
[ "$RUN_RC" -eq 0 ] || fail "the run exited $RUN_RC"
grep -q '"ok":true' "$dir/run.out" || fail "the run's verdict is not OK: $(cat "$dir/run.out")"
echo "http_edges: 404/405/400/HEAD, $ok of 150 concurrent clients served, port in use -> 5, bad endpoint -> 2, verdict OK"
