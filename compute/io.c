/*
 * Ingress and egress: events from application threads into a daemon's
 * shard (services' ingress pool and ring), and outputs subscribed to egress
 * out to one application thread, each with the causal link its host stamped.
 */
#include "compute/cp_internal.h"

int mrt_compute_inject(mrt_compute *c, mrt_compute_ref d, const void *payload, size_t len)
{
    if (c == NULL || (payload == NULL && len > 0))
        return MRT_EINVAL;
    if (!atomic_load(&c->started))
        return MRT_CP_ENOTSTARTED;
    if (atomic_load(&c->stopping))
        return MRT_CP_ESTOPPED;
    if (d.shard >= c->n)
        return MRT_SHARD_EDEST;
    mrt_causal_link link = {
        .origin_hash = c->ingress_origin,
        .sequence = atomic_fetch_add_explicit(&c->inject_seq, 1, memory_order_relaxed),
    };
    int rc = mrt_svc_inject_event(c->svc, d.shard, d.id, &link, payload, len);
    if (rc == MRT_SHARD_ESTOPPED)
        return MRT_CP_ESTOPPED;
    if (rc == MRT_SHARD_ENOTREADY)
        return MRT_CP_ENOTSTARTED;
    return rc;
}

typedef struct egress_call {
    mrt_compute_egress_fn fn;
    void *ctx;
} egress_call;

static void on_egress(void *ctx, unsigned shard, uint64_t from_id, const mrt_causal_link *link,
                      const void *payload, size_t len)
{
    const egress_call *e = ctx;
    mrt_compute_output o = { .from = { .id = from_id, .shard = (uint16_t)shard },
                             .link = *link, .payload = payload, .len = len };
    e->fn(e->ctx, &o);
}

size_t mrt_compute_egress_poll(mrt_compute *c, mrt_compute_egress_fn fn, void *ctx, size_t max)
{
    if (c == NULL || fn == NULL || max == 0)
        return 0;
    egress_call e = { fn, ctx };
    return mrt_svc_egress_poll(c->svc, on_egress, &e, max);
}

int mrt_compute_set_egress_drain(mrt_compute *c, mrt_compute_egress_fn fn, void *ctx)
{
    if (c == NULL)
        return MRT_EINVAL;
    if (atomic_load(&c->started))
        return MRT_CP_ESTARTED;
    c->egress_drain = fn;
    c->egress_drain_ctx = ctx;
    return MRT_OK;
}

uint64_t mrt_compute_egress_unclaimed(const mrt_compute *c)
{
    return c ? atomic_load(&((mrt_compute *)c)->egress_unclaimed) : 0;
}

static void unclaimed(void *ctx, const mrt_compute_output *o)
{
    (void)o;
    atomic_fetch_add_explicit(&((mrt_compute *)ctx)->egress_unclaimed, 1, memory_order_relaxed);
}

size_t mrt_compute_drain_egress_(mrt_compute *c)
{
    if (c == NULL)
        return 0;
    if (c->egress_drain)
        return mrt_compute_egress_poll(c, c->egress_drain, c->egress_drain_ctx, 256);
    return mrt_compute_egress_poll(c, unclaimed, c, 256);
}
