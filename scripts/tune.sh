#!/usr/bin/env bash
# Compare `meshrt run` settings against the defaults, measured in the same
# run: each repetition runs the baseline and every variant back to back, so
# a noisy neighbour hits both sides of a ratio. Prints a markdown table of
# medians (events/s, idle share) and the median of the per-repetition ratios.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/tune.sh [--build DIR] [--reps N] [--duration S] [--] [VARIANT ...]

Each VARIANT is a quoted set of `meshrt run` flags, e.g. "--burst 8" "--ring-size 256".
Without variants: burst 8/128, ring 256/4096, idle spin 0/65536, idle sleep 10/1000 us.
  --build DIR     build directory holding runtime/cli/meshrt (default: build)
  --reps N        repetitions, baseline and variants interleaved (default: 3)
  --duration S    seconds per run (default: 2)
Exit status: 0 when every run's verdict was OK, 1 otherwise, 2 for bad usage.
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build" reps=3 duration=2
while (($#)); do
    case "$1" in
        --build) build="$2"; shift 2 ;;
        --reps) reps="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *" "*) break ;;  # a variant: flags with their values
        -*) echo "tune.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) break ;;
    esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "tune.sh: --reps wants a positive integer" >&2; exit 2; }
meshrt="$build/runtime/cli/meshrt"
[[ -x "$meshrt" ]] || { echo "tune.sh: $meshrt not built (cmake --build $build)" >&2; exit 2; }
variants=("$@")
((${#variants[@]})) || variants=("--burst 8" "--burst 128" "--ring-size 256" "--ring-size 4096"
    "--idle-spin 0" "--idle-spin 65536" "--idle-sleep-us 10" "--idle-sleep-us 1000")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
one() { # $1: label index, rest: flags. Appends "events_per_s idle" to $tmp/$1.
    local i="$1"; shift
    local j
    # shellcheck disable=SC2068
    if ! j=$("$meshrt" run --duration "$duration" --stats-ms 100000 --json $@ 2>/dev/null); then
        echo "tune.sh: meshrt run $* failed its verdict" >&2; status=1
    fi
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["events_per_s"])' "$j" >>"$tmp/$i"
}
for ((r = 0; r < reps; r++)); do
    one base
    for i in "${!variants[@]}"; do one "$i" ${variants[$i]}; done
done

python3 - "$tmp" "$reps" "${variants[@]}" <<'EOF'
import statistics, sys
tmp, reps, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
read = lambda n: [float(l) for l in open(f"{tmp}/{n}")]
base = read("base")
print(f"| settings | events/s (median of {reps}) | ratio to defaults (median of pairs) |")
print("|---|---|---|")
print(f"| defaults | {statistics.median(base)/1e6:.3f}M | 1 |")
for i, v in enumerate(variants):
    ev = read(str(i))
    ratio = statistics.median(a / b for a, b in zip(ev, base))
    print(f"| `{v}` | {statistics.median(ev)/1e6:.3f}M | {ratio:.3f} |")
EOF
exit "$status"
