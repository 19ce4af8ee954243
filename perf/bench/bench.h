/*
 * Benchmark harness shared by every meshrt-bench suite.
 *
 * Output contract (later suites reuse it): a human table on stdout, or with
 * --json one JSON object per line:
 *   {"suite":S,"name":N,"params":{...},"median_ns":X|"mops":X,"allocs_per_op":A}
 * and for each comparison
 *   {"suite":S,"name":N,"ratio":R,"numerator":A,"denominator":B,"target":T|null,
 *    "higher_is_better":bool,"met":bool|null}
 * Machines are shared and noisy: each figure is the median of several
 * repetitions, and comparisons are made against baselines measured in the
 * same run.
 */
#ifndef MESHRT_PERF_BENCH_H
#define MESHRT_PERF_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mrt_bench_opts {
    bool json;      /* JSON lines instead of the table */
    int reps;       /* repetitions per measurement (median taken), >= 1 */
    double scale;   /* multiplies iteration counts; < 1 for quick runs */
} mrt_bench_opts;

/* Monotonic nanoseconds (benchmark bookkeeping only, never per op). */
uint64_t mrt_bench_now_ns(void);

/* Median of v[0..n) (v is reordered). */
double mrt_bench_median(double *v, int n);

/* One measured op: run `iters` iterations of the thing under test. */
typedef void (*mrt_bench_fn)(void *ctx, uint64_t iters);

/* Median ns per iteration over opts->reps timed runs of fn(ctx, iters). */
double mrt_bench_time_ns(const mrt_bench_opts *o, mrt_bench_fn fn, void *ctx, uint64_t iters);

/*
 * The calling thread's CPU clock in ns: time the thread spent off the CPU
 * (another tenant of a shared machine) is not counted.
 */
uint64_t mrt_bench_thread_cpu_ns(void);

/* One run of fn(ctx, iters) on the thread's CPU clock: ns per iteration. */
double mrt_bench_cpu_ns_per_op(mrt_bench_fn fn, void *ctx, uint64_t iters);

/*
 * Heap allocations per iteration of fn(ctx, iters) on the calling thread,
 * counted with jemalloc's allocation hook in a forked child (untimed; the
 * hook never exists in the process that times). Returns a negative value
 * when counting is unavailable (sanitizer builds, fork failure).
 */
double mrt_bench_allocs_per_op(mrt_bench_fn fn, void *ctx, uint64_t iters);

/*
 * Allocations per iteration of ours(ctx, iters) and of naive(ctx, iters),
 * both in one forked child, ours warmed first with 64 iterations:
 * out[0] ours, out[1] naive (-1 each when counting is unavailable).
 */
void mrt_bench_allocs_pair(mrt_bench_fn ours, mrt_bench_fn naive, void *ctx, uint64_t iters,
                           double out[2]);

/*
 * The general form: run body(arg, out) in a forked child with allocation
 * counting enabled and copy its nout (<= MRT_BENCH_MAX_COUNTS) results
 * back. Returns 0, or -1 with every out[i] = -1 when counting is unavailable.
 */
#define MRT_BENCH_MAX_COUNTS 8
typedef void (*mrt_bench_count_fn)(void *arg, double *out);
int mrt_bench_counted(mrt_bench_count_fn body, void *arg, double *out, int nout);

/* Scaled iteration count (at least 1). */
uint64_t mrt_bench_iters(const mrt_bench_opts *o, uint64_t base);

/*
 * Report one result. `params_json` is a JSON object text such as
 * "{\"n\":100}" (NULL means {}). `metric` is "median_ns" or "mops".
 * allocs_per_op < 0 prints as null.
 */
void mrt_bench_result(const mrt_bench_opts *o, const char *suite, const char *name,
                      const char *params_json, const char *metric, double value,
                      double allocs_per_op);

/*
 * Report a comparison ratio between two named results. `target` is the
 * figure the ratio should reach (>= when higher_is_better, else <=); pass
 * 0 for none. Returns true when the target is met (or there is none); a
 * missed one is counted for mrt_bench_missed(). JSON:
 *   {"suite","name","ratio","numerator","denominator","target" (null: none),
 *    "higher_is_better","met" (null: no target)}
 */
bool mrt_bench_ratio(const mrt_bench_opts *o, const char *suite, const char *name,
                     const char *numerator, const char *denominator, double ratio,
                     double target, bool higher_is_better);

/* Targets missed so far in this process (meshrt-bench --check exits 1 when > 0). */
int mrt_bench_missed(void);

/* Print a section header (table mode only). */
void mrt_bench_section(const mrt_bench_opts *o, const char *title);

/*
 * Suites. argv[0] is the suite name, argv[1..] its own options. Each returns
 * 0 on success, 2 on a usage error (unknown option, bad value; the message
 * names it), 1 on a set-up failure.
 */
int mrt_bench_ring(const mrt_bench_opts *o, int argc, char **argv);
int mrt_bench_balancer(const mrt_bench_opts *o, int argc, char **argv);
int mrt_bench_daemons(const mrt_bench_opts *o, int argc, char **argv);
int mrt_bench_pipeline(const mrt_bench_opts *o, int argc, char **argv);
int mrt_bench_sched(const mrt_bench_opts *o, int argc, char **argv);
int mrt_bench_groups(const mrt_bench_opts *o, int argc, char **argv);
/* The groups suite's standby promotion section (bench_standby.c). */
int mrt_bench_groups_promotion(const mrt_bench_opts *o);

#endif
