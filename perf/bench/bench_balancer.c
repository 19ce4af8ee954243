/*
 * meshrt-bench balancer: ns per select for every strategy at N = 10, 100,
 * 1,000, 10,000 endpoints, without and with zone preference and required
 * tags; allocations per select; snapshot build time per N; and a naive
 * baseline implemented here exactly as the audit (compute-audit.md #148,
 * #150, #155, #160, #163) describes the reference code, measured in the
 * same run, with ratios.
 *
 *   meshrt-bench [--json] [--reps N] [--scale X] balancer [--max-n N]
 *                [--strategy NAME] [--no-naive]
 *
 * Quick runs (--scale < 0.1, as the ctest smoke uses) skip the figures
 * whose cost does not scale: the N = 10,000 naive consistent-hash baselines
 * (a 1.5M-point sort per select), the N = 10,000 build times, and
 * select-cold beyond the smallest N (each sample is a pass over 1.5 LLCs:
 * 720 MB on a VM that reports a 480 MB L3).
 *
 * "select" figures are a select alone (max_connections unlimited, so the
 * reservations it leaves do not change what is measured); "select+complete"
 * is the pair a request really costs, and what the naive baseline (select
 * and its completion too) is compared with. "select-cold" is one select
 * after a pass over 1.5x the last-level cache evicted everything it reads. Keyed strategies (consistent hash,
 * Maglev, adaptive) get a fresh 8-byte routing key per select, so the
 * figure includes hashing the key and a random ring/table position.
 */
#include "balancer_naive.h"
#include "bench.h"

#include "meshrt/mrt_balancer.h"
#include "meshrt/mrt_perf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define SUITE "balancer"

static const uint32_t SIZES[] = { 10, 100, 1000, 10000 };
static int only;        /* --strategy: one strategy, -1 = all */
static bool no_naive;   /* --no-naive: skip the baseline (quick iterations) */
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

enum { V_PLAIN, V_ZONE, V_ZONE_TAGS, NVARIANTS };
static const char *const VARIANT[NVARIANTS] = { "plain", "zone", "zone+tags" };

static bool keyed(mrt_lb_strategy s)
{
    return s == MRT_LB_CONSISTENT_HASH || s == MRT_LB_MAGLEV || s == MRT_LB_ADAPTIVE;
}

static mrt_lb_registry *make_registry(uint32_t n, uint64_t *gpu_mask, uint16_t *zone1)
{
    mrt_lb_config c;
    mrt_lb_config_default(&c);
    mrt_lb_registry *r;
    if (mrt_lb_registry_create(NULL, &c, &r) != MRT_OK)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        mrt_lb_endpoint_spec s;
        uint8_t id[32];
        ep_node(id, i);
        mrt_lb_endpoint_spec_init(&s, id);
        const char *tags[2] = { TAGS[i % 4], "gpu" };
        s.weight = ep_weight(i);
        s.zone = ZONES[(i / 4) % 4];
        s.tags = tags;
        s.ntags = (i % 2 == 0) ? 2 : 1;
        s.metrics.cpu = (double)(i % 10) / 20.0;
        s.metrics.memory = 0.3;
        if (mrt_lb_registry_add(r, &s, NULL) != MRT_OK) {
            mrt_lb_registry_destroy(r);
            return NULL;
        }
    }
    const char *f[1] = { "gpu" };
    if (mrt_lb_registry_declare_filter(r, f, 1, gpu_mask) != MRT_OK ||
        mrt_lb_registry_zone(r, "z1", zone1) != MRT_OK) {
        mrt_lb_registry_destroy(r);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------------ ours */

typedef struct lbctx {
    const mrt_lb_snapshot *S;
    mrt_lb_shard *sh;
    mrt_lb_request rq;
    uint64_t key;
    uint64_t sink;
    uint64_t errors;
} lbctx;

/*
 * Keyed selects, each followed by its completion when complete is set. Every
 * caller passes a constant, so each inlined copy is a loop with no test of it.
 */
static inline void select_loop(lbctx *c, uint64_t iters, bool complete)
{
    mrt_lb_selection sel;
    uint64_t sink = 0, errors = 0;
    for (uint64_t i = 0; i < iters; i++) {
        c->key++;
        if (mrt_lb_select(c->S, c->sh, &c->rq, 1, &sel) == MRT_OK) {
            sink += sel.slot;
            if (complete)
                (void)mrt_lb_complete(c->sh, &sel, true, 1000 + (c->key & 1023), 1);
        } else {
            errors++;
        }
    }
    c->sink += sink;
    c->errors += errors;
}

static void run_select(void *p, uint64_t iters)
{
    select_loop(p, iters, false);
}

enum { BURST = 16 };

typedef struct burstctx {
    const mrt_lb_snapshot *S;
    mrt_lb_shard *sh;
    mrt_lb_request rq[BURST];
    uint64_t keys[BURST];
    mrt_lb_selection out[BURST];
    int rc[BURST];
    uint64_t next;
    uint64_t sink;
} burstctx;

/* One iteration = one burst of 16 keyed selects (divide by 16 for ns per select). */
static void run_burst(void *p, uint64_t iters)
{
    burstctx *c = p;
    for (uint64_t i = 0; i < iters; i++) {
        for (int k = 0; k < BURST; k++)
            c->keys[k] = c->next++;
        c->sink += mrt_lb_select_burst(c->S, c->sh, c->rq, BURST, 1, c->out, c->rc);
    }
}

/* A select and its completion: the per-request cost of the whole protocol. */
static void run_pair(void *p, uint64_t iters)
{
    select_loop(p, iters, true);
}

/*
 * Cold selects: before each one, a read pass over more than the last-level
 * cache evicts the snapshot and the shard state, as on a shard that did
 * other work between two routing decisions. Each select is timed alone
 * with the TSC, less the cost of an empty timed interval.
 */
static const uint8_t *pollute_buf;
static size_t pollute_len;

static size_t llc_bytes(void)
{
    size_t bytes = 32u << 20; /* when sysfs does not say */
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
    if (f != NULL) {
        unsigned long v;
        char unit = 0;
        if (fscanf(f, "%lu%c", &v, &unit) >= 1 && v > 0)
            bytes = (size_t)v << (unit == 'K' ? 10 : unit == 'M' ? 20 : 0);
        fclose(f);
    }
    return bytes;
}

static int pollute_init(void)
{
    if (pollute_buf != NULL)
        return 0;
    size_t len = llc_bytes() + (llc_bytes() >> 1); /* one and a half LLCs */
    uint8_t *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return -1;
    /* The allocation-counting children (fork) need none of it: no page tables to copy. */
    (void)madvise(b, len, MADV_DONTFORK);
    for (size_t i = 0; i < len; i += 64)
        b[i] = (uint8_t)i;
    pollute_buf = b;
    pollute_len = len;
    return 0;
}

static uint64_t pollute(void)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < pollute_len; i += 64)
        sum += pollute_buf[i];
    return sum;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t median_u64(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    return v[n / 2];
}

enum { COLD_MAX = 63 };

/* The TSC read once everything before it has completed (a cold select is a chain of misses). */
static inline uint64_t tsc_fenced(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("lfence" ::: "memory");
#endif
    return mrt_rdtsc();
}

/* Median ns of one select on cold caches (samples of it, each after a pollution pass). */
static double cold_select_ns(const mrt_bench_opts *o, lbctx *c)
{
    int n = (int)mrt_bench_iters(o, COLD_MAX); /* each sample costs a pass over the LLC */
    if (n > COLD_MAX)
        n = COLD_MAX;
    uint64_t t[COLD_MAX], e[COLD_MAX], sink = 0;
    for (int k = 0; k < n; k++) {
        sink += pollute();
        uint64_t t0 = tsc_fenced();
        select_loop(c, 1, false);
        uint64_t t1 = tsc_fenced();
        uint64_t e0 = tsc_fenced();
        uint64_t e1 = tsc_fenced();
        t[k] = t1 - t0;
        e[k] = e1 - e0;
    }
    c->sink += sink;
    double ticks = (double)median_u64(t, n) - (double)median_u64(e, n);
    return (ticks > 0 ? ticks : 0) * 1e9 / (double)mrt_tsc_hz();
}

/* ------------------------------------------------------------------ driver */

typedef struct fig {
    double ours[MRT_LB_STRATEGY_COUNT][NSIZES][NVARIANTS];
    double pair[MRT_LB_STRATEGY_COUNT][NSIZES];
    double burst[MRT_LB_STRATEGY_COUNT][NSIZES];
    double naive[MRT_LB_STRATEGY_COUNT][NSIZES][NVARIANTS];
    double ch16;
} fig;

static void params(char *buf, size_t len, uint32_t n, const char *variant, const char *extra)
{
    snprintf(buf, len, "{\"n\":%u,\"variant\":\"%s\"%s}", n, variant, extra ? extra : "");
}

static void set_request(mrt_lb_request *rq, int variant, uint64_t gpu, uint16_t z1, uint64_t *key,
                        bool with_key)
{
    mrt_lb_request_init(rq);
    if (variant >= V_ZONE)
        rq->zone = z1;
    if (variant == V_ZONE_TAGS)
        rq->required_tags = gpu;
    if (with_key) {
        rq->routing_key = key;
        rq->routing_key_len = sizeof *key;
    }
}

static bool quick(const mrt_bench_opts *o)
{
    return o->scale > 0 && o->scale < 0.1;
}

static uint64_t ours_iters(const mrt_bench_opts *o, mrt_lb_strategy s, uint32_t n)
{
    uint64_t base = 100000;
    if ((s == MRT_LB_LEAST_CONNECTIONS || s == MRT_LB_WEIGHTED_LEAST_CONN) && n >= 1000)
        base = 40000;
    return mrt_bench_iters(o, base);
}

/* Naive iterations: about 15 ms per repetition at this machine's speed. */
static uint64_t naive_iters(const mrt_bench_opts *o, mrt_lb_strategy s, uint32_t n)
{
    double per; /* rough ns per select, to size the run */
    if (s == MRT_LB_CONSISTENT_HASH || s == MRT_LB_ADAPTIVE)
        per = (double)n * 150.0 * 25.0;
    else
        per = 200.0 + (double)n * 12.0;
    double it = 15e6 / per * (o->scale > 0 ? o->scale : 1.0);
    if (it < 2)
        it = 2;
    if (it > 50000)
        it = 50000;
    return (uint64_t)it;
}

/*
 * Allocation counts of one strategy at one N, all in one forked child
 * (mrt_bench_counted) before its timed runs: a fork per figure would copy
 * the page tables of the large snapshots and rings dozens of times.
 */
enum { C_SELECT = 0, C_BURST = NVARIANTS, C_PAIR, C_PAIR_ZT, C_NAIVE, C_NAIVE_ZT, C_COUNT };
_Static_assert(C_COUNT <= MRT_BENCH_MAX_COUNTS, "one child returns every count");

typedef struct count_ctx {
    const mrt_lb_snapshot *S;
    mrt_lb_shard *sh;
    mrt_lb_strategy st;
    uint32_t n;
    uint64_t gpu;
    uint16_t z1;
    naive *nv;        /* NULL: no naive figure */
} count_ctx;

static double per_op(mrt_bench_fn fn, void *ctx, uint64_t iters)
{
    fn(ctx, iters / 10 + 1); /* first-use paths are not per-op costs */
    mrt_alloc_counts a = mrt_alloc_counts_now();
    fn(ctx, iters);
    mrt_alloc_counts b = mrt_alloc_counts_now();
    return (double)(b.allocs - a.allocs) / (double)iters;
}

static void count_strategy(void *arg, double *out)
{
    count_ctx *k = arg;
    bool key = keyed(k->st);
    for (int v = 0; v < NVARIANTS; v++) {
        lbctx cx = { .S = k->S, .sh = k->sh };
        set_request(&cx.rq, v, k->gpu, k->z1, &cx.key, key);
        out[C_SELECT + v] = per_op(run_select, &cx, 10000);
    }
    if (key) {
        burstctx *bx = calloc(1, sizeof(*bx));
        if (bx != NULL) {
            bx->S = k->S;
            bx->sh = k->sh;
            for (int j = 0; j < BURST; j++)
                set_request(&bx->rq[j], V_PLAIN, k->gpu, k->z1, &bx->keys[j], true);
            out[C_BURST] = per_op(run_burst, bx, 1000) / BURST;
            free(bx);
        }
    }
    for (int zt = 0; zt < 2; zt++) {
        int v = zt ? V_ZONE_TAGS : V_PLAIN;
        if (zt && k->n != 100)
            continue;
        mrt_lb_shard *sh2;
        if (mrt_lb_shard_create(NULL, 99, &sh2) != MRT_OK)
            return;
        if (mrt_lb_shard_adopt(sh2, k->S) == MRT_OK) {
            lbctx px = { .S = k->S, .sh = sh2 };
            set_request(&px.rq, v, k->gpu, k->z1, &px.key, key);
            out[C_PAIR + zt] = per_op(run_pair, &px, 10000);
        }
        mrt_lb_shard_destroy(sh2);
        if (k->nv != NULL) {
            naive_request(k->nv, k->st, v >= V_ZONE ? "z1" : NULL,
                          v == V_ZONE_TAGS ? "gpu" : NULL);
            out[C_NAIVE + zt] = per_op(run_naive, k->nv, 4);
        }
    }
}

static int bench_strategies(const mrt_bench_opts *o, uint32_t max_n, fig *F)
{
    char nm[96], pj[160];
    mrt_bench_opts no = *o; /* naive: fewer repetitions, it is slow */
    if (no.reps > 3)
        no.reps = 3;
    for (size_t ni = 0; ni < NSIZES; ni++) {
        uint32_t n = SIZES[ni];
        if (n > max_n)
            continue;
        uint64_t gpu;
        uint16_t z1;
        mrt_lb_registry *r = make_registry(n, &gpu, &z1);
        if (r == NULL)
            return 1;
        naive *nv = naive_create(n, 150);
        if (nv == NULL)
            return 1;
        char title[64];
        snprintf(title, sizeof title, "balancer: N = %u (ns per op)", n);
        mrt_bench_section(o, title);
        for (int st = 0; st < MRT_LB_STRATEGY_COUNT; st++) {
            if (only >= 0 && st != only)
                continue;
            mrt_lb_config c;
            mrt_lb_registry_config(r, &c);
            c.strategy = (mrt_lb_strategy)st;
            mrt_lb_snapshot *S;
            mrt_lb_shard *sh; /* fresh per strategy: select-only runs leave reservations */
            if (mrt_lb_registry_set_config(r, &c) != MRT_OK ||
                mrt_lb_registry_compile(r, 0, NULL, &S) != MRT_OK ||
                mrt_lb_shard_create(NULL, 1234 + n, &sh) != MRT_OK ||
                mrt_lb_shard_adopt(sh, S) != MRT_OK)
                return 1;
            const char *sn = mrt_lb_strategy_name((mrt_lb_strategy)st);
            /* quick runs (--scale < 0.1, the ctest smoke) skip the one naive figure that
               costs seconds whatever the scale: sorting a 1.5M-point ring per select */
            bool slow_naive = n >= 10000 && (st == MRT_LB_CONSISTENT_HASH ||
                                             st == MRT_LB_ADAPTIVE);
            bool naive_on = !no_naive && !(quick(o) && slow_naive);
            double cnt[C_COUNT];
            count_ctx cc = { S, sh, (mrt_lb_strategy)st, n, gpu, z1, naive_on ? nv : NULL };
            (void)mrt_bench_counted(count_strategy, &cc, cnt, C_COUNT);
            for (int v = 0; v < NVARIANTS; v++) {
                lbctx cx = { .S = S, .sh = sh };
                set_request(&cx.rq, v, gpu, z1, &cx.key, keyed((mrt_lb_strategy)st));
                double ns = mrt_bench_time_ns(o, run_select, &cx, ours_iters(o, st, n));
                double al = cnt[C_SELECT + v];
                if (cx.errors)
                    fprintf(stderr, "bench balancer: %s %s n=%u: %lu select errors\n", sn,
                            VARIANT[v], n, (unsigned long)cx.errors);
                F->ours[st][ni][v] = ns;
                snprintf(nm, sizeof nm, "%s/select", sn);
                params(pj, sizeof pj, n, VARIANT[v], NULL);
                mrt_bench_result(o, SUITE, nm, pj, "median_ns", ns, al);
                if (v == V_PLAIN && (!quick(o) || ni == 0)) {
                    double cns = cold_select_ns(o, &cx);
                    snprintf(nm, sizeof nm, "%s/select-cold", sn);
                    mrt_bench_result(o, SUITE, nm, pj, "median_ns", cns, -1);
                    snprintf(nm, sizeof nm, "%s/cold_vs_hot/n=%u", sn, n);
                    mrt_bench_ratio(o, SUITE, nm, "select-cold", "select", cns / ns, 0, false);
                }
                if (v == V_PLAIN && keyed((mrt_lb_strategy)st)) {
                    /* bursts of 16: keys hashed and lines prefetched ahead of the picks */
                    burstctx *bx = calloc(1, sizeof(*bx));
                    if (bx == NULL)
                        return 1;
                    bx->S = S;
                    bx->sh = sh;
                    for (int k = 0; k < BURST; k++) {
                        set_request(&bx->rq[k], v, gpu, z1, &bx->keys[k], true);
                    }
                    bx->next = 1u << 30;
                    double bns = mrt_bench_time_ns(o, run_burst, bx, ours_iters(o, st, n) / BURST);
                    snprintf(nm, sizeof nm, "%s/select-burst16", sn);
                    mrt_bench_result(o, SUITE, nm, pj, "median_ns", bns / BURST, cnt[C_BURST]);
                    F->burst[st][ni] = bns / BURST;
                    free(bx);
                }
                /* naive: every N plain; zone+tags at N = 100 */
                bool with_naive = v == V_PLAIN || (v == V_ZONE_TAGS && n == 100);
                double pns = NAN;
                if (with_naive) {
                    /* a fresh shard state: the select-only runs left reservations behind */
                    mrt_lb_shard *sh2;
                    if (mrt_lb_shard_create(NULL, 99, &sh2) != MRT_OK ||
                        mrt_lb_shard_adopt(sh2, S) != MRT_OK)
                        return 1;
                    lbctx px = { .S = S, .sh = sh2 };
                    set_request(&px.rq, v, gpu, z1, &px.key, keyed((mrt_lb_strategy)st));
                    pns = mrt_bench_time_ns(o, run_pair, &px, ours_iters(o, st, n));
                    double pal = cnt[v == V_PLAIN ? C_PAIR : C_PAIR_ZT];
                    if (v == V_PLAIN)
                        F->pair[st][ni] = pns;
                    snprintf(nm, sizeof nm, "%s/select+complete", sn);
                    mrt_bench_result(o, SUITE, nm, pj, "median_ns", pns, pal);
                    mrt_lb_shard_destroy(sh2);
                }
                F->naive[st][ni][v] = NAN;
                if (naive_on && with_naive) {
                    naive_request(nv, (mrt_lb_strategy)st, v >= V_ZONE ? "z1" : NULL,
                                  v == V_ZONE_TAGS ? "gpu" : NULL);
                    uint64_t it = naive_iters(o, (mrt_lb_strategy)st, n);
                    double nns = mrt_bench_time_ns(&no, run_naive, nv, it);
                    double nal = cnt[v == V_PLAIN ? C_NAIVE : C_NAIVE_ZT];
                    F->naive[st][ni][v] = nns;
                    snprintf(nm, sizeof nm, "%s/naive_select+complete", sn);
                    mrt_bench_result(o, SUITE, nm, pj, "median_ns", nns, nal);
                    snprintf(nm, sizeof nm, "%s/%s/n=%u", sn, VARIANT[v], n);
                    double target = 0;
                    if (n == 100)
                        target = 20;
                    if (n == 1000 && st == MRT_LB_CONSISTENT_HASH)
                        target = 1000;
                    /* like with like: the pair a request costs, on both sides */
                    mrt_bench_ratio(o, SUITE, nm, "naive_select+complete", "select+complete",
                                    nns / pns, target, true);
                }
            }
            mrt_lb_shard_destroy(sh);
            mrt_lb_snapshot_free(S);
        }
        if (n == 10000 && (only < 0 || only == MRT_LB_CONSISTENT_HASH)) {
            /* the same ring with 16 points per endpoint (the audit's figure): 1.3 MB, not 12 */
            mrt_lb_config c;
            mrt_lb_registry_config(r, &c);
            c.strategy = MRT_LB_CONSISTENT_HASH;
            c.vnodes = 16;
            mrt_lb_snapshot *S;
            mrt_lb_shard *sh;
            if (mrt_lb_registry_set_config(r, &c) != MRT_OK ||
                mrt_lb_registry_compile(r, 0, NULL, &S) != MRT_OK ||
                mrt_lb_shard_create(NULL, 5, &sh) != MRT_OK || mrt_lb_shard_adopt(sh, S) != MRT_OK)
                return 1;
            lbctx cx = { .S = S, .sh = sh };
            set_request(&cx.rq, V_PLAIN, gpu, z1, &cx.key, true);
            double ns = mrt_bench_time_ns(o, run_select, &cx, ours_iters(o, c.strategy, n));
            params(pj, sizeof pj, n, "plain", ",\"vnodes\":16");
            mrt_bench_result(o, SUITE, "ch/select", pj, "median_ns", ns,
                             mrt_bench_allocs_per_op(run_select, &cx, 10000));
            F->ch16 = ns;
            mrt_lb_shard_destroy(sh);
            mrt_lb_snapshot_free(S);
        }
        naive_destroy(nv);
        mrt_lb_registry_destroy(r);
    }
    return 0;
}

typedef struct buildctx {
    mrt_lb_registry *r;
    size_t bytes;
} buildctx;

static void run_build(void *p, uint64_t iters)
{
    buildctx *b = p;
    for (uint64_t i = 0; i < iters; i++) {
        mrt_lb_snapshot *S;
        if (mrt_lb_registry_compile(b->r, 0, NULL, &S) != MRT_OK)
            abort();
        b->bytes = mrt_lb_snapshot_bytes(S);
        mrt_lb_snapshot_free(S);
    }
}

static int bench_build(const mrt_bench_opts *o, uint32_t max_n)
{
    static const mrt_lb_strategy which[] = { MRT_LB_ROUND_ROBIN, MRT_LB_WEIGHTED_ROUND_ROBIN,
                                             MRT_LB_WEIGHTED_RANDOM, MRT_LB_LEAST_CONNECTIONS,
                                             MRT_LB_CONSISTENT_HASH, MRT_LB_MAGLEV };
    mrt_bench_opts bo = *o;
    if (bo.reps > 5)
        bo.reps = 5;
    mrt_bench_section(o, "balancer: snapshot build (ns per compile; 1 zone x filter grid)");
    for (size_t ni = 0; ni < NSIZES; ni++) {
        uint32_t n = SIZES[ni];
        if (n > max_n || (quick(o) && n >= 10000)) /* a compile there costs ~0.3 s */
            continue;
        uint64_t gpu;
        uint16_t z1;
        mrt_lb_registry *r = make_registry(n, &gpu, &z1);
        if (r == NULL)
            return 1;
        for (size_t k = 0; k < sizeof which / sizeof which[0]; k++) {
            mrt_lb_config c;
            mrt_lb_registry_config(r, &c);
            c.strategy = which[k];
            if (mrt_lb_registry_set_config(r, &c) != MRT_OK)
                return 1;
            buildctx b = { .r = r };
            uint64_t it = n >= 10000 ? 1 : (n >= 1000 ? 3 : 20);
            double ns = mrt_bench_time_ns(&bo, run_build, &b, it);
            char nm[64], pj[128], extra[48];
            snprintf(nm, sizeof nm, "build/%s", mrt_lb_strategy_name(which[k]));
            snprintf(extra, sizeof extra, ",\"bytes\":%zu", b.bytes);
            params(pj, sizeof pj, n, "4 zones, 1 filter", extra);
            mrt_bench_result(o, SUITE, nm, pj, "median_ns", ns, -1);
        }
        mrt_lb_registry_destroy(r);
    }
    return 0;
}

static void targets(const mrt_bench_opts *o, const fig *F, uint32_t max_n)
{
    mrt_bench_section(o, "balancer: targets (plain variant)");
    static const mrt_lb_strategy flat[] = { MRT_LB_ROUND_ROBIN, MRT_LB_WEIGHTED_ROUND_ROBIN,
                                            MRT_LB_RANDOM, MRT_LB_POWER_OF_TWO, MRT_LB_MAGLEV };
    char nm[96], num[64];
    for (size_t k = 0; k < sizeof flat / sizeof flat[0]; k++) {
        const char *sn = mrt_lb_strategy_name(flat[k]);
        if (!(F->ours[flat[k]][0][V_PLAIN] > 0))
            continue; /* not measured (--strategy) */
        for (size_t ni = 0; ni < NSIZES; ni++) {
            if (SIZES[ni] > max_n)
                continue;
            snprintf(nm, sizeof nm, "%s n=%u <= 15 ns", sn, SIZES[ni]);
            snprintf(num, sizeof num, "%s/select", sn);
            mrt_bench_ratio(o, SUITE, nm, num, "15ns", F->ours[flat[k]][ni][V_PLAIN] / 15.0, 1.0,
                            false);
        }
        if (max_n >= 10000) {
            snprintf(nm, sizeof nm, "%s flat n=10000/n=10", sn);
            mrt_bench_ratio(o, SUITE, nm, "n=10000", "n=10",
                            F->ours[flat[k]][3][V_PLAIN] / F->ours[flat[k]][0][V_PLAIN], 1.5,
                            false);
        }
    }
    if (max_n >= 10000 && F->ours[MRT_LB_CONSISTENT_HASH][3][V_PLAIN] > 0) {
        mrt_bench_ratio(o, SUITE, "ch n=10000 <= 60 ns", "ch/select", "60ns",
                        F->ours[MRT_LB_CONSISTENT_HASH][3][V_PLAIN] / 60.0, 1.0, false);
        mrt_bench_ratio(o, SUITE, "ch n=10000 burst <= 60 ns", "ch/select-burst16", "60ns",
                        F->burst[MRT_LB_CONSISTENT_HASH][3] / 60.0, 1.0, false);
        mrt_bench_ratio(o, SUITE, "ch n=10000 vnodes=16 <= 60 ns", "ch/select", "60ns",
                        F->ch16 / 60.0, 1.0, false);
    }
}

int mrt_bench_balancer(const mrt_bench_opts *o, int argc, char **argv)
{
    uint32_t max_n = 10000;
    only = -1;
    no_naive = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-n") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*argv[i] == '\0' || *end || v < 10 || v > 10000) {
                fprintf(stderr, "meshrt-bench balancer: --max-n must be 10..10000, not '%s'\n",
                        argv[i]);
                return 2;
            }
            max_n = (uint32_t)v;
        } else if (strcmp(argv[i], "--strategy") == 0 && i + 1 < argc) {
            const char *want = argv[++i];
            for (int s = 0; s < MRT_LB_STRATEGY_COUNT; s++)
                if (strcmp(mrt_lb_strategy_name((mrt_lb_strategy)s), want) == 0)
                    only = s;
            if (only < 0) {
                fprintf(stderr, "meshrt-bench balancer: unknown strategy '%s'\n", want);
                return 2;
            }
        } else if (strcmp(argv[i], "--no-naive") == 0) {
            no_naive = true;
        } else if (strcmp(argv[i], "--max-n") == 0 || strcmp(argv[i], "--strategy") == 0) {
            fprintf(stderr, "meshrt-bench balancer: missing value after %s\n", argv[i]);
            return 2;
        } else {
            fprintf(stderr,
                    "meshrt-bench balancer: unknown option '%s' "
                    "(--max-n N, --strategy NAME, --no-naive)\n",
                    argv[i]);
            return 2;
        }
    }
    fig *F = calloc(1, sizeof(*F));
    if (F == NULL || pollute_init() != 0) {
        free(F);
        return 1;
    }
    int rc = bench_strategies(o, max_n, F);
    if (rc == 0)
        rc = bench_build(o, max_n);
    if (rc == 0)
        targets(o, F, max_n);
    free(F);
    munmap((void *)pollute_buf, pollute_len);
    pollute_buf = NULL;
    return rc;
}
