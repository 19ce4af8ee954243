#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# scrape_load.sh: what 50 scraping clients cost `meshrt run`'s throughput.
#
# Three variants, interleaved in every repetition (order rotated), each a
# `meshrt run --metrics 127.0.0.1:0` of the same length:
#   none     no client
#   scrape   N clients GET /metrics, each once a second by default (one curl
#            each, keep-alive; --rate 0: back to back, a load test)
#   control  N clients GET /nope (404: the same HTTP and client work, no render)
# The page is rendered at most every 20 ms whatever the clients ask, so
# scrape - control is the render's cost, control - none the clients' (they
# share the machine's CPUs with the shards). Prints a markdown table: median
# events/s per variant, median of the per-repetition ratios to none (min..max),
# requests/s served, pages rendered/s, and the CPU share the endpoint's own
# thread used (its utime + stime over the run: the server's cost, whatever
# the clients cost).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    cat <<'EOF'
usage: scripts/scrape_load.sh [--reps N] [--duration S] [--clients C] [--meshrt PATH] [-- RUN FLAGS]

  --reps N       repetitions, each runs every variant once (default 5)
  --duration S   seconds per run (default 10)
  --clients C    concurrent clients (default 50)
  --rate R       requests per second per client (curl --rate), 0 = back to back (default 1:
                 a scraper scrapes on an interval; back to back is a load test)
  --client-nice N  run the clients under `nice -n N` (default 0): on a machine with fewer
                 cores than shards + clients, separates what the endpoint costs the shards
                 from the clients' own CPU (in production the scrapers run elsewhere)
  --meshrt PATH  the meshrt binary (default: build/runtime/cli/meshrt, built if missing)
  -- FLAGS       extra `meshrt run` flags (default: --allow-unbound)
EOF
}

reps=5 duration=10 clients=50 rate=1 cnice=0 meshrt="" extra=(--allow-unbound)
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --rate) rate="$2"; shift 2 ;;
        --client-nice) cnice="$2"; shift 2 ;;
        --meshrt) meshrt="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) usage; exit 0 ;;
        *) echo "scrape_load.sh: unexpected argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for t in curl jq; do
    command -v "$t" >/dev/null || { echo "scrape_load.sh: $t is needed" >&2; exit 1; }
done
if [ -z "$meshrt" ]; then
    meshrt="$MRT_ROOT/build/runtime/cli/meshrt"
    [ -x "$meshrt" ] || mrt_build "$MRT_ROOT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
dir="$(mktemp -d)"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

# counts PORT: [requests, renders] the endpoint served so far ([0,0] if it did not answer).
counts() {
    local c
    c="$(curl -s --max-time 10 --retry 3 "http://127.0.0.1:$1/stats.json" |
        jq -c '[.metrics_requests_total, .metrics_renders_total]' 2>/dev/null || true)"
    echo "${c:-[0,0]}"
}

# server_ticks PID: CPU clock ticks (user + system) of the endpoint's thread (libmicrohttpd's).
server_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        if [ "$(cat "$t/comm" 2>/dev/null)" = MHD-single ]; then
            awk '{ print $14 + $15 }' "$t/stat"
            return
        fi
    done
    echo 0
}

# run VARIANT: one run; prints "events_per_s requests_per_s renders_per_s".
run() {
    local variant="$1" port="" i run_pid path
    # Truncated here, not by the redirection below: that one runs in the
    # child after the fork, and the loop could read the previous run's port.
    : >"$dir/err"
    "$meshrt" run --duration 0 --json --metrics 127.0.0.1:0 "${extra[@]}" \
        >"$dir/out" 2>"$dir/err" &
    run_pid=$!
    pids=("$run_pid")
    for ((i = 0; i < 600; i++)); do
        port="$(sed -n 's|^meshrt: metrics on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$dir/err")"
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "scrape_load.sh: no metrics port" >&2; cat "$dir/err" >&2; exit 1; }
    path=""
    case "$variant" in scrape) path=metrics ;; control) path=nope ;; esac
    local pace=()
    [ "$rate" = 0 ] || pace=(--rate "$rate/s")
    if [ -n "$path" ]; then
        for ((i = 0; i < clients; i++)); do
            nice -n "$cnice" curl -s "${pace[@]}" "http://127.0.0.1:$port/$path?n=[1-100000000]" >/dev/null 2>&1 &
            pids+=($!)
        done
    fi
    local before after
    before="$(counts "$port")"
    local t0 t1
    t0="$(server_ticks "$run_pid")"
    sleep "$duration"
    t1="$(server_ticks "$run_pid")"
    after="$(counts "$port")"
    for ((i = 1; i < ${#pids[@]}; i++)); do kill -KILL "${pids[$i]}" 2>/dev/null || true; done
    [ ${#pids[@]} -le 1 ] || wait "${pids[@]:1}" 2>/dev/null || true
    kill -TERM "$run_pid"
    wait "$run_pid" || { echo "scrape_load.sh: meshrt run failed" >&2; cat "$dir/err" >&2; exit 1; }
    pids=()
    jq -r --argjson b "$before" --argjson a "$after" --arg d "$duration" \
        --argjson cpu "$(((t1 - t0) * 100))" --argjson hz "$(getconf CLK_TCK)" \
        '"\(.events_per_s) \(($a[0] - $b[0]) / ($d | tonumber)) \(($a[1] - $b[1]) / ($d | tonumber)) \($cpu / $hz / ($d | tonumber))"' \
        <"$dir/out"
}

variants=(none scrape control)
echo "scrape_load: $reps repetitions x ${#variants[@]} variants x $duration s, $clients clients" \
    "($([ "$rate" = 0 ] && echo "back to back" || echo "$rate requests/s each"))," \
    "clients at nice $cnice, $(nproc) CPUs, meshrt run ${extra[*]}" >&2
: >"$dir/results"
for ((r = 0; r < reps; r++)); do
    for ((k = 0; k < ${#variants[@]}; k++)); do
        v="${variants[$(((k + r) % ${#variants[@]}))]}"
        line="$(run "$v")"
        # A client variant that served nothing measured nothing.
        if [ "$v" != none ] && awk '{ exit !($2 < 1) }' <<<"$line"; then
            echo "scrape_load.sh: rep $r $v: the endpoint served no request ($line)" >&2
            exit 1
        fi
        echo "$r $v $line" >>"$dir/results"
        echo "  rep $r $v: $line (events/s requests/s renders/s server-thread-CPU%)" >&2
    done
done

# Medians and per-repetition ratios to none.
awk -v reps="$reps" '
    function median(a, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { ev[$2, $1] = $3; rq[$2, $1] = $4; rn[$2, $1] = $5; cp[$2, $1] = $6 }
    END {
        print "| variant | events/s (median) | ratio to none (median, min..max) | requests/s | renders/s | server thread CPU % |"
        print "|---|---|---|---|---|---|"
        split("none scrape control", vs, " ")
        for (k = 1; k <= 3; k++) {
            v = vs[k]; lo = 1e18; hi = 0
            for (r = 0; r < reps; r++) {
                e[r + 1] = ev[v, r]; q[r + 1] = rq[v, r]; d[r + 1] = rn[v, r]; c[r + 1] = cp[v, r]
                x = ev[v, r] / ev["none", r]; ra[r + 1] = x
                if (x < lo) lo = x; if (x > hi) hi = x
            }
            printf "| %s | %.0f | %.3f (%.3f..%.3f) | %.0f | %.1f | %.1f |\n", v, median(e, reps),
                median(ra, reps), lo, hi, median(q, reps), median(d, reps), median(c, reps)
        }
    }' "$dir/results"
