/*
 * meshrt-bench sched: placement (mrt_sched_place) over 16, 256 and 4,096
 * candidate shards against the naive pattern of the seed system
 * before audit #151: collect the eligible candidates into a fresh array,
 * sort it by score and the tie-breakers (qsort), take the first, free.
 *
 * Both sides read the same inputs (tag bits, latencies, free capacities,
 * the same score function) and must pick the same shards: the set-up
 * checks that they agree (every exclusion up to 256 shards, 256 spread over
 * the shards beyond), so the ratio compares the selection method alone (one
 * O(N) pass against collect + O(N log N) sort).
 *
 * Three request shapes:
 *   uniform  required tag (3 of 4 shards), one optional tag (1 in 7), no
 *            score function: many equal scores, the tie-breaker decides;
 *   scored   the same plus a score function (8 levels from a table);
 *   spread8  scored, a group of 8 with strict spread: ours makes 8 passes
 *            (O(8N)), the naive one sorts once and takes the first 8 — the
 *            case where sorting is least wasteful.
 * Each iteration excludes one shard (rotating), so the winner changes.
 * Times: on the thread's CPU clock (stable on a shared machine: time spent
 * preempted is not counted), per repetition both sides back to back,
 * medians of each and of the per-repetition ratios. Allocations per placement: both sides counted
 * in one forked pass (mrt_bench_counted), never in a timed run.
 */
#include "bench.h"

#include "meshrt/mrt_core.h"
#include "meshrt/mrt_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUITE "sched"
static const uint32_t SIZES[] = { 16, 256, 4096 };
#define NSIZES (sizeof SIZES / sizeof SIZES[0])
#define MAX_REPS 64
#define MAX_K 8

struct world {
    uint32_t n;
    mrt_sched *s;
    mrt_sched_filter f;
    mrt_sched_request rq;
    /* the naive side's copy of the inputs */
    uint64_t *tags, req, opt;
    double *latency, *free, *table;
    bool scored;
    uint32_t k;         /* members per placement */
    uint32_t excl;      /* the shard excluded in the current iteration */
    uint64_t sink;
    mrt_allocator alloc;
};

static double table_score(void *ctx, uint32_t shard, double free_capacity)
{
    (void)free_capacity;
    return ((const double *)ctx)[shard];
}

/* ---- ours ---------------------------------------------------------------- */

static void run_ours(void *p, uint64_t iters)
{
    struct world *w = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        w->excl = (uint32_t)(i % w->n);
        uint32_t out[MAX_K];
        if (mrt_sched_place(w->s, &w->rq, w->k, out) != MRT_OK)
            abort();
        acc += out[w->k - 1];
    }
    w->sink += acc;
}

/* ---- the naive baseline: collect, sort, take first ----------------------- */

struct cand {
    uint32_t id;
    double score, latency, free;
};

static int cand_cmp(const void *a_, const void *b_)
{
    const struct cand *a = a_, *b = b_;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->latency != b->latency) {
        if (a->latency == 0.0)
            return 1;
        if (b->latency == 0.0)
            return -1;
        return a->latency < b->latency ? -1 : 1;
    }
    if (a->free != b->free)
        return a->free > b->free ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* The first k of the sorted candidates into out[0..k); false when fewer. */
static bool naive_place(struct world *w, uint32_t *out)
{
    struct cand *v = mrt_alloc(&w->alloc, sizeof *v * w->n);
    if (v == NULL)
        abort();
    size_t m = 0;
    unsigned asked = (unsigned)__builtin_popcountll(w->opt);
    for (uint32_t i = 0; i < w->n; i++) {
        if ((w->tags[i] & w->req) != w->req || i == w->excl)
            continue;
        double sc = w->scored ? w->table[i] : 1.0;
        sc *= (1.0 + __builtin_popcountll(w->tags[i] & w->opt)) / (1.0 + asked);
        v[m++] = (struct cand){ i, sc, w->latency[i], w->free[i] };
    }
    qsort(v, m, sizeof *v, cand_cmp);
    bool ok = m >= w->k;
    for (uint32_t j = 0; ok && j < w->k; j++)
        out[j] = v[j].id;
    mrt_free(&w->alloc, v, sizeof *v * w->n);
    return ok;
}

static void run_naive(void *p, uint64_t iters)
{
    struct world *w = p;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        w->excl = (uint32_t)(i % w->n);
        uint32_t out[MAX_K];
        if (!naive_place(w, out))
            abort();
        acc += out[w->k - 1];
    }
    w->sink += acc;
}

/* ---- set-up ---------------------------------------------------------------- */

static uint64_t xs(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void world_free(struct world *w)
{
    mrt_sched_destroy(w->s);
    free(w->tags);
    free(w->latency);
    free(w->free);
    free(w->table);
}

static int world_init(struct world *w, uint32_t n, bool scored, uint32_t k)
{
    memset(w, 0, sizeof *w);
    w->n = n;
    w->k = k;
    w->scored = scored;
    w->alloc = mrt_allocator_or_default(NULL);
    w->tags = calloc(n, sizeof *w->tags);
    w->latency = calloc(n, sizeof *w->latency);
    w->free = calloc(n, sizeof *w->free);
    w->table = calloc(n, sizeof *w->table);
    if (!w->tags || !w->latency || !w->free || !w->table ||
        mrt_sched_create(NULL, n, &w->s) != MRT_OK)
        return -1;
    uint64_t x = 0x2545f4914f6cdd1du ^ n;
    for (uint32_t i = 0; i < n; i++) {
        if (i % 4 != 3 && mrt_sched_shard_add_tag(w->s, i, "worker") != MRT_OK)
            return -1;
        if (i % 7 == 0 && mrt_sched_shard_add_tag(w->s, i, "ssd") != MRT_OK)
            return -1;
        if (mrt_sched_shard_set_topology(w->s, i, i / (n / 2 ? n / 2 : 1), i) != MRT_OK)
            return -1;
        /* Latency in 4 classes (0 = unmeasured) and a few busy levels: ties happen. */
        mrt_sched_load l = { .busy = (double)(xs(&x) % 5) / 5.0,
                             .hosted = (uint32_t)(xs(&x) % 4),
                             .ring_used = (uint32_t)(xs(&x) % 3), .ring_size = 1024,
                             .latency_ns = (double)(xs(&x) % 4) * 250.0 };
        if (mrt_sched_shard_set_load(w->s, i, &l) != MRT_OK)
            return -1;
        w->latency[i] = l.latency_ns;
        if (mrt_sched_shard_capacity(w->s, i, &w->free[i]) != MRT_OK)
            return -1;
        w->table[i] = (double)(xs(&x) % 8) / 7.0;
    }
    unsigned wb, sb;
    if (mrt_sched_tag_intern(w->s, "worker", &wb) != MRT_OK ||
        mrt_sched_tag_intern(w->s, "ssd", &sb) != MRT_OK)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        w->tags[i] = (i % 4 != 3 ? UINT64_C(1) << wb : 0) | (i % 7 == 0 ? UINT64_C(1) << sb : 0);
    w->req = UINT64_C(1) << wb;
    w->opt = UINT64_C(1) << sb;
    if (mrt_sched_filter_init(&w->f) != MRT_OK ||
        mrt_sched_filter_require(w->s, &w->f, "worker") != MRT_OK ||
        mrt_sched_filter_prefer(w->s, &w->f, "ssd") != MRT_OK)
        return -1;
    mrt_sched_request_init(&w->rq);
    w->rq.filter = &w->f;
    w->rq.exclude = &w->excl;
    w->rq.nexclude = 1;
    if (scored) {
        w->rq.score = table_score;
        w->rq.score_ctx = w->table;
    }
    /* Both sides must choose alike (every exclusion up to 256 shards, then a spread of 256). */
    for (uint32_t e = 0; e < n; e += n > 256 ? n / 256 : 1) {
        w->excl = e;
        uint32_t a[MAX_K], b[MAX_K];
        if (mrt_sched_place(w->s, &w->rq, k, a) != MRT_OK || !naive_place(w, b) ||
            memcmp(a, b, sizeof a[0] * k) != 0) {
            fprintf(stderr, "meshrt-bench sched: ours and naive disagree (n=%u, excluded %u)\n",
                    n, e);
            return -1;
        }
    }
    return 0;
}

int mrt_bench_sched(const mrt_bench_opts *o, int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "meshrt-bench sched: unknown option '%s' (the suite takes none)\n",
                argv[1]);
        return 2;
    }
    static const struct {
        const char *name;
        bool scored;
        uint32_t k;
    } SHAPES[] = { { "uniform", false, 1 }, { "scored", true, 1 }, { "spread8", true, MAX_K } };
    mrt_bench_section(o, "sched: placement, ours (O(N) pass per member) vs collect + qsort + "
                         "take first; ns per placement");
    for (size_t sh = 0; sh < sizeof SHAPES / sizeof SHAPES[0]; sh++) {
        const char *sname = SHAPES[sh].name;
        for (size_t si = 0; si < NSIZES; si++) {
            uint32_t n = SIZES[si];
            static struct world w;
            if (world_init(&w, n, SHAPES[sh].scored, SHAPES[sh].k) != 0) {
                world_free(&w);
                fprintf(stderr, "meshrt-bench sched: set-up failed (n=%u)\n", n);
                return 1;
            }
            uint64_t iters = mrt_bench_iters(o, 4000000 / n / SHAPES[sh].k);
            uint64_t niters = mrt_bench_iters(o, 400000 / n);
            double ours[MAX_REPS], naive[MAX_REPS], ratio[MAX_REPS];
            run_ours(&w, iters / 8 + 1); /* warm both */
            run_naive(&w, niters / 8 + 1);
            for (int r = 0; r < o->reps; r++) {
                ours[r] = mrt_bench_cpu_ns_per_op(run_ours, &w, iters);
                naive[r] = mrt_bench_cpu_ns_per_op(run_naive, &w, niters);
                ratio[r] = naive[r] / ours[r];
            }
            double al[2]; /* allocations per placement of both sides */
            mrt_bench_allocs_pair(run_ours, run_naive, &w, mrt_bench_iters(o, 2000), al);
            char pj[80], nm[64], nn[64];
            snprintf(pj, sizeof pj, "{\"n\":%u,\"shape\":\"%s\",\"k\":%u}", n, sname,
                     SHAPES[sh].k);
            snprintf(nm, sizeof nm, "place_%s_n%u", sname, n);
            snprintf(nn, sizeof nn, "naive_sort_%s_n%u", sname, n);
            mrt_bench_result(o, SUITE, nm, pj, "median_ns", mrt_bench_median(ours, o->reps), al[0]);
            mrt_bench_result(o, SUITE, nn, pj, "median_ns", mrt_bench_median(naive, o->reps),
                             al[1]);
            char rn[80];
            snprintf(rn, sizeof rn, "naive/ours_%s_n%u", sname, n);
            mrt_bench_ratio(o, SUITE, rn, nn, nm, mrt_bench_median(ratio, o->reps), 0, true);
            world_free(&w);
        }
    }
    return 0;
}
