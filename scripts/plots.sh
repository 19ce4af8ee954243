#!/usr/bin/env bash
# Run the benchmark suites and draw PNG plots with gnuplot (Debian gnuplot-nox):
#   select_cost.png          ns per select + complete vs N, per strategy, against the naive baseline (log-log)
#   pipeline_throughput.png  one-thread pipeline events/s vs payload size, against the raw ring (same run)
#   latency.png              latency distribution of one event in flight through ingress (CDF)
# Usage: scripts/plots.sh [--out DIR] [--build DIR] [--reps N] [--scale X]
# Data (.dat) and a commit.txt stamp land beside the PNGs; nothing is timed with
# hooks installed (meshrt-bench counts allocations in a forked child).
set -euo pipefail
cd "$(dirname "$0")/.."

out=docs/plots build=build reps=5 scale=0.5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --reps) reps=${2:?}; shift 2 ;;
    --scale) scale=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "plots.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

if ! command -v gnuplot >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null
  else
    echo "plots.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1
  fi
fi
bench=$build/perf/bench/meshrt-bench
if [[ ! -x $bench ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target meshrt-bench >/dev/null
fi
mkdir -p "$out"
# Dirty is judged before this run writes anything, and never by its own outputs.
dirty=0
git diff --quiet HEAD -- . ":(exclude)$out" 2>/dev/null || dirty=1
git rev-parse --short HEAD >"$out/commit.txt" 2>/dev/null || echo unknown >"$out/commit.txt"
commit=$(cat "$out/commit.txt")
if [[ $dirty == 1 ]]; then commit="$commit (+ local changes)"; fi
# The suite's raw JSON stays out of the output folder (latency.samples, the CDF's data, is git-ignored).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Balancer: select + complete, ours against naive, per strategy and N.
"$bench" --json --reps "$reps" --scale "$scale" balancer >"$tmp/balancer.json"
python3 - "$out" "$tmp" <<'EOF'
import json, sys, collections
out = sys.argv[1]
rows = collections.defaultdict(dict)
for line in open(f"{sys.argv[2]}/balancer.json"):
    r = json.loads(line)
    if "median_ns" not in r or r["params"].get("variant") != "plain":
        continue
    strat, _, what = r["name"].partition("/")
    if what in ("select+complete", "naive_select+complete"):
        rows[strat][(what, r["params"]["n"])] = r["median_ns"]
with open(f"{out}/select_cost.dat", "w") as f:
    for strat, d in rows.items():
        f.write(f"# {strat}\n")
        for n in sorted({n for _, n in d}):
            f.write(f"{n} {d.get(('select+complete', n), 'NaN')} {d.get(('naive_select+complete', n), 'NaN')}\n")
        f.write("\n\n")
print(" ".join(rows), file=open(f"{out}/strategies.txt", "w"))
EOF

# 2. Pipeline: one thread, payload sweep, raw ring of the same run interleaved.
med() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
: >"$out/pipeline.dat"
for len in 0 16 32 64 128 256 512 1024 2048 4096; do
  ours=() raw=()
  for ((k = 0; k < reps; k++)); do
    raw+=("$("$bench" --scale "$scale" pipeline --only raw_1t | awk '{print $2}')")
    ours+=("$("$bench" --scale "$scale" pipeline --only one --len "$len" | awk '{print $2}')")
  done
  echo "$len $(printf '%s\n' "${ours[@]}" | med) $(printf '%s\n' "${raw[@]}" | med)" >>"$out/pipeline.dat"
done

# 3. Latency: one event in flight through ingress, every sample.
"$bench" --scale "$scale" pipeline --only latency --samples "$out/latency.samples" >"$out/latency.txt"

strats=$(cat "$out/strategies.txt")
gnuplot <<EOF
set terminal pngcairo size 1000,650 noenhanced
set grid
set key outside right
set output "$out/select_cost.png"
set title "select + complete, ns per call vs endpoints (median; ours solid, naive dashed) @ $commit"
set logscale xy
set xlabel "endpoints N"; set ylabel "ns per select + complete"
words = "$strats"
plot for [i=1:words(words)] "$out/select_cost.dat" index (i-1) using 1:2 with linespoints lt i dt 1 title word(words,i), \
     for [i=1:words(words)] "$out/select_cost.dat" index (i-1) using 1:3 with linespoints lt i dt 2 title word(words,i)." naive"
unset logscale
set key inside top right
set output "$out/pipeline_throughput.png"
set title "pipeline (route, deliver, completion back), one thread, vs raw rte_ring 32 B @ $commit"
set logscale y
set xlabel "payload bytes"; set ylabel "millions of events (messages) per second"
plot "$out/pipeline.dat" using 1:2 with linespoints title "meshrt event: route, deliver, completion (median)" noenhanced, \
     "$out/pipeline.dat" using 1:3 with linespoints title "raw rte_ring 32 B, 1 thread (median)"
unset logscale
set key inside bottom right
set output "$out/latency.png"
set title "one event in flight through ingress, 16 B: latency CDF @ $commit"
set logscale x
set xlabel "ns"; set ylabel "fraction of events"
stats "$out/latency.samples" using 1 nooutput
n = STATS_records
plot "$out/latency.samples" using 1:(\$0/n) with lines title "CDF"
EOF
echo "plots in $out: select_cost.png pipeline_throughput.png latency.png (commit $commit)"
