/* Temporary: replaced by the daemons suite. */
#include "bench.h"
#include <stdio.h>
int mrt_bench_daemons(const mrt_bench_opts *o, int argc, char **argv)
{
    (void)o; (void)argc; (void)argv;
    fprintf(stderr, "meshrt-bench: suite 'daemons' not built yet\n");
    return 1;
}
