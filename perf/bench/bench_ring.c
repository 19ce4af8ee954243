/*
 * meshrt-bench ring: cross-shard transfer between two pinned threads.
 *   raw_ring_32B   rte_ring SPSC bursts of 32-byte messages (the floor)
 *   raw_ring_ptr   rte_ring SPSC bursts of 8-byte pointers (the descriptor-size question)
 *   meshrt_send_burst  the meshrt path with full bursts (mrt_shard_send_burst), poll loops on both sides
 *   meshrt_send    the same path one message per mrt_shard_send call, as handlers send
 *   mutex_queue    a pthread-mutex-protected circular queue, same bursts (the baseline)
 * Figures are millions of messages per second, median of --reps runs.
 */
#include "bench.h"

#include "meshrt/mrt_shard.h"
#include "meshrt/mrt_topo.h"
#include "shards/shard_internal.h"

#include <pthread.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pair_run pair_run;
typedef void (*side_fn)(pair_run *r);

struct pair_run {
    /* Set up by the variant. */
    side_fn produce, consume;
    void (*setup)(pair_run *r, int side); /* untimed, before the start signal; may be NULL */
    void *ctx;
    uint64_t total;
    unsigned burst;
    /* Harness. */
    mrt_cpu cpu[2];
    const mrt_topo *topo;
    bool pinned;
    atomic_int ready;
    atomic_bool go;
    uint64_t t_end;
    bool count_allocs;
    mrt_alloc_counts alloc_delta[2];
};

typedef struct side_arg {
    pair_run *r;
    int side; /* 0 producer, 1 consumer */
} side_arg;

static void *side_main(void *p)
{
    side_arg *a = p;
    pair_run *r = a->r;
    if (r->pinned)
        (void)mrt_topo_bind_thread(r->topo, &r->cpu[a->side]);
    if (r->setup)
        r->setup(r, a->side);
    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load_explicit(&r->go, memory_order_acquire))
        rte_pause();
    mrt_alloc_counts c0 = mrt_alloc_counts_now();
    if (a->side == 0)
        r->produce(r);
    else {
        r->consume(r);
        r->t_end = mrt_bench_now_ns();
    }
    mrt_alloc_counts c1 = mrt_alloc_counts_now();
    r->alloc_delta[a->side].allocs = c1.allocs - c0.allocs;
    r->alloc_delta[a->side].bytes = c1.bytes - c0.bytes;
    return NULL;
}

/* Run one transfer; returns elapsed ns (go .. consumer done). */
static uint64_t run_pair(pair_run *r)
{
    pthread_t t[2];
    side_arg args[2] = { { r, 0 }, { r, 1 } };
    atomic_store(&r->ready, 0);
    atomic_store(&r->go, false);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, side_main, &args[i]);
    while (atomic_load(&r->ready) < 2)
        rte_pause();
    uint64_t t0 = mrt_bench_now_ns();
    atomic_store_explicit(&r->go, true, memory_order_release);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    return r->t_end - t0;
}

/* ---- raw rte_ring ---------------------------------------------------------- */

typedef struct raw_ctx {
    struct rte_ring *ring;
    size_t esize;   /* ring element size */
    unsigned per;   /* ring elements per message */
} raw_ctx;

/*
 * Like every variant, the raw one writes each message (a sequence number in
 * its first word) and the consumer reads each one: the same work on the
 * data, only the transport differs.
 */
static void raw_produce(pair_run *r)
{
    raw_ctx *c = r->ctx;
    _Alignas(64) uint64_t buf[MRT_MAX_BURST * sizeof(mrt_msg) / sizeof(uint64_t)];
    memset(buf, 0, sizeof buf);
    size_t words = c->esize * c->per / sizeof(uint64_t); /* per message */
    uint64_t left = r->total, seq = 0;
    while (left) {
        unsigned n = left < r->burst ? (unsigned)left : r->burst;
        for (unsigned i = 0; i < n; i++)
            buf[i * words] = seq + i;
        /* Whole messages only (bulk): a 2-element message must not be split. */
        while (rte_ring_sp_enqueue_bulk_elem(c->ring, buf, (unsigned)c->esize, n * c->per, NULL) == 0)
            rte_pause();
        seq += n;
        left -= n;
    }
}

static void raw_consume(pair_run *r)
{
    raw_ctx *c = r->ctx;
    _Alignas(64) uint64_t buf[MRT_MAX_BURST * sizeof(mrt_msg) / sizeof(uint64_t)];
    size_t words = c->esize * c->per / sizeof(uint64_t);
    uint64_t got = 0, sink = 0;
    while (got < r->total) {
        unsigned k = rte_ring_sc_dequeue_burst_elem(c->ring, buf, (unsigned)c->esize,
                                                    r->burst * c->per, NULL) / c->per;
        if (k == 0)
            rte_pause();
        for (unsigned i = 0; i < k; i++)
            sink += buf[i * words];
        got += k;
    }
    __asm__ volatile("" : : "r"(sink));
}

static uint64_t raw_once(pair_run *r, size_t esize, unsigned per, unsigned ring_size)
{
    ssize_t sz = rte_ring_get_memsize_elem((unsigned)esize, ring_size * per);
    struct rte_ring *ring = mrt_alloc_aligned(NULL, (size_t)sz, 64);
    rte_ring_init(ring, "bench", ring_size * per, RING_F_SP_ENQ | RING_F_SC_DEQ);
    raw_ctx c = { ring, esize, per };
    r->ctx = &c;
    r->produce = raw_produce;
    r->consume = raw_consume;
    uint64_t ns = run_pair(r);
    mrt_free_aligned(NULL, ring, (size_t)sz, 64);
    return ns;
}

/* ---- meshrt path ----------------------------------------------------------- */

typedef struct prod_state {
    uint64_t left;
    uint64_t seq;
    mrt_msg m[MRT_MAX_BURST]; /* built once; each send rewrites the sequence words */
} prod_state;

/*
 * Producer and consumer state 128 bytes apart: the two threads write them
 * per message, and the adjacent-line prefetcher shares lines in pairs (at
 * 64 bytes apart this harness measured a 3-10x slower, erratic transfer).
 */
typedef struct mesh_ctx {
    mrt_mesh *mesh;
    bool per_msg; /* produce with mrt_shard_send, one message per call */
    _Alignas(128) uint64_t received;
    _Alignas(128) prod_state prod;
} mesh_ctx;

/* Up to a consumer's per-iteration budget, in bursts; refused messages are offered again. */
static void bench_tick(mrt_shard *s, bool draining, void *ctx)
{
    (void)draining;
    prod_state *p = ctx;
    mrt_msg *m = p->m;
    for (unsigned made = 0; made < s->budget && p->left; made += s->burst) {
        unsigned n = p->left < s->burst ? (unsigned)p->left : s->burst;
        for (unsigned i = 0; i < n; i++)
            m[i].w[0] = p->seq + i; /* the same per-message write as the raw producer */
        unsigned accepted = 0;
        (void)mrt_shard_send_burst(s, 1, m, n, &accepted);
        p->seq += accepted;
        p->left -= accepted;
        if (accepted < n)
            return;
    }
}

/* The same production one message per mrt_shard_send call, as handlers send. */
static void bench_tick_1(mrt_shard *s, bool draining, void *ctx)
{
    (void)draining;
    prod_state *p = ctx;
    mrt_msg *m = &p->m[0];
    for (unsigned made = 0; made < s->budget && p->left; made++) {
        m->w[0] = p->seq;
        if (mrt_shard_send(s, 1, m) != MRT_OK)
            return; /* refused (ring and overflow full): offered again next iteration */
        p->seq++;
        p->left--;
    }
}

static void bench_on_burst(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx)
{
    (void)s;
    mesh_ctx *c = ctx;
    uint64_t sink = 0;
    for (unsigned i = 0; i < n; i++)
        sink += m[i].w[0]; /* read every message, like the raw consumer */
    __asm__ volatile("" : : "r"(sink));
    c->received += n;
}

/* Untimed: each side creates its arena and inbound rings on its own pinned thread. */
static void mesh_setup(pair_run *r, int side)
{
    mesh_ctx *c = r->ctx;
    mrt_shard *s = mrt_mesh_shard(c->mesh, (unsigned)side);
    mrt_shard_init_local(s);
    if (side == 0) {
        c->prod = (prod_state){ .left = r->total };
        for (unsigned i = 0; i < MRT_MAX_BURST; i++)
            c->prod.m[i].type = 1;
        mrt_shard_set_tick(s, c->per_msg ? bench_tick_1 : bench_tick, &c->prod);
    } else {
        mrt_shard_set_burst_handler(s, 1, bench_on_burst, c);
    }
}

static void mesh_produce(pair_run *r)
{
    mesh_ctx *c = r->ctx;
    mrt_shard *s = mrt_mesh_shard(c->mesh, 0);
    while (c->prod.left || s->ndirty)
        mrt_shard_poll_once(s);
}

static void mesh_consume(pair_run *r)
{
    mesh_ctx *c = r->ctx;
    mrt_shard *s = mrt_mesh_shard(c->mesh, 1);
    while (c->received < r->total)
        mrt_shard_poll_once(s);
}

static uint64_t mesh_once(pair_run *r, unsigned ring_size, bool per_msg)
{
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, 2);
    cfg.burst = r->burst;
    cfg.ring_size = ring_size;
    cfg.overflow = 1024;
    mesh_ctx c = { .per_msg = per_msg };
    if (mrt_mesh_create(&cfg, &c.mesh) != MRT_OK)
        return 0;
    r->ctx = &c;
    r->setup = mesh_setup;
    r->produce = mesh_produce;
    r->consume = mesh_consume;
    uint64_t ns = run_pair(r);
    r->setup = NULL;
    mrt_mesh_destroy(c.mesh);
    return ns;
}

/* ---- mutex queue baseline -------------------------------------------------- */

typedef struct mq_ctx {
    pthread_mutex_t mu;
    mrt_msg *slots;
    uint32_t cap, head, count;
} mq_ctx;

static void mq_produce(pair_run *r)
{
    mq_ctx *q = r->ctx;
    mrt_msg buf[MRT_MAX_BURST];
    memset(buf, 1, sizeof buf);
    uint64_t left = r->total;
    while (left) {
        unsigned n = left < r->burst ? (unsigned)left : r->burst;
        pthread_mutex_lock(&q->mu);
        unsigned room = q->cap - q->count;
        if (n > room)
            n = room;
        for (unsigned i = 0; i < n; i++)
            q->slots[(q->head + q->count + i) & (q->cap - 1)] = buf[i];
        q->count += n;
        pthread_mutex_unlock(&q->mu);
        if (n == 0)
            rte_pause();
        left -= n;
    }
}

static void mq_consume(pair_run *r)
{
    mq_ctx *q = r->ctx;
    mrt_msg buf[MRT_MAX_BURST];
    uint64_t got = 0, sink = 0;
    while (got < r->total) {
        pthread_mutex_lock(&q->mu);
        unsigned n = q->count < r->burst ? q->count : r->burst;
        for (unsigned i = 0; i < n; i++)
            buf[i] = q->slots[(q->head + i) & (q->cap - 1)];
        q->head = (q->head + n) & (q->cap - 1);
        q->count -= n;
        pthread_mutex_unlock(&q->mu);
        if (n == 0)
            rte_pause();
        sink += buf[0].w[0];
        got += n;
    }
    __asm__ volatile("" : : "r"(sink));
}

static uint64_t mq_once(pair_run *r, unsigned ring_size)
{
    mq_ctx q = { .cap = ring_size };
    pthread_mutex_init(&q.mu, NULL);
    q.slots = mrt_alloc(NULL, sizeof(mrt_msg) * ring_size);
    r->ctx = &q;
    r->produce = mq_produce;
    r->consume = mq_consume;
    uint64_t ns = run_pair(r);
    mrt_free(NULL, q.slots, sizeof(mrt_msg) * ring_size);
    pthread_mutex_destroy(&q.mu);
    return ns;
}

/* ---- suite ----------------------------------------------------------------- */

/*
 * raw_ring_32B moves 32-byte messages the way meshrt does (two 16-byte
 * elements each); raw_ring_32B_elem uses 32-byte elements, which DPDK copies
 * word by word; raw_ring_ptr moves 8-byte pointers. The first is the floor
 * meshrt is compared with; the other two document the representation choice.
 */
enum { V_RAW32, V_RAW32E, V_RAWPTR, V_MESH, V_MESH1, V_MUTEX, V_COUNT };
static const char *const vname[V_COUNT] = { "raw_ring_32B", "raw_ring_32B_elem", "raw_ring_ptr",
                                            "meshrt_send_burst", "meshrt_send", "mutex_queue" };

static uint64_t run_variant(int v, pair_run *r, unsigned ring_size)
{
    switch (v) {
    case V_RAW32: return raw_once(r, 16, 2, ring_size);
    case V_RAW32E: return raw_once(r, sizeof(mrt_msg), 1, ring_size);
    case V_RAWPTR: return raw_once(r, sizeof(void *), 1, ring_size);
    case V_MESH: return mesh_once(r, ring_size, false);
    case V_MESH1: return mesh_once(r, ring_size, true);
    default: return mq_once(r, ring_size);
    }
}

typedef struct count_arg {
    pair_run *r;
    unsigned ring_size;
} count_arg;

/*
 * Counted from the start signal on: shard set-up is outside, steady state
 * inside. out: burst send side, burst receive side, per-message send side,
 * per-message receive side.
 */
static void count_mesh(void *arg, double *out)
{
    count_arg *a = arg;
    for (int k = 0; k < 2; k++) {
        if (mesh_once(a->r, a->ring_size, k == 1) == 0)
            return;
        out[2 * k] = (double)a->r->alloc_delta[0].allocs / (double)a->r->total;
        out[2 * k + 1] = (double)a->r->alloc_delta[1].allocs / (double)a->r->total;
    }
}

/* Median of the per-repetition ratios a/b: each pair was measured back to back. */
static double paired_ratio(double mops[][64], int a, int b, int reps)
{
    double r[64];
    for (int k = 0; k < reps; k++)
        r[k] = mops[a][k] / mops[b][k];
    return mrt_bench_median(r, reps);
}

/* A whole-string unsigned in [lo, hi]; false otherwise. */
static bool parse_unsigned(const char *t, unsigned long lo, unsigned long hi, unsigned *out)
{
    char *end;
    if (*t < '0' || *t > '9')
        return false;
    unsigned long v = strtoul(t, &end, 10);
    if (*end || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

static int ring_usage(const char *why, const char *arg)
{
    fprintf(stderr, "meshrt-bench ring: %s%s%s\n", why, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: meshrt-bench ring [--burst B (1..256)] [--ring-size R (power of two"
                    " > B, <= 2^24)] [--only VARIANT]\n");
    return 2;
}

int mrt_bench_ring(const mrt_bench_opts *o, int argc, char **argv)
{
    unsigned burst = 32, ring_size = 1024;
    const char *only = NULL; /* --only NAME: one variant, each repetition printed (profiling) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--burst") == 0 && has_value) {
            if (!parse_unsigned(argv[++i], 1, MRT_MAX_BURST, &burst))
                return ring_usage("--burst must be 1..256, not", argv[i]);
        } else if (strcmp(a, "--ring-size") == 0 && has_value) {
            if (!parse_unsigned(argv[++i], 2, 1u << 24, &ring_size) ||
                (ring_size & (ring_size - 1)))
                return ring_usage("--ring-size must be a power of two up to 2^24, not", argv[i]);
        } else if (strcmp(a, "--only") == 0 && has_value) {
            only = argv[++i];
        } else if (strcmp(a, "--burst") == 0 || strcmp(a, "--ring-size") == 0 ||
                   strcmp(a, "--only") == 0) {
            return ring_usage("missing value after", a);
        } else {
            return ring_usage("unknown option", a);
        }
    }
    if (ring_size <= burst)
        return ring_usage("--ring-size must be larger than --burst", NULL);
    int only_v = -1;
    for (int v = 0; only != NULL && v < V_COUNT; v++)
        if (strcmp(only, vname[v]) == 0)
            only_v = v;
    if (only != NULL && only_v < 0)
        return ring_usage("no such variant for --only:", only);
    pair_run r = { .burst = burst, .total = mrt_bench_iters(o, 4000000) };
    mrt_topo *topo = NULL;
    static mrt_topo_selection sel;
    if (mrt_topo_load(&topo) == MRT_OK &&
        mrt_topo_select_node(topo, mrt_topo_current_node(topo), &sel) == MRT_OK && sel.count >= 2) {
        r.cpu[0] = sel.cpus[0];
        r.cpu[1] = sel.cpus[1];
        r.topo = topo;
        r.pinned = true;
    }
    char params[160];
    snprintf(params, sizeof params, "{\"burst\":%u,\"ring\":%u,\"msgs\":%llu,\"pinned\":%s}", burst,
             ring_size, (unsigned long long)r.total, r.pinned ? "true" : "false");

    /* Interleave the variants in each repetition so drift on a shared machine hits all alike. */
    int reps = o->reps < 1 ? 1 : (o->reps > 64 ? 64 : o->reps);
    double mops[V_COUNT][64];
    if (only_v >= 0) {
        for (int k = 0; k < reps; k++)
            printf("%s %.2f mops\n", vname[only_v],
                   (double)r.total / (double)run_variant(only_v, &r, ring_size) * 1e3);
        mrt_topo_destroy(topo);
        return 0;
    }
    for (int v = 0; v < V_COUNT; v++) /* warm-up */
        (void)run_variant(v, &r, ring_size);
    for (int k = 0; k < reps; k++)
        for (int v = 0; v < V_COUNT; v++)
            mops[v][k] = (double)r.total / (double)run_variant(v, &r, ring_size) * 1e3;
    double med[V_COUNT];
    for (int v = 0; v < V_COUNT; v++) {
        double tmp[64];
        memcpy(tmp, mops[v], sizeof(double) * (size_t)reps);
        med[v] = mrt_bench_median(tmp, reps);
    }

    /* Allocation pass, in a child process (see mrt_bench_counted): per thread over a whole transfer. */
    double al[4];
    count_arg ca = { &r, ring_size };
    (void)mrt_bench_counted(count_mesh, &ca, al, 4);

    mrt_bench_section(o, "ring: two pinned threads, millions of 32-byte messages per second");
    for (int v = 0; v < V_COUNT; v++) {
        double a = -1;
        if (v == V_MESH || v == V_MESH1) {
            const double *p = &al[v == V_MESH ? 0 : 2];
            a = p[0] < 0 ? -1 : p[0] + (p[1] > 0 ? p[1] : 0);
        }
        mrt_bench_result(o, "ring", vname[v], params, "mops", med[v], a);
    }
    static const char *const side[4] = { "meshrt_send_burst.send_path",
                                         "meshrt_send_burst.receive_path",
                                         "meshrt_send.send_path", "meshrt_send.receive_path" };
    for (int k = 0; k < 4; k++)
        mrt_bench_result(o, "ring", side[k], params, "allocs_per_msg", al[k], al[k]);
    mrt_bench_ratio(o, "ring", "meshrt_burst_vs_raw", vname[V_MESH], vname[V_RAW32],
                    paired_ratio(mops, V_MESH, V_RAW32, reps), 0.8, true);
    mrt_bench_ratio(o, "ring", "meshrt_msg_vs_raw", vname[V_MESH1], vname[V_RAW32],
                    paired_ratio(mops, V_MESH1, V_RAW32, reps), 0.5, true);
    mrt_bench_ratio(o, "ring", "meshrt_burst_vs_mutex", vname[V_MESH], vname[V_MUTEX],
                    paired_ratio(mops, V_MESH, V_MUTEX, reps), 5.0, true);
    mrt_bench_ratio(o, "ring", "raw_32B_vs_ptr", vname[V_RAW32], vname[V_RAWPTR],
                    paired_ratio(mops, V_RAW32, V_RAWPTR, reps), 0, true);
    mrt_bench_ratio(o, "ring", "raw_32B_2x16_vs_32B_elem", vname[V_RAW32], vname[V_RAW32E],
                    paired_ratio(mops, V_RAW32, V_RAW32E, reps), 0, true);
    mrt_topo_destroy(topo);
    return 0;
}
