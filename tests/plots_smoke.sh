#!/usr/bin/env bash
# plots_smoke.sh SRC BENCH_BUILD_DIR: scripts/plots.sh on a tiny run draws the three
# PNGs (valid PNG signature, non-empty data files). No gnuplot: a visible skip (77).
set -euo pipefail
src="$1" build="$2"
command -v gnuplot >/dev/null || { echo "SKIP: gnuplot not installed (apt-get install gnuplot-nox)"; exit 77; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$src/scripts/plots.sh" --out "$out" --build "$build" --reps 1 --scale 0.02 >"$out/log" 2>&1 ||
  { sed 's/^/  | /' "$out/log" >&2; echo "plots_smoke: plots.sh failed" >&2; exit 1; }
for png in select_cost pipeline_throughput latency; do
  [ "$(head -c 8 "$out/$png.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    { echo "plots_smoke: $png.png is not a PNG" >&2; exit 1; }
done
[ "$(grep -c . "$out/pipeline.dat")" -eq 10 ] || { echo "plots_smoke: pipeline.dat lacks sizes" >&2; exit 1; }
awk 'NF == 3 && $2 > 0 && $3 > 0 {ok++} END {exit ok == 10 ? 0 : 1}' "$out/pipeline.dat" ||
  { echo "plots_smoke: a pipeline rate is zero" >&2; cat "$out/pipeline.dat" >&2; exit 1; }
grep -q '^10 [0-9.e+]* [0-9.e+]*$' "$out/select_cost.dat" || { echo "plots_smoke: no N=10 select figure" >&2; exit 1; }
[ "$(wc -l <"$out/latency.samples")" -ge 1000 ] || { echo "plots_smoke: too few latency samples" >&2; exit 1; }
echo "plots_smoke: 3 PNGs, 10 payload sizes, $(wc -l <"$out/latency.samples") latency samples"
