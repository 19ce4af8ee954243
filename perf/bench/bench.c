/* Shared benchmark harness: timing, medians, allocation counting, output. */
#include "bench.h"

#include "meshrt/mrt_core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t mrt_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mrt_bench_median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return (n & 1) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

uint64_t mrt_bench_iters(const mrt_bench_opts *o, uint64_t base)
{
    double s = o->scale > 0 ? o->scale : 1.0;
    double n = (double)base * s;
    return n < 1 ? 1 : (uint64_t)n;
}

#define MAX_REPS 64

double mrt_bench_time_ns(const mrt_bench_opts *o, mrt_bench_fn fn, void *ctx, uint64_t iters)
{
    int reps = o->reps < 1 ? 1 : (o->reps > MAX_REPS ? MAX_REPS : o->reps);
    double v[MAX_REPS];
    fn(ctx, iters / 10 + 1); /* warm caches and branch predictors */
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = mrt_bench_now_ns();
        fn(ctx, iters);
        uint64_t t1 = mrt_bench_now_ns();
        v[r] = (double)(t1 - t0) / (double)iters;
    }
    return mrt_bench_median(v, reps);
}

uint64_t mrt_bench_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double mrt_bench_cpu_ns_per_op(mrt_bench_fn fn, void *ctx, uint64_t iters)
{
    uint64_t t0 = mrt_bench_thread_cpu_ns();
    fn(ctx, iters);
    return (double)(mrt_bench_thread_cpu_ns() - t0) / (double)iters;
}

/*
 * jemalloc's hook, once installed, stays for the life of the process and
 * makes every later allocation several times slower, which would flatter
 * any allocating baseline timed after it. So counting happens in a forked
 * child that installs the hook, runs the body and exits: no timed run ever
 * shares a process with the hook. The child also leaves the parent's state
 * (reservations, sequence numbers) untouched.
 */
int mrt_bench_counted(mrt_bench_count_fn body, void *arg, double *out, int nout)
{
    if (nout > MRT_BENCH_MAX_COUNTS)
        nout = MRT_BENCH_MAX_COUNTS;
    for (int i = 0; i < nout; i++)
        out[i] = -1;
#ifdef MRT_ALLOC_LIBC
    (void)body;
    (void)arg;
    return -1; /* sanitizer builds: allocations bypass jemalloc, nothing to count */
#else
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(stdout); /* the child must not repeat buffered output */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        double v[MRT_BENCH_MAX_COUNTS];
        for (int i = 0; i < nout; i++)
            v[i] = -1;
        if (mrt_alloc_counting_enable() == MRT_OK) {
            (void)mrt_alloc_counts_now(); /* its first call looks up jemalloc's counter */
            body(arg, v);
        }
        size_t len = sizeof(double) * (size_t)nout;
        _exit(write(fd[1], v, len) == (ssize_t)len ? 0 : 1);
    }
    close(fd[1]);
    double v[MRT_BENCH_MAX_COUNTS];
    size_t len = sizeof(double) * (size_t)nout, got = 0;
    while (got < len) {
        ssize_t k = read(fd[0], (char *)v + got, len - got);
        if (k > 0)
            got += (size_t)k;
        else if (k == 0 || errno != EINTR)
            break;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != len || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    memcpy(out, v, len);
    return 0;
#endif
}

typedef struct per_op {
    mrt_bench_fn fn;
    void *ctx;
    uint64_t iters;
} per_op;

static void count_per_op(void *arg, double *out)
{
    per_op *p = arg;
    mrt_alloc_counts a = mrt_alloc_counts_now();
    p->fn(p->ctx, p->iters);
    mrt_alloc_counts b = mrt_alloc_counts_now();
    out[0] = (double)(b.allocs - a.allocs) / (double)p->iters;
}

double mrt_bench_allocs_per_op(mrt_bench_fn fn, void *ctx, uint64_t iters)
{
    per_op p = { fn, ctx, iters ? iters : 1 };
    double v = -1;
    (void)mrt_bench_counted(count_per_op, &p, &v, 1);
    return v;
}

typedef struct per_op_pair {
    mrt_bench_fn ours, naive;
    void *ctx;
    uint64_t iters;
} per_op_pair;

static void count_pair(void *arg, double *out)
{
    per_op_pair *p = arg;
    p->ours(p->ctx, 64); /* warm */
    mrt_alloc_counts b = mrt_alloc_counts_now();
    p->ours(p->ctx, p->iters);
    mrt_alloc_counts m = mrt_alloc_counts_now();
    p->naive(p->ctx, p->iters);
    mrt_alloc_counts e = mrt_alloc_counts_now();
    out[0] = (double)(m.allocs - b.allocs) / (double)p->iters;
    out[1] = (double)(e.allocs - m.allocs) / (double)p->iters;
}

void mrt_bench_allocs_pair(mrt_bench_fn ours, mrt_bench_fn naive, void *ctx, uint64_t iters,
                           double out[2])
{
    per_op_pair p = { ours, naive, ctx, iters ? iters : 1 };
    out[0] = out[1] = -1;
    (void)mrt_bench_counted(count_pair, &p, out, 2);
}

static void print_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

void mrt_bench_result(const mrt_bench_opts *o, const char *suite, const char *name,
                      const char *params_json, const char *metric, double value,
                      double allocs_per_op)
{
    const char *params = params_json ? params_json : "{}";
    if (o->json) {
        printf("{\"suite\":\"%s\",\"name\":\"%s\",\"params\":%s,\"%s\":", suite, name, params,
               metric);
        print_num(stdout, value);
        fputs(",\"allocs_per_op\":", stdout);
        if (allocs_per_op < 0)
            fputs("null", stdout);
        else
            print_num(stdout, allocs_per_op);
        fputs("}\n", stdout);
    } else {
        char allocs[32];
        if (allocs_per_op < 0)
            snprintf(allocs, sizeof allocs, "n/a");
        else
            snprintf(allocs, sizeof allocs, "%.3g", allocs_per_op);
        printf("  %-34s %-28s %12.3f %-9s %8s\n", name, params, value, metric, allocs);
    }
    fflush(stdout);
}

static int missed_targets;

int mrt_bench_missed(void)
{
    return missed_targets;
}

bool mrt_bench_ratio(const mrt_bench_opts *o, const char *suite, const char *name,
                     const char *numerator, const char *denominator, double ratio,
                     double target, bool higher_is_better)
{
    bool has_target = target > 0;
    /* NaN (a side not measured) never meets a target. */
    bool met = !has_target || (higher_is_better ? ratio >= target : ratio <= target);
    if (!met)
        missed_targets++;
    if (o->json) {
        printf("{\"suite\":\"%s\",\"name\":\"%s\",\"ratio\":", suite, name);
        print_num(stdout, ratio);
        printf(",\"numerator\":\"%s\",\"denominator\":\"%s\",\"target\":", numerator,
               denominator);
        if (has_target)
            print_num(stdout, target);
        else
            fputs("null", stdout);
        printf(",\"higher_is_better\":%s,\"met\":%s}\n", higher_is_better ? "true" : "false",
               has_target ? (met ? "true" : "false") : "null");
    } else {
        printf("  ratio %-28s %s / %s = %.3f", name, numerator, denominator, ratio);
        if (has_target)
            printf("   (target %s %.3g: %s)", higher_is_better ? ">=" : "<=", target,
                   met ? "met" : "NOT met");
        putchar('\n');
    }
    fflush(stdout);
    return met;
}

void mrt_bench_section(const mrt_bench_opts *o, const char *title)
{
    if (o->json)
        return;
    printf("\n== %s\n  %-34s %-28s %12s %-9s %8s\n", title, "name", "params", "value", "metric",
           "allocs/op");
}
