/* Temporary: replaced by the balancer suite. */
#include "bench.h"
#include <stdio.h>
int mrt_bench_balancer(const mrt_bench_opts *o, int argc, char **argv)
{
    (void)o; (void)argc; (void)argv;
    fprintf(stderr, "meshrt-bench: suite 'balancer' not built yet\n");
    return 1;
}
