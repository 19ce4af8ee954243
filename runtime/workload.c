/*
 * The built-in default workload: every shard sends sequenced events to the
 * shards its balancer picks (round robin over every shard, itself included,
 * by default); every receiver checks that
 * each sender's sequence arrives in order, without gaps or duplicates, and
 * delivers the event to the daemon host it owns, whose daemon (a sampler)
 * emits one causally stamped output every SAMPLE_EVERY events.
 */
#include "runtime/runtime_internal.h"

#include "meshrt/mrt_daemon.h"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

enum { WL_EVENT = 1 };
_Static_assert(MRT_SHARD_ID_LEN == MRT_HOST_KEY_SIZE, "a shard's identity is its host key");
enum { SAMPLE_EVERY = 64 };

/* The sampler daemon: counts events, emits (origin, sequence) of every 64th. */
typedef struct sampler {
    uint64_t count;
} sampler;

static int sampler_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    sampler *sm = state;
    if (++sm->count % SAMPLE_EVERY != 0)
        return MRT_OK;
    uint64_t out[2] = { ev->link.origin_hash, ev->link.sequence };
    return mrt_daemon_emit_copy(sink, out, sizeof out);
}

static int sampler_snapshot(const void *state, void *buf, size_t cap, size_t *len)
{
    *len = sizeof(uint64_t);
    if (cap < *len)
        return MRT_DAEMON_ENOSPACE;
    memcpy(buf, &((const sampler *)state)->count, sizeof(uint64_t));
    return MRT_OK;
}

static int sampler_restore(void *state, const void *buf, size_t len)
{
    if (len != sizeof(uint64_t))
        return MRT_DAEMON_EBADSTATE;
    memcpy(&((sampler *)state)->count, buf, sizeof(uint64_t));
    return MRT_OK;
}

static const mrt_daemon_vtable sampler_vt = {
    .name = "sampler",
    .process = sampler_process,
    .snapshot = sampler_snapshot,
    .restore = sampler_restore,
};


typedef struct mrt_workload {
    mrt_runtime *rt;
    unsigned id, n;
    uint64_t *next_seq;        /* per destination */
    uint64_t *expect;          /* per source */
    uint64_t *origin_of;       /* per source: the origin hash of its host */
    sampler daemon;
    mrt_host *host;
    mrt_lb_shard *lb;          /* this shard's balancer state */
    struct rte_ring *reports;  /* breaker reports up to the control plane (SPSC) */
    size_t reports_bytes;
    mrt_workload_stats st;     /* owner-only */
    struct {
        alignas(128) _Atomic uint64_t sent;
        _Atomic uint64_t received;
        _Atomic uint64_t handed_back;
        _Atomic uint64_t violations;
        _Atomic uint64_t refused;
        _Atomic uint64_t delivered;
        _Atomic uint64_t emitted;
        _Atomic uint64_t daemon_errors;
        _Atomic uint64_t lb_errors;
        _Atomic uint64_t lb_adopts;
    } pub;
} mrt_workload;

static void on_event(mrt_shard *s, const mrt_msg *m, mrt_workload *w)
{
    unsigned src = m->src;
    w->st.received++;
    if (src >= w->n || m->w[0] != w->expect[src]) {
        w->st.violations++;
        if (src < w->n && m->w[0] > w->expect[src])
            w->expect[src] = m->w[0] + 1;
        return;
    }
    w->expect[src]++;
    /* Hand it to this shard's daemon host; time is the shard's coarse clock. */
    mrt_event ev = {
        .link = { .origin_hash = w->origin_of[src], .sequence = m->w[0] },
        .timestamp = mrt_shard_now(s),
    };
    if (mrt_host_deliver(w->host, &ev, ev.timestamp) != MRT_OK) {
        w->st.daemon_errors++;
        return;
    }
    w->st.delivered++;
    size_t outputs = 0;
    (void)mrt_host_outputs(w->host, &outputs);
    if (outputs) {
        /* The sampler's outputs end here: counted, then released. */
        w->st.emitted += outputs;
        mrt_host_release_outputs(w->host);
    }
}

static void on_events(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx)
{
    for (unsigned i = 0; i < n; i++)
        on_event(s, &m[i], ctx);
}

static void on_handback(mrt_shard *s, const mrt_msg *m, mrt_handback_reason why, void *ctx)
{
    (void)s;
    (void)m;
    (void)why;
    mrt_workload *w = ctx;
    w->st.handed_back++;
}

static void publish(mrt_workload *w)
{
    atomic_store_explicit(&w->pub.sent, w->st.sent, memory_order_relaxed);
    atomic_store_explicit(&w->pub.received, w->st.received, memory_order_relaxed);
    atomic_store_explicit(&w->pub.handed_back, w->st.handed_back, memory_order_relaxed);
    atomic_store_explicit(&w->pub.violations, w->st.violations, memory_order_relaxed);
    atomic_store_explicit(&w->pub.refused, w->st.refused, memory_order_relaxed);
    atomic_store_explicit(&w->pub.delivered, w->st.delivered, memory_order_relaxed);
    atomic_store_explicit(&w->pub.emitted, w->st.emitted, memory_order_relaxed);
    atomic_store_explicit(&w->pub.daemon_errors, w->st.daemon_errors, memory_order_relaxed);
    atomic_store_explicit(&w->pub.lb_errors, w->st.lb_errors, memory_order_relaxed);
    atomic_store_explicit(&w->pub.lb_adopts, w->st.lb_adopts, memory_order_relaxed);
}

/* Breaker openings go up to the control plane; a full ring keeps them in the balancer's buffer. */
static void forward_reports(mrt_workload *w)
{
    mrt_lb_breaker_report rep[16];
    unsigned room = rte_ring_free_count(w->reports);
    if (room == 0)
        return;
    size_t n = mrt_lb_shard_drain_reports(w->lb, rep, room < 16 ? room : 16);
    if (n)
        (void)rte_ring_sp_enqueue_bulk_elem(w->reports, rep, sizeof(rep[0]), (unsigned)n, NULL);
}

/*
 * One burst per destination per iteration, each destination picked by the
 * shard's balancer from its current snapshot. A destination that refuses
 * part of its burst (backpressure) is offered the same sequence numbers
 * again. A burst the balancer cannot place (no snapshot, a failed select,
 * or a pick the mesh refuses as a destination) is counted in lb_errors,
 * which `meshrt run` reports and counts against its verdict. The tick runs at the poll-iteration boundary, where no selection is
 * in progress: the one place the shard may switch snapshots.
 */
static void on_tick(mrt_shard *s, bool draining, void *ctx)
{
    mrt_workload *w = ctx;
    if (mrt_lb_domain_sync(w->rt->lb_domain, w->id, w->lb) == 1)
        w->st.lb_adopts++;
    if (!draining) {
        const mrt_lb_snapshot *snap = mrt_lb_shard_snapshot(w->lb);
        uint64_t now = mrt_shard_now(s);
        unsigned burst = w->rt->cfg.burst;
        mrt_msg m[MRT_MAX_BURST];
        for (unsigned k = 0; k < w->n; k++) {
            mrt_lb_selection sel;
            if (snap == NULL || mrt_lb_select(snap, w->lb, NULL, now, &sel) != MRT_OK) {
                w->st.lb_errors++;
                continue;
            }
            unsigned dst = (unsigned)sel.user_data;
            uint64_t seq = w->next_seq[dst];
            for (unsigned i = 0; i < burst; i++)
                m[i] = (mrt_msg){ .type = WL_EVENT, .w = { seq + i } };
            unsigned accepted = 0;
            int rc = mrt_shard_send_burst(s, dst, m, burst, &accepted);
            w->next_seq[dst] = seq + accepted;
            w->st.sent += accepted;
            /* Backpressure is not a failure of the destination; a bad destination is. */
            bool placed = rc == MRT_OK || rc == MRT_SHARD_EFULL;
            if (placed)
                w->st.refused += burst - accepted;
            else
                w->st.lb_errors++; /* the mesh refused the balancer's pick: not placed */
            (void)mrt_lb_complete(w->lb, &sel, placed, 0, now);
        }
        forward_reports(w);
    }
    publish(w);
}

int mrt_workload_attach(mrt_runtime *rt, mrt_shard *s)
{
    unsigned id = mrt_shard_id(s);
    unsigned n = mrt_mesh_size(rt->mesh);
    const mrt_allocator *a = mrt_shard_allocator(s);
    if (rt->workload == NULL)
        return MRT_ESTATE;
    mrt_workload *w = mrt_alloc_aligned(a, sizeof(*w), 128);
    if (w == NULL)
        return MRT_ENOMEM;
    memset(w, 0, sizeof(*w));
    w->rt = rt;
    w->id = id;
    w->n = n;
    w->next_seq = mrt_calloc(a, sizeof(uint64_t) * n);
    w->expect = mrt_calloc(a, sizeof(uint64_t) * n);
    w->origin_of = mrt_calloc(a, sizeof(uint64_t) * n);
    int rc = MRT_ENOMEM;
    if (w->next_seq && w->expect && w->origin_of) {
        mrt_host_config hc = { .alloc = a, .max_origins = n, .max_outputs = 4,
                               .payload_bytes = 4096 };
        mrt_shard_identity(id, hc.key);
        for (unsigned i = 0; i < n; i++) {
            uint8_t key[MRT_HOST_KEY_SIZE];
            mrt_shard_identity(i, key);
            w->origin_of[i] = mrt_host_origin_from_key(key);
        }
        rc = mrt_host_create(&hc, (mrt_daemon){ &sampler_vt, &w->daemon }, &w->host);
    }
    if (rc == MRT_OK)
        rc = mrt_lb_shard_create(a, 0x9e3779b97f4a7c15ull * (id + 1), &w->lb);
    if (rc == MRT_OK) {
        ssize_t sz = rte_ring_get_memsize_elem(sizeof(mrt_lb_breaker_report), 64);
        w->reports_bytes = sz > 0 ? (size_t)sz : 0;
        w->reports = sz > 0 ? mrt_alloc_aligned(a, w->reports_bytes, 64) : NULL;
        if (w->reports == NULL ||
            rte_ring_init(w->reports, "mrt-lb-reports", 64, RING_F_SP_ENQ | RING_F_SC_DEQ) != 0)
            rc = MRT_ENOMEM;
    }
    if (rc != MRT_OK) {
        mrt_free_aligned(a, w->reports, w->reports_bytes, 64);
        mrt_lb_shard_destroy(w->lb);
        mrt_host_destroy(w->host);
        mrt_free(a, w->next_seq, 0);
        mrt_free(a, w->expect, 0);
        mrt_free(a, w->origin_of, 0);
        mrt_free_aligned(a, w, sizeof(*w), 128);
        return rc;
    }
    rt->workload[id] = w;
    mrt_shard_set_burst_handler(s, WL_EVENT, on_events, w);
    mrt_shard_set_tick(s, on_tick, w);
    mrt_shard_set_handback(s, on_handback, w);
    return MRT_OK;
}

void mrt_workload_detach(mrt_runtime *rt, unsigned i)
{
    if (rt->workload == NULL || rt->workload[i] == NULL)
        return;
    mrt_workload *w = rt->workload[i];
    /* Not on the shard's thread any more: free through the any-thread handle of its arena. */
    mrt_allocator a = mrt_allocator_for_arena(mrt_shard_allocator(mrt_mesh_shard(rt->mesh, i))->arena);
    mrt_free(&a, w->next_seq, sizeof(uint64_t) * w->n);
    mrt_free(&a, w->expect, sizeof(uint64_t) * w->n);
    mrt_free(&a, w->origin_of, sizeof(uint64_t) * w->n);
    mrt_host_destroy(w->host);
    mrt_lb_domain_offline(rt->lb_domain, i);
    mrt_lb_shard_destroy(w->lb);
    mrt_free_aligned(&a, w->reports, w->reports_bytes, 64);
    mrt_free_aligned(&a, w, sizeof(*w), 128);
    rt->workload[i] = NULL;
}

void mrt_runtime_workload_stats(const mrt_runtime *rt, unsigned i, mrt_workload_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (rt == NULL || rt->workload == NULL || i >= rt->sel.count || rt->workload[i] == NULL)
        return;
    const mrt_workload *w = rt->workload[i];
    out->sent = atomic_load_explicit(&w->pub.sent, memory_order_relaxed);
    out->received = atomic_load_explicit(&w->pub.received, memory_order_relaxed);
    out->handed_back = atomic_load_explicit(&w->pub.handed_back, memory_order_relaxed);
    out->violations = atomic_load_explicit(&w->pub.violations, memory_order_relaxed);
    out->refused = atomic_load_explicit(&w->pub.refused, memory_order_relaxed);
    out->delivered = atomic_load_explicit(&w->pub.delivered, memory_order_relaxed);
    out->emitted = atomic_load_explicit(&w->pub.emitted, memory_order_relaxed);
    out->daemon_errors = atomic_load_explicit(&w->pub.daemon_errors, memory_order_relaxed);
    out->lb_errors = atomic_load_explicit(&w->pub.lb_errors, memory_order_relaxed);
    out->lb_adopts = atomic_load_explicit(&w->pub.lb_adopts, memory_order_relaxed);
}

size_t mrt_workload_take_reports(mrt_runtime *rt, unsigned i, mrt_lb_breaker_report *out,
                                 size_t max)
{
    if (rt->workload == NULL || rt->workload[i] == NULL)
        return 0;
    return rte_ring_sc_dequeue_burst_elem(rt->workload[i]->reports, out, sizeof(*out),
                                          (unsigned)max, NULL);
}
