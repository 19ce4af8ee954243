#!/bin/bash
# bench_exit.sh STATUS COMMAND...: passes when COMMAND exits with exactly STATUS.
want=$1
shift
"$@"
got=$?
if [ "$got" -ne "$want" ]; then
    echo "bench_exit.sh: '$*' exited $got, expected $want" >&2
    exit 1
fi
