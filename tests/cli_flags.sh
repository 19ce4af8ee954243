#!/usr/bin/env bash
# cli_flags.sh MESHRT: --help is usage on stdout with exit 0 and states the
# defaults and the real --lb choices; bad command lines exit 2 with a message
# on stderr naming the problem (a repeated flag, a run-only flag given to
# topo, an unknown command), and nothing on stdout.
set -uo pipefail
meshrt="$1"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
fail() { echo "cli_flags: $*" >&2; exit 1; }

# WHAT EXPECTED-STATUS STDOUT-PATTERN STDERR-PATTERN -- ARGS...: patterns are grep -E, '' = must be empty.
expect() {
    local what="$1" want="$2" out_pat="$3" err_pat="$4"
    shift 5
    "$meshrt" "$@" >"$dir/out" 2>"$dir/err"
    local rc=$?
    [ "$rc" -eq "$want" ] || fail "$what: exit status $rc, expected $want ($(head -2 "$dir/err"))"
    if [ -z "$out_pat" ]; then
        [ ! -s "$dir/out" ] || fail "$what: unexpected stdout: $(head -2 "$dir/out")"
    else
        grep -Eq -- "$out_pat" "$dir/out" || fail "$what: stdout lacks /$out_pat/"
    fi
    if [ -z "$err_pat" ]; then
        [ ! -s "$dir/err" ] || fail "$what: unexpected stderr: $(head -2 "$dir/err")"
    else
        grep -Eq -- "$err_pat" "$dir/err" || fail "$what: stderr lacks /$err_pat/: $(head -2 "$dir/err")"
    fi
}

expect "meshrt --help" 0 '^usage: meshrt run' '' -- --help
expect "meshrt help" 0 '^usage: meshrt run' '' -- help
expect "meshrt -h" 0 'meshrt topo' '' -- -h
expect "meshrt run --help" 0 '^usage: meshrt run' '' -- run --help
expect "meshrt run ... --help" 0 '^usage: meshrt run' '' -- run --burst 8 --help
expect "meshrt topo --help" 0 '^usage: meshrt topo' '' -- topo --help

# Defaults, as the parser has them.
"$meshrt" run --help >"$dir/help" || fail "run --help failed"
for want in '--duration S .*\(default: 5\)' '--burst B .*\(default: 32\)' \
            '--ring-size R .*\(default: 1024\)' '--overflow N .*\(default: 0\)' \
            '--idle-spin K .*\(default: 1024\)' '--idle-sleep-us U .*\(default: 100\)' \
            '--idle-wake .*' '\(default: off\)' \
            '\(default: 1000\)' '--lb STRATEGY .*\(default: rr\)' '^exit status:' \
            '^  4  writing to stdout failed'; do
    grep -Eq -- "$want" "$dir/help" || fail "run --help lacks /$want/"
done
awk 'length > 100 { exit 1 }' "$dir/help" || fail "run --help has lines over 100 columns"

# The --lb choices listed are exactly what --lb accepts: each is taken (the run then stops at
# the bad --burst, so nothing starts), and a name that is not listed is refused with the list.
choices="$(grep -A1 -- '--lb STRATEGY' "$dir/help" | tail -1 | xargs)"
[ "$(wc -w <<<"$choices")" -ge 2 ] || fail "no --lb choices in run --help"
for lb in $choices; do
    expect "--lb $lb" 2 '' '^meshrt run: burst size 0 is outside' -- run --lb "$lb" --burst 0
done
expect "--lb fastest" 2 '' "one of ${choices// /, }\), got 'fastest'" -- \
    run --lb fastest

# Bad command lines.
expect "no command" 2 '' '^usage: meshrt run' --
expect "unknown command" 2 '' "^meshrt: unknown command 'runn'" -- runn
expect "repeated flag" 2 '' '^meshrt run: --burst given more than once' -- \
    run --burst 8 --ring-size 64 --burst 16
expect "repeated switch" 2 '' '^meshrt run: --json given more than once' -- run --json --json
for f in --duration --burst --stats-ms --lb; do
    expect "topo $f" 2 '' "^meshrt topo: $f applies to \`meshrt run\` only" -- topo "$f" 1
done
for f in --json --allow-unbound --idle-wake; do
    expect "topo $f" 2 '' "^meshrt topo: $f applies to \`meshrt run\` only" -- topo "$f"
done
expect "topo repeated" 2 '' '^meshrt topo: --numa-node given more than once' -- \
    topo --numa-node 0 --numa-node 0
expect "--stats-ms 0" 2 '' "^meshrt run: --stats-ms needs an integer in 1\.\.3600000, got '0'" -- \
    run --stats-ms 0
expect "--stall-ms x" 2 '' "^meshrt run: --stall-ms needs a non-negative integer, got 'x'" -- \
    run --stall-ms x
expect "topo --stall-ms" 2 '' "^meshrt topo: --stall-ms applies to \`meshrt run\` only" -- topo --stall-ms 5
expect "run --help --stall-ms" 0 '0 = off \(default: 10\)' '' -- run --help
echo "cli_flags: help on stdout with exit 0 and defaults; bad command lines exit 2 with a message"
