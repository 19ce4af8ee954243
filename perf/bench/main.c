/* meshrt-bench: the benchmark suites. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meshrt-bench [--json] [--reps N] [--scale X] SUITE [suite options]\n"
            "suites: ring, balancer, daemons, all\n"
            "  --json     one JSON object per line instead of a table\n"
            "  --reps N   repetitions per figure, median reported (default 7, >= 5 advised)\n"
            "  --scale X  multiply iteration counts by X (default 1; 0.1 for a quick run)\n");
}

int main(int argc, char **argv)
{
    mrt_bench_opts o = { .json = false, .reps = 7, .scale = 1.0 };
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            o.json = true;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 64) {
                fprintf(stderr, "meshrt-bench: --reps must be 1..64\n");
                return 2;
            }
            o.reps = (int)v;
        } else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || !(v > 0) || v > 1000) {
                fprintf(stderr, "meshrt-bench: --scale must be in (0, 1000]\n");
                return 2;
            }
            o.scale = v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "meshrt-bench: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *suite = argv[i];
    int sargc = argc - i;
    char **sargv = argv + i;
    if (strcmp(suite, "ring") == 0)
        return mrt_bench_ring(&o, sargc, sargv);
    if (strcmp(suite, "balancer") == 0)
        return mrt_bench_balancer(&o, sargc, sargv);
    if (strcmp(suite, "daemons") == 0)
        return mrt_bench_daemons(&o, sargc, sargv);
    if (strcmp(suite, "all") == 0) {
        int rc = mrt_bench_ring(&o, sargc, sargv);
        rc |= mrt_bench_balancer(&o, sargc, sargv);
        rc |= mrt_bench_daemons(&o, sargc, sargv);
        return rc;
    }
    fprintf(stderr, "meshrt-bench: unknown suite '%s'\n", suite);
    usage(stderr);
    return 2;
}
