/*
 * The built-in default workload: a pipeline of daemons on the public API
 * only (mrt_runtime.h, mrt_compute.h) — ingress thread -> producers ->
 * the balancer-routed set of workers -> the aggregator on each worker's
 * shard -> egress, validated by the polling thread. See mrt_runtime.h.
 */
#include "meshrt/mrt_compute.h"
#include "meshrt/mrt_runtime.h"
#include "runtime/wl_window.h"

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- payloads ------------------------------------------------------------ */

/* What the ingress thread injects: its own count of accepted events, and the producer's index. */
typedef struct wl_in {
    uint64_t n;
    uint64_t producer;
} wl_in;

#define WL_LINK MRT_CAUSAL_LINK_SIZE
/* Each stage's output: the link of the event it got, then that event's payload. */
enum {
    WL_LEN_IN = sizeof(wl_in),
    WL_LEN_PRODUCER = WL_LINK + WL_LEN_IN,
    WL_LEN_WORKER = WL_LINK + WL_LEN_PRODUCER,
    WL_LEN_AGGREGATOR = WL_LINK + WL_LEN_WORKER,
};
static const uint32_t wl_in_len[MRT_WL_STAGES] = { WL_LEN_IN, WL_LEN_PRODUCER, WL_LEN_WORKER };
static const char *const wl_type_name[MRT_WL_STAGES] = { "wl.producer", "wl.worker",
                                                          "wl.aggregator" };

/* ---- the daemons (shard threads) ----------------------------------------- */

/* A daemon's counter: written by its shard only, read by the polling thread. */
typedef struct wl_counter {
    alignas(64) _Atomic uint64_t delivered;
} wl_counter;

/* A daemon's state, from its shard's arena. */
typedef struct wl_state {
    wl_counter *ctr;
    uint64_t delivered;
    uint32_t in_len;
} wl_state;

/* The spawn's argument (copied by compute). */
typedef struct wl_spawn_arg {
    wl_counter *ctr;
    uint32_t in_len;
} wl_spawn_arg;

/* Every stage: one output, the input's link (wire form) followed by the input's payload. */
static int relay_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    wl_state *st = state;
    if (ev->payload_len != st->in_len)
        return MRT_EINVAL; /* not this stage's input: a daemon error, counted */
    void *buf;
    int rc = mrt_daemon_emit(sink, WL_LINK + ev->payload_len, &buf);
    if (rc != MRT_OK)
        return rc;
    mrt_causal_link_encode(&ev->link, buf);
    memcpy((uint8_t *)buf + WL_LINK, ev->payload, ev->payload_len);
    atomic_store_explicit(&st->ctr->delivered, ++st->delivered, memory_order_relaxed);
    return MRT_OK;
}

static const mrt_daemon_vtable wl_vt[MRT_WL_STAGES] = {
    { .name = "wl.producer", .process = relay_process },
    { .name = "wl.worker", .process = relay_process },
    { .name = "wl.aggregator", .process = relay_process },
};

static int relay_create(void *ctx, const mrt_allocator *a, const void *arg, size_t arg_len,
                        void **state)
{
    (void)ctx;
    wl_spawn_arg sa;
    if (arg_len != sizeof sa)
        return MRT_EINVAL;
    memcpy(&sa, arg, sizeof sa);
    wl_state *st = mrt_calloc(a, sizeof *st);
    if (st == NULL)
        return MRT_ENOMEM;
    st->ctr = sa.ctr;
    st->in_len = sa.in_len;
    *state = st;
    return MRT_OK;
}

static void relay_destroy(void *ctx, const mrt_allocator *a, void *state)
{
    (void)ctx;
    mrt_free(a, state, sizeof(wl_state));
}

/* ---- the polling thread's bookkeeping ------------------------------------ */

/* One daemon of the pipeline, as the polling thread knows it. */
typedef struct wl_daemon {
    mrt_compute_ref ref;
    mrt_workload_stage stage;
    wl_counter *ctr;
    mrt_causal_chain chain;   /* its outputs, validated in sequence order */
    uint64_t validated;       /* links accepted into the chain */
    bool broken;              /* a link failed: the chain is not checked further */
    wl_window order;          /* producers: outputs back in sequence order */
} wl_daemon;

/* Status codes of hand-backs: every module's range (-1 .. -999), and one slot for the rest. */
#define WL_HB_LO (-999)
#define WL_HB_HI (-1)
enum { WL_HB_SLOTS = WL_HB_HI - WL_HB_LO + 2 };

#define WL_PROBLEMS_LEN 1024u

struct mrt_workload {
    mrt_runtime *rt;
    mrt_compute *c;
    unsigned n;                   /* shards */
    uint16_t type[MRT_WL_STAGES];
    wl_daemon *d;                 /* producers, then workers, then aggregators */
    unsigned nd, nworkers;
    wl_counter *counters;         /* one per daemon */
    /* daemon id -> index + 1 (0 = empty), open addressing */
    uint64_t *map_id;
    uint32_t *map_ix;
    uint32_t map_mask;
    /* Ingress thread. */
    pthread_t ingress;
    bool ingress_running;
    _Atomic bool ingress_stop;
    _Atomic uint64_t injected;
    _Atomic uint64_t inject_refused;
    _Atomic int inject_error;
    _Atomic uint64_t drained_pub; /* drained, for the ingress thread's window */
    /* Hand-backs, from the shards: by status, and in all (an event handed back has ended). */
    _Atomic uint64_t hb[WL_HB_SLOTS];
    _Atomic uint64_t hb_total;
    /* The polling thread's. */
    wl_window injected_order;     /* every injected event exactly once */
    uint64_t ingress_origin;
    bool have_ingress_origin;
    uint64_t drained;
    uint64_t *drained_shard;
    uint64_t links;
    uint64_t problems;
    char problem_text[WL_PROBLEMS_LEN];
    bool started, stopped;
    /* Final counters, taken at stop. */
    mrt_compute_stats *final;
};

static void problem(mrt_workload *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Count an inconsistency; the first ones are kept in words. */
static void problem(mrt_workload *w, const char *fmt, ...)
{
    w->problems++;
    size_t used = strlen(w->problem_text);
    if (used + 4 >= sizeof w->problem_text)
        return;
    if (used)
        used += (size_t)snprintf(w->problem_text + used, sizeof w->problem_text - used, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->problem_text + used, sizeof w->problem_text - used, fmt, ap);
    va_end(ap);
}

static uint32_t map_slot(uint64_t id, uint32_t mask)
{
    return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

static void map_put(mrt_workload *w, uint64_t id, uint32_t ix)
{
    uint32_t k = map_slot(id, w->map_mask);
    while (w->map_ix[k] != 0)
        k = (k + 1) & w->map_mask;
    w->map_id[k] = id;
    w->map_ix[k] = ix + 1;
}

static wl_daemon *map_get(const mrt_workload *w, uint64_t id)
{
    for (uint32_t k = map_slot(id, w->map_mask);; k = (k + 1) & w->map_mask) {
        if (w->map_ix[k] == 0)
            return NULL;
        if (w->map_id[k] == id)
            return &w->d[w->map_ix[k] - 1];
    }
}

/* Accept one output into its emitter's chain. */
static void chain_accept(mrt_workload *w, wl_daemon *d, const mrt_causal_link *link,
                         const void *payload, size_t len)
{
    if (d->broken)
        return;
    int rc = mrt_causal_chain_accept(&d->chain, link, payload, len);
    if (rc != MRT_OK) {
        d->broken = true;
        problem(w, "%s on shard %u: output %llu breaks its causal chain (%s)",
                wl_type_name[d->stage], d->ref.shard, (unsigned long long)link->sequence,
                mrt_strerror(rc));
        return;
    }
    d->validated++;
    w->links++;
}

/* Producer outputs that are now in order: accept them into the producer's chain. */
static void producer_advance(mrt_workload *w, wl_daemon *p)
{
    const uint8_t *slot;
    while ((slot = wl_window_peek(&p->order)) != NULL) {
        mrt_causal_link link;
        mrt_causal_link_decode(slot, &link);
        chain_accept(w, p, &link, slot + WL_LINK, WL_LEN_PRODUCER);
        wl_window_next(&p->order);
    }
}

/*
 * One egressed output: aggregator link || [worker link || [producer link ||
 * [ingress link || wl_in]]]. Called by mrt_workload_poll and, during the
 * stop, by mrt_runtime_stop's egress drain.
 */
static void on_output(void *ctx, const mrt_compute_output *o)
{
    mrt_workload *w = ctx;
    w->drained++;
    atomic_store_explicit(&w->drained_pub, w->drained, memory_order_release);
    wl_daemon *a = map_get(w, o->from.id);
    if (a == NULL || a->stage != MRT_WL_AGGREGATOR || a->ref.shard != o->from.shard) {
        problem(w, "an output from %016llx on shard %u, which is no aggregator",
                (unsigned long long)o->from.id, o->from.shard);
        return;
    }
    w->drained_shard[a->ref.shard]++;
    if (o->len != WL_LEN_AGGREGATOR) {
        problem(w, "an aggregator output of %zu bytes, not %u", o->len, WL_LEN_AGGREGATOR);
        return;
    }
    chain_accept(w, a, &o->link, o->payload, o->len);
    /* The worker: on the aggregator's shard; its outputs reach it in order. */
    const uint8_t *p = o->payload;
    mrt_causal_link wl, pl, il;
    mrt_causal_link_decode(p, &wl);
    wl_daemon *wk = map_get(w, wl.origin_hash);
    if (wk == NULL || wk->stage != MRT_WL_WORKER || wk->ref.shard != a->ref.shard) {
        problem(w, "aggregator on shard %u got an event from %016llx, not a worker of its shard",
                a->ref.shard, (unsigned long long)wl.origin_hash);
        return;
    }
    chain_accept(w, wk, &wl, p + WL_LINK, WL_LEN_WORKER);
    /* The producer: its outputs crossed several workers, so put them back in order. */
    mrt_causal_link_decode(p + WL_LINK, &pl);
    wl_daemon *pr = map_get(w, pl.origin_hash);
    if (pr == NULL || pr->stage != MRT_WL_PRODUCER) {
        problem(w, "a worker got an event from %016llx, not a producer",
                (unsigned long long)pl.origin_hash);
        return;
    }
    int put = wl_window_put(&pr->order, pl.sequence, p + WL_LINK);
    if (put != WIN_OK)
        problem(w, "producer on shard %u: output %llu %s", pr->ref.shard,
                (unsigned long long)pl.sequence,
                put == WIN_DUP ? "egressed twice" : "reordered beyond any window");
    else
        producer_advance(w, pr);
    /* The injected event: exactly once, through the producer it was injected to. */
    mrt_causal_link_decode(p + 2 * WL_LINK, &il);
    if (!w->have_ingress_origin) {
        w->ingress_origin = il.origin_hash;
        w->have_ingress_origin = true;
    } else if (il.origin_hash != w->ingress_origin) {
        problem(w, "an injected event with origin %016llx, not the runtime's ingress",
                (unsigned long long)il.origin_hash);
    }
    wl_in in;
    memcpy(&in, p + 3 * WL_LINK, sizeof in);
    if (in.producer >= w->n || &w->d[in.producer] != pr)
        problem(w, "event %llu, injected to producer %llu, came through the producer of shard %u",
                (unsigned long long)in.n, (unsigned long long)in.producer, pr->ref.shard);
    put = wl_window_put(&w->injected_order, in.n, NULL);
    if (put != WIN_OK)
        problem(w, "injected event %llu %s", (unsigned long long)in.n,
                put == WIN_DUP ? "egressed twice" : "reordered beyond any window");
    while (wl_window_peek(&w->injected_order) != NULL)
        wl_window_next(&w->injected_order);
}

static void on_handback(void *ctx, mrt_compute_ref to, const mrt_event *ev, int why)
{
    (void)to;
    (void)ev;
    mrt_workload *w = ctx;
    unsigned k = why >= WL_HB_LO && why <= WL_HB_HI ? (unsigned)(why - WL_HB_LO)
                                                    : WL_HB_SLOTS - 1;
    atomic_fetch_add_explicit(&w->hb[k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->hb_total, 1, memory_order_release);
}

/* ---- ingress ------------------------------------------------------------- */

/*
 * Round robin over the producers. At most MRT_WORKLOAD_WINDOW events between
 * injection and their end (received by the polling thread, or handed back:
 * a lost event must not hold the window forever; the verdict fails on it);
 * a refused event is offered to the next producer (same number), the thread
 * yields when every producer refused.
 */
/*
 * Waiting for the pipeline: yield a few times, then sleep with a doubling
 * back-off. A thread spinning on sched_yield keeps its CPU busy, and on a
 * machine with as many CPUs as shards that is a shard's CPU.
 */
static void ingress_wait(unsigned *rounds)
{
    if (++*rounds <= 16) {
        sched_yield();
        return;
    }
    unsigned shift = *rounds - 16 > 6 ? 6 : *rounds - 16;
    struct timespec ts = { 0, 1000L << shift }; /* 2 .. 64 us */
    nanosleep(&ts, NULL);
}

static void *ingress_main(void *arg)
{
    mrt_workload *w = arg;
    (void)pthread_setname_np(pthread_self(), "mrt-ingress");
    uint64_t n = 0, refused = 0;
    unsigned p = 0, refusals_in_row = 0, waits = 0;
    while (!atomic_load_explicit(&w->ingress_stop, memory_order_relaxed)) {
        uint64_t ended = atomic_load_explicit(&w->drained_pub, memory_order_acquire) +
                         atomic_load_explicit(&w->hb_total, memory_order_acquire);
        if (n - ended >= MRT_WORKLOAD_WINDOW) {
            ingress_wait(&waits);
            continue;
        }
        wl_in in = { .n = n, .producer = p };
        int rc = mrt_compute_inject(w->c, w->d[p].ref, &in, sizeof in);
        if (rc == MRT_OK) {
            atomic_store_explicit(&w->injected, ++n, memory_order_relaxed);
            refusals_in_row = 0;
            waits = 0;
        } else if (rc == MRT_SHARD_EFULL || rc == MRT_SVC_EPOOL) {
            atomic_store_explicit(&w->inject_refused, ++refused, memory_order_relaxed);
            if (++refusals_in_row >= w->n) {
                refusals_in_row = 0;
                ingress_wait(&waits);
            }
        } else {
            atomic_store_explicit(&w->inject_error, rc, memory_order_relaxed);
            break;
        }
        p = p + 1 == w->n ? 0 : p + 1;
    }
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------- */

static void seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t len, const char *fmt, ...)
{
    if (err == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

int mrt_workload_create(mrt_runtime *rt, mrt_workload **out, char *err, size_t errlen)
{
    if (rt == NULL || out == NULL)
        return MRT_EINVAL;
    mrt_compute *c = mrt_runtime_compute(rt);
    if (c == NULL) {
        seterr(err, errlen, "workload: the runtime hosts no compute");
        return MRT_EINVAL;
    }
    mrt_workload *w = calloc(1, sizeof *w);
    if (w == NULL)
        return MRT_ENOMEM;
    w->rt = rt;
    w->c = c;
    w->n = mrt_mesh_size(mrt_runtime_mesh(rt));
    w->nworkers = w->n * MRT_WORKLOAD_WORKERS_PER_SHARD;
    w->nd = 2 * w->n + w->nworkers;
    uint32_t cap = 1;
    while (cap < 2 * w->nd)
        cap <<= 1;
    w->map_mask = cap - 1;
    w->d = calloc(w->nd, sizeof *w->d);
    w->counters = aligned_alloc(alignof(wl_counter), w->nd * sizeof *w->counters);
    w->map_id = calloc(cap, sizeof *w->map_id);
    w->map_ix = calloc(cap, sizeof *w->map_ix);
    w->drained_shard = calloc(w->n, sizeof *w->drained_shard);
    w->final = calloc(w->n, sizeof *w->final);
    int rc = MRT_ENOMEM;
    if (w->d && w->counters && w->map_id && w->map_ix && w->drained_shard && w->final &&
        wl_window_init(&w->injected_order, 0) == MRT_OK) {
        rc = MRT_OK;
        for (unsigned i = 0; i < w->nd; i++) {
            atomic_init(&w->counters[i].delivered, 0);
            w->d[i].ctr = &w->counters[i];
            w->d[i].stage = i < w->n                ? MRT_WL_PRODUCER
                            : i < w->n + w->nworkers ? MRT_WL_WORKER
                                                     : MRT_WL_AGGREGATOR;
            if (w->d[i].stage == MRT_WL_PRODUCER && rc == MRT_OK)
                rc = wl_window_init(&w->d[i].order, WL_LINK + WL_LEN_PRODUCER);
        }
    }
    for (unsigned s = 0; rc == MRT_OK && s < MRT_WL_STAGES; s++) {
        mrt_compute_type t = { .name = wl_type_name[s], .vt = &wl_vt[s],
                               .create = relay_create, .destroy = relay_destroy, .ctx = w,
                               .max_outputs = 1, .payload_bytes = 4096 };
        rc = mrt_compute_register_type(c, &t, &w->type[s]);
        if (rc != MRT_OK)
            seterr(err, errlen, "workload: registering %s: %s", t.name, mrt_strerror(rc));
    }
    if (rc == MRT_OK && (rc = mrt_compute_set_handback(c, on_handback, w)) != MRT_OK)
        seterr(err, errlen, "workload: hand-back: %s", mrt_strerror(rc));
    if (rc == MRT_OK && (rc = mrt_compute_set_egress_drain(c, on_output, w)) != MRT_OK)
        seterr(err, errlen, "workload: egress drain: %s", mrt_strerror(rc));
    if (rc != MRT_OK) {
        mrt_workload_destroy(w);
        return rc;
    }
    *out = w;
    return MRT_OK;
}

static int spawn(mrt_workload *w, unsigned i, unsigned shard, char *err, size_t errlen)
{
    wl_daemon *d = &w->d[i];
    wl_spawn_arg sa = { .ctr = d->ctr, .in_len = wl_in_len[d->stage] };
    int rc = mrt_compute_spawn(w->c, w->type[d->stage], (uint16_t)shard, NULL, &sa, sizeof sa,
                               &d->ref);
    if (rc != MRT_OK) {
        seterr(err, errlen, "workload: spawning %s on shard %u: %s", wl_type_name[d->stage],
               shard, mrt_strerror(rc));
        return rc;
    }
    mrt_causal_chain_init(&d->chain, d->ref.id);
    map_put(w, d->ref.id, i);
    return MRT_OK;
}

int mrt_workload_start(mrt_workload *w, char *err, size_t errlen)
{
    if (w == NULL)
        return MRT_EINVAL;
    if (w->started)
        return MRT_ESTATE;
    w->started = true;
    unsigned n = w->n;
    int rc = MRT_OK;
    /* Producer i and aggregator i on shard i; the workers round robin over the shards. */
    for (unsigned i = 0; rc == MRT_OK && i < w->nd; i++) {
        unsigned shard = i < n ? i : i < n + w->nworkers ? (i - n) % n : i - n - w->nworkers;
        rc = spawn(w, i, shard, err, errlen);
    }
    const unsigned wk0 = n, ag0 = n + w->nworkers;
    for (unsigned k = 0; rc == MRT_OK && k < w->nworkers; k++) {
        wl_daemon *wk = &w->d[wk0 + k];
        rc = mrt_compute_set_add(w->c, wk->ref, 100);
        if (rc == MRT_OK)
            rc = mrt_compute_subscribe(w->c, wk->ref, MRT_COMPUTE_TO_DAEMON,
                                       w->d[ag0 + wk->ref.shard].ref);
        if (rc != MRT_OK)
            seterr(err, errlen, "workload: worker %u: %s", k, mrt_strerror(rc));
    }
    for (unsigned i = 0; rc == MRT_OK && i < n; i++) {
        rc = mrt_compute_subscribe(w->c, w->d[ag0 + i].ref, MRT_COMPUTE_TO_EGRESS,
                                   (mrt_compute_ref){ 0 });
        if (rc != MRT_OK)
            seterr(err, errlen, "workload: aggregator %u to egress: %s", i, mrt_strerror(rc));
    }
    /*
     * Publish the set, then wait until every shard has moved past every
     * earlier snapshot (each retired one is freed only then): from now on a
     * producer's output always finds the workers in its shard's snapshot.
     */
    if (rc == MRT_OK) {
        int pub = mrt_runtime_control_tick(w->rt, true);
        if (pub < 0) {
            rc = pub;
            seterr(err, errlen, "workload: publishing the set: %s", mrt_strerror(rc));
        }
    }
    for (mrt_balancer_counters bc;;) {
        if (rc != MRT_OK)
            break;
        mrt_runtime_balancer_stats(w->rt, &bc);
        if (bc.freed >= bc.retired)
            break;
        sched_yield();
        (void)mrt_runtime_control_tick(w->rt, false);
    }
    for (unsigned i = 0; rc == MRT_OK && i < n; i++) {
        rc = mrt_compute_subscribe(w->c, w->d[i].ref, MRT_COMPUTE_TO_SET, (mrt_compute_ref){ 0 });
        if (rc != MRT_OK)
            seterr(err, errlen, "workload: producer %u to the set: %s", i, mrt_strerror(rc));
    }
    if (rc == MRT_OK) {
        if (pthread_create(&w->ingress, NULL, ingress_main, w) != 0) {
            seterr(err, errlen, "workload: could not start the ingress thread");
            return MRT_ENOMEM;
        }
        w->ingress_running = true;
    }
    return rc;
}

size_t mrt_workload_poll(mrt_workload *w, size_t max)
{
    if (w == NULL || !w->started || w->stopped)
        return 0;
    return mrt_compute_egress_poll(w->c, on_output, w, max);
}

int mrt_workload_stop(mrt_workload *w)
{
    if (w == NULL)
        return MRT_EINVAL;
    if (w->stopped)
        return MRT_OK;
    w->stopped = true;
    if (w->ingress_running) {
        atomic_store(&w->ingress_stop, true);
        pthread_join(w->ingress, NULL);
        w->ingress_running = false;
    }
    /* Everything in flight is delivered (or handed back); egress drains into on_output here. */
    int rc = mrt_runtime_stop(w->rt);
    for (unsigned i = 0; i < w->n; i++)
        (void)mrt_compute_stats_get(w->c, i, &w->final[i]);
    return rc;
}

/* ---- observation ---------------------------------------------------------- */

static void add_compute(mrt_workload_stats *o, const mrt_compute_stats *s)
{
    o->emitted += s->emitted;
    o->routed_set += s->routed_set;
    o->routed_daemon += s->routed_daemon;
    o->egressed += s->egressed;
    o->handed_back += s->handed_back;
    o->daemon_errors += s->daemon_errors;
    o->deferred += s->deferred;
    o->pushed_back += s->pushed_back;
    o->completions += s->completions;
    o->inflight += s->inflight;
    o->buffers_out += s->buffers_out;
}

void mrt_workload_stats_get(const mrt_workload *w, int shard, mrt_workload_stats *out)
{
    memset(out, 0, sizeof *out);
    if (w == NULL || (shard >= 0 && (unsigned)shard >= w->n))
        return;
    for (unsigned i = 0; i < w->n; i++) {
        if (shard >= 0 && (unsigned)shard != i)
            continue;
        mrt_compute_stats s;
        if (w->stopped)
            s = w->final[i];
        else if (mrt_compute_stats_get(w->c, i, &s) != MRT_OK)
            continue;
        add_compute(out, &s);
        if (shard >= 0)
            out->injected = s.injected;
        out->drained += w->drained_shard[i];
    }
    for (unsigned i = 0; i < w->nd; i++) {
        const wl_daemon *d = &w->d[i];
        if (!w->started || (shard >= 0 && d->ref.shard != (unsigned)shard))
            continue;
        out->delivered[d->stage] +=
            atomic_load_explicit(&d->ctr->delivered, memory_order_relaxed);
        out->links_validated += d->validated;
        out->chains += d->validated > 0 && !d->broken;
    }
    if (shard < 0) {
        out->injected = atomic_load_explicit(&w->injected, memory_order_relaxed);
        out->inject_refused = atomic_load_explicit(&w->inject_refused, memory_order_relaxed);
        out->problems = w->problems;
    }
}

size_t mrt_workload_handbacks(const mrt_workload *w, int *why, uint64_t *count, size_t max)
{
    size_t k = 0;
    for (unsigned i = 0; w != NULL && i < WL_HB_SLOTS; i++) {
        uint64_t v = atomic_load_explicit(&w->hb[i], memory_order_relaxed);
        if (v == 0)
            continue;
        if (k < max) {
            why[k] = i == WL_HB_SLOTS - 1 ? MRT_EINVAL : WL_HB_LO + (int)i;
            count[k] = v;
        }
        k++;
    }
    return k;
}

/* Appends one reason to the verdict's list ("; "-separated). */
static void add_reason(char *buf, size_t len, unsigned *count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_reason(char *buf, size_t len, unsigned *count, const char *fmt, ...)
{
    (*count)++;
    size_t used = strlen(buf);
    if (used + 3 >= len)
        return;
    if (used) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

#define U(x) ((unsigned long long)(x))

unsigned mrt_workload_verdict(const mrt_workload *w, char *buf, size_t len)
{
    unsigned k = 0;
    if (buf && len)
        buf[0] = '\0';
    if (w == NULL || !w->stopped) {
        add_reason(buf, len, &k, "the workload did not run to its stop");
        return k;
    }
    mrt_workload_stats t;
    mrt_workload_stats_get(w, -1, &t);
    uint64_t injected_compute = 0;
    for (unsigned i = 0; i < w->n; i++)
        injected_compute += w->final[i].injected;
    int ierr = atomic_load(&w->inject_error);
    if (ierr != MRT_OK)
        add_reason(buf, len, &k, "ingress stopped on %s", mrt_strerror(ierr));
    if (t.injected == 0)
        add_reason(buf, len, &k, "no events moved");
    if (injected_compute != t.injected)
        add_reason(buf, len, &k, "injected %llu, but the shards took %llu", U(t.injected),
                   U(injected_compute));
    /* Each stage hands on exactly what it got: one output per event. */
    const uint64_t *dv = t.delivered;
    if (dv[MRT_WL_PRODUCER] != t.injected)
        add_reason(buf, len, &k, "producers delivered %llu of %llu injected",
                   U(dv[MRT_WL_PRODUCER]), U(t.injected));
    if (t.routed_set != dv[MRT_WL_PRODUCER])
        add_reason(buf, len, &k, "producers delivered %llu, %llu routed to the set",
                   U(dv[MRT_WL_PRODUCER]), U(t.routed_set));
    if (dv[MRT_WL_WORKER] != t.routed_set)
        add_reason(buf, len, &k, "workers delivered %llu of %llu routed to them",
                   U(dv[MRT_WL_WORKER]), U(t.routed_set));
    if (t.routed_daemon != dv[MRT_WL_WORKER])
        add_reason(buf, len, &k, "workers delivered %llu, %llu routed to aggregators",
                   U(dv[MRT_WL_WORKER]), U(t.routed_daemon));
    if (dv[MRT_WL_AGGREGATOR] != t.routed_daemon)
        add_reason(buf, len, &k, "aggregators delivered %llu of %llu routed to them",
                   U(dv[MRT_WL_AGGREGATOR]), U(t.routed_daemon));
    if (t.egressed != dv[MRT_WL_AGGREGATOR])
        add_reason(buf, len, &k, "aggregators delivered %llu, %llu egressed",
                   U(dv[MRT_WL_AGGREGATOR]), U(t.egressed));
    if (t.drained != t.egressed)
        add_reason(buf, len, &k, "%llu egressed, %llu received", U(t.egressed), U(t.drained));
    uint64_t all = dv[0] + dv[1] + dv[2];
    if (t.emitted != all)
        add_reason(buf, len, &k, "%llu outputs stamped for %llu events delivered", U(t.emitted),
                   U(all));
    if (t.handed_back)
        add_reason(buf, len, &k, "%llu handed back", U(t.handed_back));
    if (t.daemon_errors)
        add_reason(buf, len, &k, "%llu deliveries refused by a daemon", U(t.daemon_errors));
    if (t.inflight)
        add_reason(buf, len, &k, "%llu reservations outstanding", U(t.inflight));
    if (t.buffers_out)
        add_reason(buf, len, &k, "%llu pool buffers not home", U(t.buffers_out));
    uint64_t unclaimed = mrt_compute_egress_unclaimed(w->c);
    if (unclaimed)
        add_reason(buf, len, &k, "%llu outputs drained unclaimed", U(unclaimed));
    /* Every chain complete: each daemon's outputs all validated, every injected event seen. */
    for (unsigned i = 0; i < w->nd; i++) {
        const wl_daemon *d = &w->d[i];
        uint64_t got = atomic_load_explicit(&d->ctr->delivered, memory_order_relaxed);
        if (!d->broken && d->validated != got)
            add_reason(buf, len, &k, "%s on shard %u: %llu of %llu outputs validated",
                       wl_type_name[d->stage], d->ref.shard, U(d->validated), U(got));
    }
    if (w->injected_order.base != t.injected)
        add_reason(buf, len, &k, "%llu of %llu injected events came out in order",
                   U(w->injected_order.base), U(t.injected));
    if (w->problems)
        add_reason(buf, len, &k, "%llu inconsistencies: %s", U(w->problems), w->problem_text);
    return k;
}

void mrt_workload_destroy(mrt_workload *w)
{
    if (w == NULL)
        return;
    if (w->ingress_running) {
        atomic_store(&w->ingress_stop, true);
        pthread_join(w->ingress, NULL);
    }
    for (unsigned i = 0; w->d && i < w->nd; i++)
        wl_window_fini(&w->d[i].order);
    wl_window_fini(&w->injected_order);
    free(w->d);
    free(w->counters);
    free(w->map_id);
    free(w->map_ix);
    free(w->drained_shard);
    free(w->final);
    free(w);
}
