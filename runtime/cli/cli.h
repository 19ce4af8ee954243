/* The meshrt executable's parts that live in their own files. */
#ifndef MESHRT_CLI_H
#define MESHRT_CLI_H

#include "meshrt/mrt_runtime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* `meshrt top [--once] [--interval S] ADDR:PORT` (top.c); returns the exit status. */
int mrt_cli_top(int argc, char **argv);
/* Its --help text. */
void mrt_cli_top_usage(FILE *f);

/* ---- what `meshrt run` prints (report.c) ---- */

/* v in at most 6 characters (999, 1.23k, 12.3M) in buf; "-" for a negative or non-finite v. */
const char *mrt_cli_human(char buf[16], double v);

/* What one live line needs to remember from the previous one. */
typedef struct mrt_cli_shard_prev {
    mrt_workload_stats w;
    mrt_shard_stats s;
    uint64_t cpu_ns;
    bool cpu_ok;
} mrt_cli_shard_prev;

/* Everything the summary prints, taken after the stop. */
typedef struct mrt_cli_run_result {
    unsigned shards;
    double elapsed, drain_ms;
    const char *why_stop;
    const char *lb;
    mrt_workload_stats t;
    uint64_t ring_full;
    uint64_t worker[MRT_MAX_SHARDS];   /* worker deliveries per shard */
    int hb_why[16];
    uint64_t hb_count[16];
    size_t hb_n;
    char problems[2048];
    unsigned nproblems;
    /* The stall detector's (--stall-ms; 0 = off). */
    unsigned stall_ms;
    uint64_t stalls, stall_max_ns;
} mrt_cli_run_result;

/* Shard i's thread CPU time into p (p->cpu_ok false when it cannot be read). */
void mrt_cli_read_cpu(mrt_runtime *rt, unsigned i, mrt_cli_shard_prev *p);
/*
 * One block of live lines: totals first, then one line per shard, each at
 * most 100 columns, rates over the dt seconds since prev (updated).
 */
void mrt_cli_print_interval(FILE *out, mrt_runtime *rt, mrt_workload *wl, mrt_cli_shard_prev *prev,
                            mrt_cli_shard_prev *prev_total, double dt, double elapsed);
/* Take the run's results from the stopped workload. */
void mrt_cli_collect(mrt_cli_run_result *r, mrt_runtime *rt, mrt_workload *wl);
/* The summary: a table, or one JSON object. */
void mrt_cli_print_summary(FILE *f, bool json, const mrt_cli_run_result *r);

#endif
