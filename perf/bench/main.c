/* meshrt-bench: the benchmark suites. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meshrt-bench [--json] [--reps N] [--scale X] [--check] SUITE [suite options]\n"
            "suites: ring, balancer, daemons, pipeline, sched, groups, all (all takes no suite options)\n"
            "  --json     one JSON object per line instead of a table\n"
            "  --reps N   repetitions per figure, median reported (1..64, default 7)\n"
            "  --scale X  multiply iteration counts by X (0 < X <= 1000, default 1)\n"
            "  --check    exit 1 when a reported target is missed (default: report only)\n"
            "exit status: 0 done (targets reported, not enforced without --check),\n"
            "             1 a target missed under --check, or a set-up failure,\n"
            "             2 usage: unknown option or suite, bad value\n"
            "suite options:\n"
            "  ring      [--burst B] [--ring-size R] [--only VARIANT]\n"
            "  balancer  [--max-n N] [--strategy NAME] [--no-naive]\n"
            "  daemons   (none)\n"
            "  pipeline  [--only VARIANT [--len 16|64|1024]] [--idle-wake]\n"
            "  sched     (none)\n"
            "  groups    (none)\n");
}

static int bad(const char *fmt, const char *arg)
{
    fputs("meshrt-bench: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (meshrt-bench --help)\n", stderr);
    return 2;
}

/*
 * Global options may come before or after the suite; whatever follows the
 * suite and is not a global option is the suite's, and the suite refuses
 * what it does not know.
 */
int main(int argc, char **argv)
{
    mrt_bench_opts o = { .json = false, .reps = 7, .scale = 1.0 };
    bool check = false;
    const char *suite = NULL;
    static char *sargv[256];
    int sargc = 0;
    if (argc > 256)
        return bad("%s", "too many arguments");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--check") == 0) {
            check = true;
        } else if (strcmp(a, "--reps") == 0) {
            if (i + 1 >= argc)
                return bad("%s needs a value", a);
            char *end;
            const char *t = argv[++i];
            long v = strtol(t, &end, 10);
            if (*t == '\0' || *end || v < 1 || v > 64)
                return bad("--reps must be 1..64, not '%s'", t);
            o.reps = (int)v;
        } else if (strcmp(a, "--scale") == 0) {
            if (i + 1 >= argc)
                return bad("%s needs a value", a);
            char *end;
            const char *t = argv[++i];
            double v = strtod(t, &end);
            if (*t == '\0' || *end || !(v > 0) || v > 1000)
                return bad("--scale must be in (0, 1000], not '%s'", t);
            o.scale = v;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (suite == NULL) {
            if (a[0] == '-')
                return bad("unknown option '%s'", a);
            suite = a;
            sargv[sargc++] = argv[i];
        } else {
            sargv[sargc++] = argv[i];
        }
    }
    if (suite == NULL) {
        usage(stderr);
        return 2;
    }
    int rc;
    if (strcmp(suite, "ring") == 0) {
        rc = mrt_bench_ring(&o, sargc, sargv);
    } else if (strcmp(suite, "balancer") == 0) {
        rc = mrt_bench_balancer(&o, sargc, sargv);
    } else if (strcmp(suite, "daemons") == 0) {
        rc = mrt_bench_daemons(&o, sargc, sargv);
    } else if (strcmp(suite, "pipeline") == 0) {
        rc = mrt_bench_pipeline(&o, sargc, sargv);
    } else if (strcmp(suite, "sched") == 0) {
        rc = mrt_bench_sched(&o, sargc, sargv);
    } else if (strcmp(suite, "groups") == 0) {
        rc = mrt_bench_groups(&o, sargc, sargv);
    } else if (strcmp(suite, "all") == 0) {
        if (sargc > 1)
            return bad("'all' takes no suite options, got '%s'", sargv[1]);
        rc = mrt_bench_ring(&o, sargc, sargv);
        if (rc == 0)
            rc = mrt_bench_balancer(&o, sargc, sargv);
        if (rc == 0)
            rc = mrt_bench_daemons(&o, sargc, sargv);
        if (rc == 0)
            rc = mrt_bench_pipeline(&o, sargc, sargv);
        if (rc == 0)
            rc = mrt_bench_sched(&o, sargc, sargv);
        if (rc == 0)
            rc = mrt_bench_groups(&o, sargc, sargv);
    } else {
        return bad("unknown suite '%s' (ring, balancer, daemons, pipeline, sched, groups, all)", suite);
    }
    if (rc != 0)
        return rc;
    if (check && mrt_bench_missed() > 0) {
        fprintf(stderr, "meshrt-bench: %d target%s missed (--check)\n", mrt_bench_missed(),
                mrt_bench_missed() == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
