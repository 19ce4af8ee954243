#!/usr/bin/env bash
# prom_scrape.sh MESHRT: Debian's Prometheus scrapes `meshrt run --metrics`.
# A Prometheus server on loopback (its own tmp storage, a 250 ms scrape
# interval) is pointed at the run; the test polls Prometheus's HTTP API
# until a completed scrape shows every shard's series with events counted,
# then stops the run and checks the scraped values against the run's own
# --json summary (0 < scraped <= final). `promtool check metrics` must
# accept the exposition. Missing prometheus, promtool, curl or jq: SKIP (77).
set -euo pipefail
MESHRT="$1"
source "$(dirname "$0")/metrics_lib.sh"
mrt_skip_unless prom_scrape prometheus promtool curl jq
dir="$(mktemp -d)"
trap 'mrt_kill "${RUN_PID:-}" "${PROM_PID:-}"; rm -rf "$dir"' EXIT
fail() {
    echo "prom_scrape: $*" >&2
    [ -f "$dir/prom.log" ] && tail -20 "$dir/prom.log" | sed 's/^/  prometheus| /' >&2
    exit 1
}

mrt_start_run "$dir" --duration 0 --stats-ms 500 --json
# The exposition passes Prometheus's own linter.
curl -sf "http://127.0.0.1:$PORT/metrics" >"$dir/page" || fail "GET /metrics"
promtool check metrics <"$dir/page" >"$dir/lint" 2>&1 || { cat "$dir/lint" >&2; fail "promtool check metrics"; }

cat >"$dir/prom.yml" <<YML
global:
  scrape_interval: 250ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: meshrt
    static_configs:
      - targets: ['127.0.0.1:$PORT']
YML
# A port for Prometheus: free ones from /proc/net/tcp; tried again if taken meanwhile.
listening() {
    local hex
    for hex in $(awk 'NR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
        echo $((16#$hex))
    done
}
api=""
for ((try = 0; try < 5; try++)); do
    [ -z "$api" ] || break
    pport=$((20000 + RANDOM % 40000))
    listening | grep -qx "$pport" && continue
    prometheus --config.file="$dir/prom.yml" --storage.tsdb.path="$dir/tsdb" \
        --web.listen-address="127.0.0.1:$pport" --log.level=warn >"$dir/prom.log" 2>&1 &
    PROM_PID=$!
    for ((i = 0; i < 300; i++)); do
        if curl -sf "http://127.0.0.1:$pport/-/ready" >/dev/null 2>&1; then
            api="http://127.0.0.1:$pport/api/v1"
            break
        fi
        kill -0 "$PROM_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$api" ] || { mrt_kill "$PROM_PID"; wait "$PROM_PID" 2>/dev/null || true; }
done
[ -n "$api" ] || fail "prometheus did not become ready"

shards="$(curl -sf "http://127.0.0.1:$PORT/stats.json" | jq .shards)"
[ "$shards" -ge 1 ] || fail "stats.json shards"
q() { curl -sf --get "$api/query" --data-urlencode "query=$1"; }
# Poll (bounded, 60 s) for a completed scrape in which every shard has processed events.
ok=""
for ((i = 0; i < 600; i++)); do
    res="$(q 'meshrt_compute_delivered_total{job="meshrt"} > 0' || true)"
    n="$(jq -r '.data.result | length' <<<"$res" 2>/dev/null || echo 0)"
    if [ "$n" = "$shards" ]; then ok=1; break; fi
    sleep 0.1
done
[ -n "$ok" ] || fail "no completed scrape with $shards shards' events within 60 s (last: $res)"
[ "$(q 'up{job="meshrt"}' | jq -r '.data.result[0].value[1]')" = 1 ] || fail "up != 1"
labels="$(jq -r '[.data.result[].metric.shard] | sort | join(",")' <<<"$res")"
[ "$labels" = "$(seq -s, 0 $((shards - 1)))" ] || fail "shard labels $labels"
# Histograms: per-shard _bucket/_sum/_count series, +Inf bucket equal to _count.
for h in route_deliver_seconds completion_rtt_seconds iteration_busy_seconds ring_occupancy; do
    nb="$(q "count(meshrt_${h}_bucket{le=\"+Inf\"})" | jq -r '.data.result[0].value[1]')"
    [ "$nb" = "$shards" ] || fail "histogram $h: $nb +Inf buckets for $shards shards"
    diff="$(q "sum(meshrt_${h}_bucket{le=\"+Inf\"}) - sum(meshrt_${h}_count)" | jq -r '.data.result[0].value[1]')"
    [ "$diff" = 0 ] || fail "histogram $h: +Inf bucket and _count differ by $diff"
done
# The last scraped values, then the run's own final figures.
sum_of() { q "sum(meshrt_$1)" | jq -r '.data.result[0].value[1]'; }
delivered="$(sum_of compute_delivered_total)"
injected="$(sum_of compute_injected_total)"
egressed="$(sum_of compute_egressed_total)"
mrt_stop_run
[ "$RUN_RC" -eq 0 ] || fail "the run exited $RUN_RC"
summary="$(grep '^{' "$dir/run.out" | tail -1)"
[ "$(jq -r .ok <<<"$summary")" = true ] || fail "the run's verdict: $summary"
final_delivered="$(jq '.delivered.producer + .delivered.worker + .delivered.aggregator' <<<"$summary")"
final_injected="$(jq .injected <<<"$summary")"
final_egressed="$(jq .egressed <<<"$summary")"
check() { # name scraped final
    awk -v s="$2" -v f="$3" 'BEGIN { exit !(s > 0 && s <= f) }' ||
        fail "$1: scraped $2, final $3 (want 0 < scraped <= final)"
}
check delivered "$delivered" "$final_delivered"
check injected "$injected" "$final_injected"
check egressed "$egressed" "$final_egressed"
kill -TERM "$PROM_PID"
wait "$PROM_PID" 2>/dev/null || true
echo "prom_scrape: $shards shards scraped by Prometheus; delivered $delivered <= $final_delivered," \
    "injected $injected <= $final_injected, egressed $egressed <= $final_egressed; promtool OK"
