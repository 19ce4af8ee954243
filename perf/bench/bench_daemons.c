/*
 * meshrt-bench daemons: the daemon host's own cost per event.
 *
 *  - no-output path: mrt_host_deliver against a bare (indirect) call of the
 *    same process function — the difference is the host overhead;
 *  - one output of 64 B and 1 KiB: deliver (+ release) against XXH3 over
 *    link || payload alone, the hashing every output needs anyway;
 *  - naive baselines, as the audit describes the reference code: a host that
 *    encodes the horizon (walk every origin, hash each) on every deliver
 *    (#153) and hashes outputs by concatenation;
 *  - mrt_causal_parent_hash against allocate-concatenate-hash (#154) at
 *    payload sizes 0 .. 4096;
 *  - allocations per event for each.
 * Every event comes from one of 16 known origins, as on a host that has
 * been running a while.
 */
#include "bench.h"

#include "meshrt/mrt_core.h"
#include "meshrt/mrt_daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SUITE "daemons"
/* Payload sizes of the parent-hash sweep: XXH3's size classes and the 4 KiB bound. */
static const size_t SWEEP[] = { 0, 1, 16, 48, 64, 96, 128, 208, 209, 240, 256, 512, 992, 1024, 2048, 2049, 3072, 4064, 4096 };
#define NORIGINS 16

/* --- daemons under test -------------------------------------------------- */

/* Consumes events, emits nothing (a filter / state-update daemon). */
struct sum_state {
    uint64_t sum;
};

static int sum_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)sink;
    ((struct sum_state *)st)->sum += ev->payload_len + ev->link.sequence;
    return MRT_OK;
}

static const mrt_daemon_vtable sum_vt = { .name = "sum", .process = sum_process };

/* Emits one output of out_len bytes, stamping its first 8 bytes with a counter. */
struct emit_state {
    uint64_t n;
    size_t out_len;
};

static int emit_process(void *st, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)ev;
    struct emit_state *e = st;
    void *p;
    int rc = mrt_daemon_emit(sink, e->out_len, &p);
    if (rc != MRT_OK)
        return rc;
    e->n++;
    memcpy(p, &e->n, sizeof e->n);
    return MRT_OK;
}

static const mrt_daemon_vtable emit_vt = { .name = "emit", .process = emit_process };

/* --- contexts ------------------------------------------------------------ */

struct ctx {
    mrt_host *host;
    mrt_event ev[NORIGINS];
    void *state;
    int (*volatile process)(void *, const mrt_event *, mrt_daemon_sink *);
    mrt_daemon_sink sink;
    /* hashing */
    mrt_causal_link link;
    uint8_t *payload;
    size_t len;
    uint8_t *concat;
    mrt_allocator alloc;
    uint64_t sink_hash; /* keeps results alive */
};

static void run_deliver(void *c_, uint64_t iters)
{
    struct ctx *c = c_;
    for (uint64_t i = 0; i < iters; i++) {
        if (mrt_host_deliver(c->host, &c->ev[i & (NORIGINS - 1)], i) != MRT_OK)
            abort();
        mrt_host_release_outputs(c->host);
    }
}

/* No-output loops: nothing is emitted, so nothing to release. */
static void run_deliver_noout(void *c_, uint64_t iters)
{
    struct ctx *c = c_;
    for (uint64_t i = 0; i < iters; i++)
        if (mrt_host_deliver(c->host, &c->ev[i & (NORIGINS - 1)], i) != MRT_OK)
            abort();
}

static void run_bare_process_noout(void *c_, uint64_t iters)
{
    struct ctx *c = c_;
    for (uint64_t i = 0; i < iters; i++)
        if (c->process(c->state, &c->ev[i & (NORIGINS - 1)], &c->sink) != MRT_OK)
            abort();
}

static void run_bare_process(void *c_, uint64_t iters)
{
    struct ctx *c = c_;
    for (uint64_t i = 0; i < iters; i++) {
        if (c->process(c->state, &c->ev[i & (NORIGINS - 1)], &c->sink) != MRT_OK)
            abort();
        mrt_daemon_sink_reset(&c->sink);
    }
}

static void run_xxh3_concat(void *c_, uint64_t iters)
{
    struct ctx *c = c_;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        c->concat[0] = (uint8_t)i;
        acc += XXH3_64bits(c->concat, MRT_CAUSAL_LINK_SIZE + c->len);
    }
    c->sink_hash += acc;
}

/*
 * The same hash as a chain must run it: each input carries the previous
 * result in its parent_hash field, so one hash cannot start before the
 * previous one ends (latency, not throughput).
 */
static void run_xxh3_chained(void *c_, uint64_t iters)
{
    struct ctx *c = c_;
    uint64_t h = c->sink_hash;
    for (uint64_t i = 0; i < iters; i++) {
        memcpy(c->concat + 24, &h, sizeof h);
        h = XXH3_64bits(c->concat, MRT_CAUSAL_LINK_SIZE + c->len);
    }
    c->sink_hash = h;
}

static void run_parent_ours(void *c_, uint64_t iters)
{
    struct ctx *c = c_;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        c->link.sequence = i;
        acc += mrt_causal_parent_hash(&c->link, c->payload, c->len);
    }
    c->sink_hash += acc;
}

/* #154 as the audit shows it: a fresh buffer per output, concatenate, hash, free. */
static uint64_t naive_parent_hash(const mrt_allocator *a, const mrt_causal_link *prev,
                                  const void *payload, size_t len)
{
    uint8_t *buf = mrt_alloc(a, MRT_CAUSAL_LINK_SIZE + len);
    if (buf == NULL)
        abort();
    mrt_causal_link_encode(prev, buf);
    memcpy(buf + MRT_CAUSAL_LINK_SIZE, payload, len);
    uint64_t h = XXH3_64bits(buf, MRT_CAUSAL_LINK_SIZE + len);
    mrt_free(a, buf, MRT_CAUSAL_LINK_SIZE + len);
    return h;
}

static void run_parent_naive(void *c_, uint64_t iters)
{
    struct ctx *c = c_;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        c->link.sequence = i;
        acc += naive_parent_hash(&c->alloc, &c->link, c->payload, c->len);
    }
    c->sink_hash += acc;
}

/* --- the naive host (#153 + #154) ---------------------------------------- */

struct naive_host {
    mrt_horizon horizon;
    mrt_daemon_sink sink;
    mrt_causal_link head;
    bool has_head;
    const uint8_t *head_payload; /* the reference keeps the previous output to hash it */
    size_t head_len;
    uint64_t origin;
    uint64_t processed, emitted;
    void *state;
    int (*process)(void *, const mrt_event *, mrt_daemon_sink *);
    mrt_allocator alloc;
};

static int encode_one(void *ctx, uint64_t origin, uint64_t seq)
{
    (void)seq;
    *(uint64_t *)ctx |= mrt_horizon_origin_bits(origin);
    return 0;
}

static int naive_deliver(struct naive_host *h, const mrt_event *ev, uint64_t now)
{
    int rc = mrt_horizon_observe(&h->horizon, ev->link.origin_hash, ev->link.sequence);
    if (rc != MRT_OK)
        return rc;
    rc = h->process(h->state, ev, &h->sink);
    if (rc != MRT_OK)
        return rc;
    h->processed++;
    uint64_t enc = 0; /* always: walk every origin and hash it */
    mrt_horizon_foreach(&h->horizon, encode_one, &enc);
    mrt_event *out = (mrt_event *)mrt_daemon_sink_outputs(&h->sink);
    for (uint32_t i = 0; i < mrt_daemon_sink_count(&h->sink); i++) {
        mrt_causal_link l = { h->origin, enc, 0, 0 };
        if (h->has_head) {
            l.sequence = h->head.sequence + 1;
            l.parent_hash = naive_parent_hash(&h->alloc, &h->head, h->head_payload, h->head_len);
        }
        out[i].link = l;
        out[i].timestamp = now;
        h->head = l;
        h->has_head = true;
        h->head_payload = out[i].payload;
        h->head_len = out[i].payload_len;
        h->emitted++;
    }
    return MRT_OK;
}

struct naive_ctx {
    struct naive_host h;
    mrt_event ev[NORIGINS];
};

static void run_naive_deliver(void *c_, uint64_t iters)
{
    struct naive_ctx *c = c_;
    for (uint64_t i = 0; i < iters; i++) {
        if (naive_deliver(&c->h, &c->ev[i & (NORIGINS - 1)], i) != MRT_OK)
            abort();
        mrt_daemon_sink_reset(&c->h.sink);
    }
}

/* --- set-up -------------------------------------------------------------- */

static void make_events(mrt_event *ev, const void *payload, size_t len)
{
    for (int i = 0; i < NORIGINS; i++) {
        memset(&ev[i], 0, sizeof ev[i]);
        ev[i].link.origin_hash = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        ev[i].link.sequence = (uint64_t)i;
        ev[i].payload = payload;
        ev[i].payload_len = len;
    }
}

static int setup_host(struct ctx *c, const mrt_daemon_vtable *vt, void *state)
{
    mrt_host_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.alloc = &c->alloc;
    memset(cfg.key, 0x5A, sizeof cfg.key);
    mrt_daemon d = { vt, state };
    if (mrt_host_create(&cfg, d, &c->host) != MRT_OK)
        return -1;
    c->state = state;
    c->process = vt->process;
    if (mrt_daemon_sink_init(&c->sink, &c->alloc, MRT_SINK_DEFAULT_OUTPUTS,
                             MRT_SINK_DEFAULT_PAYLOAD_BYTES) != MRT_OK)
        return -1;
    /* Every origin known before timing starts. */
    for (int i = 0; i < NORIGINS; i++) {
        if (mrt_host_deliver(c->host, &c->ev[i], 0) != MRT_OK)
            return -1;
        mrt_host_release_outputs(c->host);
    }
    return 0;
}

static void teardown_host(struct ctx *c)
{
    mrt_host_destroy(c->host);
    mrt_daemon_sink_destroy(&c->sink);
}

static int setup_naive(struct naive_ctx *n, const mrt_allocator *a, const mrt_daemon_vtable *vt,
                       void *state, const void *payload, size_t len)
{
    memset(n, 0, sizeof *n);
    n->h.alloc = *a;
    n->h.origin = 0x1234;
    n->h.state = state;
    n->h.process = vt->process;
    if (mrt_horizon_init(&n->h.horizon, a, 64) != MRT_OK ||
        mrt_daemon_sink_init(&n->h.sink, a, MRT_SINK_DEFAULT_OUTPUTS,
                             MRT_SINK_DEFAULT_PAYLOAD_BYTES) != MRT_OK)
        return -1;
    make_events(n->ev, payload, len);
    /* The naive host keeps pointing at the previous payload, which lives in the sink region:
     * the region is reused from offset 0 after each reset, and each output is hashed before
     * the next process writes its own, so the bytes hashed are the previous output's. */
    for (int i = 0; i < NORIGINS; i++) {
        if (naive_deliver(&n->h, &n->ev[i], 0) != MRT_OK)
            return -1;
        mrt_daemon_sink_reset(&n->h.sink);
    }
    return 0;
}

static void teardown_naive(struct naive_ctx *n)
{
    mrt_horizon_destroy(&n->h.horizon);
    mrt_daemon_sink_destroy(&n->h.sink);
}

/*
 * The machine is shared and noisy, and the figures that matter are
 * differences of a few ns between rows. So the rows compared with each other
 * are measured interleaved: 3 * reps rounds, each timing every row once on
 * a third of the iterations (order rotated per round); a difference is the
 * median of the per-round differences, so a slow spell hits both sides.
 */
#define MAX_ROWS 4
#define MAX_ROUNDS (3 * 64)

typedef struct rounds {
    int n;
    double t[MAX_ROWS][MAX_ROUNDS];
} rounds;

static void measure_set(const mrt_bench_opts *o, int k, mrt_bench_fn const *fn, void *const *ctx,
                        uint64_t iters, rounds *r)
{
    int reps = o->reps < 1 ? 1 : (o->reps > 64 ? 64 : o->reps);
    uint64_t chunk = iters / 3 ? iters / 3 : 1;
    r->n = 3 * reps;
    for (int j = 0; j < k; j++)
        fn[j](ctx[j], chunk / 10 + 1); /* warm */
    for (int round = 0; round < r->n; round++) {
        for (int jj = 0; jj < k; jj++) {
            int j = (round + jj) % k;
            uint64_t t0 = mrt_bench_now_ns();
            fn[j](ctx[j], chunk);
            uint64_t t1 = mrt_bench_now_ns();
            r->t[j][round] = (double)(t1 - t0) / (double)chunk;
        }
    }
}

/* Median over rounds of sum_j coef[j] * t[j]. */
static double med_combo(const rounds *r, const double *coef, int k)
{
    double v[MAX_ROUNDS];
    for (int i = 0; i < r->n; i++) {
        v[i] = 0;
        for (int j = 0; j < k; j++)
            v[i] += coef[j] * r->t[j][i];
    }
    return mrt_bench_median(v, r->n);
}

/* Median over rounds of t[a] / t[b]. */
static double med_ratio(const rounds *r, int a, int b)
{
    double v[MAX_ROUNDS];
    for (int i = 0; i < r->n; i++)
        v[i] = r->t[a][i] / r->t[b][i];
    return mrt_bench_median(v, r->n);
}

static double med_row(const rounds *r, int j)
{
    double v[MAX_ROUNDS];
    memcpy(v, r->t[j], sizeof(double) * (size_t)r->n);
    return mrt_bench_median(v, r->n);
}

/* Report row j of a measured set with its allocations per op. */
static double report_row(const mrt_bench_opts *o, const rounds *r, int j, const char *name,
                         const char *params, mrt_bench_fn fn, void *ctx, uint64_t iters)
{
    double ns = med_row(r, j);
    double allocs = mrt_bench_allocs_per_op(fn, ctx, iters < 100000 ? iters : 100000);
    mrt_bench_result(o, SUITE, name, params, "median_ns", ns, allocs);
    return ns;
}

int mrt_bench_daemons(const mrt_bench_opts *o, int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "meshrt-bench daemons: unknown option '%s' (the suite takes none)\n",
                argv[1]);
        return 2;
    }
    mrt_allocator arena;
    if (mrt_allocator_create_arena(&arena) != MRT_OK ||
        mrt_allocator_bind_thread(arena.arena, &arena) != MRT_OK) {
        fprintf(stderr, "meshrt-bench daemons: cannot set up an arena\n");
        return 1;
    }
    const uint64_t n_small = mrt_bench_iters(o, 2000000);
    const uint64_t n_large = mrt_bench_iters(o, 500000);
    int rc = 0;
    char params[96];

    /* ---- no-output path ---- */
    mrt_bench_section(o, "daemons: no-output path (16 known origins)");
    {
        static struct ctx c;
        struct sum_state st = { 0 };
        memset(&c, 0, sizeof c);
        c.alloc = arena;
        uint8_t pl[16] = { 0 };
        make_events(c.ev, pl, sizeof pl);
        if (setup_host(&c, &sum_vt, &st) != 0)
            return 1;
        static struct naive_ctx n;
        struct sum_state nst = { 0 };
        if (setup_naive(&n, &arena, &sum_vt, &nst, pl, sizeof pl) != 0)
            return 1;
        const char *pp = "{\"outputs\":0}";
        mrt_bench_fn fns[3] = { run_bare_process_noout, run_deliver_noout, run_naive_deliver };
        void *ctxs[3] = { &c, &c, &n };
        static rounds r;
        measure_set(o, 3, fns, ctxs, n_small, &r);
        report_row(o, &r, 0, "process_bare", pp, fns[0], ctxs[0], n_small);
        double del = report_row(o, &r, 1, "deliver", pp, fns[1], ctxs[1], n_small);
        double naive = report_row(o, &r, 2, "naive_deliver_encode_always", pp, fns[2], ctxs[2],
                                  n_small);
        double over = med_combo(&r, (const double[]){ -1, 1 }, 2);
        mrt_bench_result(o, SUITE, "host_overhead", pp, "median_ns", over, -1);
        mrt_bench_ratio(o, SUITE, "host_overhead_vs_10ns", "deliver-process_bare", "10ns",
                               over / 10.0, 1.0, false);
        mrt_bench_ratio(o, SUITE, "naive_vs_deliver_noout", "naive_deliver_encode_always",
                        "deliver", naive / del, 0, false);
        teardown_naive(&n);
        teardown_host(&c);
        c.sink_hash += st.sum + nst.sum;
    }

    /* ---- one output ---- */
    static const size_t sizes[] = { 64, 1024 };
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t len = sizes[si];
        uint64_t iters = len > 256 ? n_large : n_small;
        char title[80];
        snprintf(title, sizeof title, "daemons: one output of %zu B", len);
        mrt_bench_section(o, title);
        snprintf(params, sizeof params, "{\"outputs\":1,\"payload\":%zu}", len);

        static struct ctx c;
        memset(&c, 0, sizeof c);
        c.alloc = arena;
        struct emit_state st = { 0, len };
        uint8_t in[16] = { 0 };
        make_events(c.ev, in, sizeof in);
        c.len = len;
        c.payload = mrt_alloc(&arena, len);
        c.concat = mrt_alloc(&arena, MRT_CAUSAL_LINK_SIZE + len);
        if (c.payload == NULL || c.concat == NULL)
            return 1;
        for (size_t i = 0; i < len; i++)
            c.payload[i] = (uint8_t)(i * 31 + 7);
        c.link = (mrt_causal_link){ 1, 2, 3, 4 };
        mrt_causal_link_encode(&c.link, c.concat);
        memcpy(c.concat + MRT_CAUSAL_LINK_SIZE, c.payload, len);
        if (setup_host(&c, &emit_vt, &st) != 0)
            return 1;

        /* Host cost: deliver against bare XXH3 and the daemon's own process, interleaved. */
        mrt_bench_fn fns[4] = { run_xxh3_concat, run_bare_process, run_deliver, run_xxh3_chained };
        void *ctxs[4] = { &c, &c, &c, &c };
        static rounds r;
        measure_set(o, 4, fns, ctxs, iters, &r);
        report_row(o, &r, 0, "xxh3_link_payload", params, fns[0], ctxs[0], iters);
        report_row(o, &r, 3, "xxh3_link_payload_chained", params, fns[3], ctxs[3], iters);
        report_row(o, &r, 1, "process_bare", params, fns[1], ctxs[1], iters);
        double del = report_row(o, &r, 2, "deliver", params, fns[2], ctxs[2], iters);
        double dx = med_combo(&r, (const double[]){ -1, 0, 1, 0 }, 4);
        double dxc = med_combo(&r, (const double[]){ 0, 0, 1, -1 }, 4);
        double ho = med_combo(&r, (const double[]){ 0, -1, 1, -1 }, 4);
        mrt_bench_result(o, SUITE, "deliver_minus_xxh3", params, "median_ns", dx, -1);
        mrt_bench_result(o, SUITE, "deliver_minus_xxh3_chained", params, "median_ns", dxc, -1);
        mrt_bench_result(o, SUITE, "host_overhead", params, "median_ns", ho, -1);
        char rname[64];
        snprintf(rname, sizeof rname, "deliver_minus_xxh3_vs_15ns_%zu", len);
        mrt_bench_ratio(o, SUITE, rname, "deliver-xxh3_link_payload", "15ns", dx / 15.0,
                               1.0, false);

        /* #153 + #154: the reference host. */
        static struct naive_ctx n;
        struct emit_state nst = { 0, len };
        if (setup_naive(&n, &arena, &emit_vt, &nst, in, sizeof in) != 0)
            return 1;
        mrt_bench_fn nfn[1] = { run_naive_deliver };
        void *nctx[1] = { &n };
        static rounds nr;
        measure_set(o, 1, nfn, nctx, iters, &nr);
        double naive = report_row(o, &nr, 0, "naive_deliver_encode_always", params, nfn[0],
                                  nctx[0], iters);
        snprintf(rname, sizeof rname, "naive_vs_deliver_out_%zu", len);
        mrt_bench_ratio(o, SUITE, rname, "naive_deliver_encode_always", "deliver", naive / del, 0,
                        false);
        teardown_naive(&n);
        teardown_host(&c);
        mrt_free(&arena, c.payload, len);
        mrt_free(&arena, c.concat, MRT_CAUSAL_LINK_SIZE + len);
    }

    /* ---- parent hash across sizes: ours against allocate-concatenate-hash ---- */
    mrt_bench_section(o, "daemons: parent hash, payload 0 .. 4096 B (ns per hash)");
    for (size_t si = 0; si < sizeof SWEEP / sizeof SWEEP[0]; si++) {
        size_t len = SWEEP[si];
        uint64_t iters = mrt_bench_iters(o, len > 512 ? 300000 : 1000000);
        static struct ctx c;
        memset(&c, 0, sizeof c);
        c.alloc = arena;
        c.len = len;
        c.payload = mrt_alloc(&arena, len ? len : 1);
        if (c.payload == NULL)
            return 1;
        for (size_t i = 0; i < len; i++)
            c.payload[i] = (uint8_t)(i * 31 + 7);
        c.link = (mrt_causal_link){ 1, 2, 3, 4 };
        snprintf(params, sizeof params, "{\"payload\":%zu}", len);
        mrt_bench_fn pfn[2] = { run_parent_ours, run_parent_naive };
        void *pctx[2] = { &c, &c };
        static rounds pr;
        measure_set(o, 2, pfn, pctx, iters, &pr);
        report_row(o, &pr, 0, "parent_hash", params, pfn[0], pctx[0], iters);
        report_row(o, &pr, 1, "parent_hash_naive_concat", params, pfn[1], pctx[1], iters);
        /* Median of per-round ratios: both sides of each round ran back to back. */
        char rname[64];
        snprintf(rname, sizeof rname, "parent_hash_naive_vs_ours_%zu", len);
        mrt_bench_ratio(o, SUITE, rname, "parent_hash_naive_concat", "parent_hash",
                        med_ratio(&pr, 1, 0), 1.0, true);
        mrt_free(&arena, c.payload, len ? len : 1);
    }
    return rc;
}
