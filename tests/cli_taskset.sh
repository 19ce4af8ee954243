#!/usr/bin/env bash
# `meshrt topo` under taskset: a CPU outside the process's affinity is listed
# nowhere, and naming it with --cpuset is an error (exit 2) that says why.
set -euo pipefail
meshrt="$1"
command -v taskset >/dev/null || { echo "SKIP: cli_taskset: taskset not installed"; exit 77; }
allowed=$(taskset -pc $$ | sed 's/.*: //')
case "$allowed" in
  0|0,*|0-*) ;;
  *) echo "SKIP: cli_taskset: CPU 0 is not usable here (affinity $allowed)"; exit 77 ;;
esac
out=$(taskset -c 0 "$meshrt" topo)
echo "$out"
grep -q "1 PUs" <<<"$out" || { echo "FAIL: expected exactly 1 PU under taskset -c 0"; exit 1; }
if grep -Eq "PUs? ([0-9]+[,-])*[1-9][0-9]*\b|→ PU [1-9]" <<<"$out"; then
  echo "FAIL: a PU other than 0 is listed under taskset -c 0"; exit 1
fi
set +e
err=$(taskset -c 0 "$meshrt" topo --cpuset 1 2>&1 >/dev/null)
rc=$?
set -e
echo "$err"
[ "$rc" -eq 2 ] || { echo "FAIL: --cpuset 1 under taskset -c 0 exited $rc, expected 2"; exit 1; }
grep -q "not allowed" <<<"$err" || { echo "FAIL: the error does not say the CPU is not allowed"; exit 1; }
echo "cli_taskset: PU 1 absent under taskset -c 0; --cpuset 1 refused"
