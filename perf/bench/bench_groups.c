/*
 * meshrt-bench groups: routing one event through a replica group of 10,
 * 100 and 255 members — select a member on the group's table entry
 * (round robin, reserving a connection), take the member's address, and
 * complete: the completion names the member by its endpoint id, which is
 * mapped back to its slot and the reservation released. Ours maps the id
 * with the table's O(1) index (grp_gtab_find); the naive baseline is the
 * seed system's per-event pattern (audit #152): a linear scan of the
 * member list for the id. The same table, the same selections, measured
 * back to back per repetition on the thread's CPU clock.
 *
 * Then the jump-hash strategy (select by key) alone, and the leak run:
 * 10^8 events (x --scale) through a group of 100 members with max
 * connections 10,000, completions applied FIFO 4,096 events later (so
 * reservations are really held): every selection must succeed and nothing
 * may be outstanding at the end (the seed system stops routing after
 * 10,000 x members events).
 *
 * Allocations per routed event: counted in one forked pass
 * (mrt_bench_counted), never in a timed run.
 */
#include "bench.h"

#include "groups/groups_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUITE "groups"
static const unsigned SIZES[] = { 10, 100, 255 };
#define NSIZES (sizeof SIZES / sizeof SIZES[0])
#define MAX_REPS 64

struct world {
    grp_gtab gt;
    grp_res res[MRT_GROUP_MAX_MEMBERS];
    uint32_t rr;
    uint64_t sink;
};

static void world_init(struct world *w, unsigned n, uint32_t max_conn, uint8_t strategy)
{
    memset(w, 0, sizeof(*w));
    grp_gtab *gt = &w->gt;
    gt->gen = 1;
    gt->max_conn = max_conn;
    gt->strategy = strategy;
    gt->nslots = (uint16_t)n;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        gt->s[i] = (grp_slot){ .id = x, .term = 1, .shard = (uint16_t)(i & 7),
                               .state = GRP_SLOT_UP };
    }
    grp_gtab_index(gt);
}

/* The completion's release, as coord.c applies it: the term must be the slot's. */
static inline void release(struct world *w, int idx)
{
    grp_res *r = &w->res[idx];
    if (atomic_load_explicit(&r->term, memory_order_relaxed) == w->gt.s[idx].term)
        grp_res_put(r);
}

static void route_ours(void *ctx, uint64_t iters)
{
    struct world *w = ctx;
    for (uint64_t i = 0; i < iters; i++) {
        int idx = grp_select_shard(&w->gt, w->res, &w->rr, i);
        uint64_t id = w->gt.s[idx].id; /* the member's address: what the event is sent to */
        int back = grp_gtab_find(&w->gt, id);
        release(w, back);
        w->sink += (uint64_t)back;
    }
}

static void route_naive(void *ctx, uint64_t iters)
{
    struct world *w = ctx;
    for (uint64_t i = 0; i < iters; i++) {
        int idx = grp_select_shard(&w->gt, w->res, &w->rr, i);
        uint64_t id = w->gt.s[idx].id;
        int back = -1;
        for (unsigned k = 0; k < w->gt.nslots; k++) /* #152: scan the members for the id */
            if (w->gt.s[k].id == id) {
                back = (int)k;
                break;
            }
        release(w, back);
        w->sink += (uint64_t)back;
    }
}

static void route_hash(void *ctx, uint64_t iters)
{
    struct world *w = ctx;
    for (uint64_t i = 0; i < iters; i++) {
        int idx = grp_select_shard(&w->gt, w->res, &w->rr, i * 0x9e3779b97f4a7c15ull);
        int back = grp_gtab_find(&w->gt, w->gt.s[idx].id);
        release(w, back);
        w->sink += (uint64_t)back;
    }
}

/* The leak run: selections complete FIFO WINDOW events later. */
#define WINDOW 4096u
struct leak {
    uint64_t ok, refused, outstanding;
};

static void leak_run(struct world *w, uint64_t events, struct leak *out)
{
    static int ring[WINDOW];
    memset(out, 0, sizeof(*out));
    uint64_t head = 0, tail = 0;
    for (uint64_t i = 0; i < events; i++) {
        if (head - tail == WINDOW)
            release(w, ring[tail++ % WINDOW]);
        int idx = grp_select_shard(&w->gt, w->res, &w->rr, i);
        if (idx < 0) {
            out->refused++;
            continue;
        }
        out->ok++;
        ring[head++ % WINDOW] = idx;
    }
    while (tail < head)
        release(w, ring[tail++ % WINDOW]);
    for (unsigned k = 0; k < w->gt.nslots; k++)
        out->outstanding += atomic_load(&w->res[k].out);
}

int mrt_bench_groups(const mrt_bench_opts *o, int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "meshrt-bench groups: unknown option '%s' (the suite takes none)\n",
                argv[1]);
        return 2;
    }
    struct world *w = malloc(sizeof(*w));
    if (w == NULL)
        return 1;
    int reps = o->reps < MAX_REPS ? o->reps : MAX_REPS;
    mrt_bench_section(o, "groups: route = select (round robin) + member lookup + completion");
    uint64_t iters = mrt_bench_iters(o, 2000000);
    double first = 0, last = 0;
    for (unsigned s = 0; s < NSIZES; s++) {
        unsigned n = SIZES[s];
        world_init(w, n, 10000, MRT_GROUP_ROUND_ROBIN);
        double ours[MAX_REPS], naive[MAX_REPS], ratio[MAX_REPS], hash[MAX_REPS];
        route_ours(w, iters / 4 + 1); /* warm */
        for (int r = 0; r < reps; r++) {
            ours[r] = mrt_bench_cpu_ns_per_op(route_ours, w, iters);
            naive[r] = mrt_bench_cpu_ns_per_op(route_naive, w, iters);
            ratio[r] = naive[r] / ours[r];
        }
        struct world *wh = malloc(sizeof(*wh));
        if (wh == NULL) {
            free(w);
            return 1;
        }
        world_init(wh, n, 10000, MRT_GROUP_HASH);
        for (int r = 0; r < reps; r++)
            hash[r] = mrt_bench_cpu_ns_per_op(route_hash, wh, iters);
        free(wh);
        double al[2];
        mrt_bench_allocs_pair(route_ours, route_naive, w, 10000, al);
        char pj[64], nm[64], nn[64], nh[64], rn[64];
        snprintf(pj, sizeof pj, "{\"members\":%u}", n);
        snprintf(nm, sizeof nm, "route/%u", n);
        snprintf(nn, sizeof nn, "route_naive_scan/%u", n);
        snprintf(nh, sizeof nh, "route_hash/%u", n);
        snprintf(rn, sizeof rn, "naive_over_ours/%u", n);
        double m = mrt_bench_median(ours, reps);
        mrt_bench_result(o, SUITE, nm, pj, "median_ns", m, al[0]);
        mrt_bench_result(o, SUITE, nn, pj, "median_ns", mrt_bench_median(naive, reps), al[1]);
        mrt_bench_result(o, SUITE, nh, pj, "median_ns", mrt_bench_median(hash, reps), -1);
        mrt_bench_ratio(o, SUITE, rn, nn, nm, mrt_bench_median(ratio, reps), 0, true);
        snprintf(rn, sizeof rn, "route_over_25ns/%u", n);
        mrt_bench_ratio(o, SUITE, rn, nm, "25 ns", m / 25.0, 1.0, false);
        if (s == 0)
            first = m;
        last = m;
    }
    /* Flat in size: 255 members against 10, same run. */
    mrt_bench_ratio(o, SUITE, "flat_255_over_10", "route/255", "route/10", last / first, 1.5,
                    false);

    mrt_bench_section(o, "groups: 10^8 events, 100 members, max connections 10,000, "
                         "completions 4,096 events late");
    uint64_t events = mrt_bench_iters(o, 100000000);
    world_init(w, 100, 10000, MRT_GROUP_ROUND_ROBIN);
    struct leak lk;
    uint64_t t0 = mrt_bench_now_ns();
    leak_run(w, events, &lk);
    double secs = (double)(mrt_bench_now_ns() - t0) * 1e-9;
    char pj[128];
    snprintf(pj, sizeof pj,
             "{\"events\":%llu,\"succeeded\":%llu,\"refused\":%llu,\"outstanding\":%llu}",
             (unsigned long long)events, (unsigned long long)lk.ok,
             (unsigned long long)lk.refused, (unsigned long long)lk.outstanding);
    mrt_bench_result(o, SUITE, "leak_run", pj, "mops", (double)events / secs * 1e-6, -1);
    if (!o->json)
        printf("  events %llu: succeeded %llu, refused %llu, outstanding after the last "
               "completion %llu\n",
               (unsigned long long)events, (unsigned long long)lk.ok,
               (unsigned long long)lk.refused, (unsigned long long)lk.outstanding);
    /* Every event routed, nothing held at the end: 1.0 exactly. */
    mrt_bench_ratio(o, SUITE, "succeeded_over_events", "succeeded", "events",
                    lk.outstanding ? 0.0 : (double)lk.ok / (double)events, 1.0, true);
    free(w);
    return mrt_bench_groups_promotion(o); /* standby promotion: bench_standby.c */
}
