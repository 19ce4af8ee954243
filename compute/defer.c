/*
 * Deferral queues: sends refused for backpressure wait here, per
 * destination shard, one for the set (re-selected when sent) and one for
 * egress (an application that polls slowly is backpressure too), and go
 * out first at the end of the iteration, in order. Bounded and
 * preallocated: `defer_depth` entries and a `defer_bytes` byte ring per
 * queue, so deferring never allocates. A payload may wrap around the end of
 * the byte ring (no space is wasted, so room is exact); it is made
 * contiguous in a per-shard scratch buffer when it is sent.
 */
#include "compute/cp_internal.h"

#include <string.h>

int cp_defer_init(cp_shard *cs)
{
    const cp_config *cfg = &cs->c->cfg;
    cs->dq = mrt_calloc(cs->a, sizeof(cp_dq) * CP_NQ(cs->n));
    cs->scratch = mrt_alloc(cs->a, cs->c->max_payload ? cs->c->max_payload : 1);
    if (cs->dq == NULL || cs->scratch == NULL)
        return MRT_ENOMEM;
    for (unsigned q = 0; q < CP_NQ(cs->n); q++) {
        cs->dq[q].e = mrt_alloc(cs->a, sizeof(cp_dentry) * cfg->defer_depth);
        cs->dq[q].bytes = mrt_alloc(cs->a, cfg->defer_bytes);
        if (cs->dq[q].e == NULL || cs->dq[q].bytes == NULL)
            return MRT_ENOMEM;
    }
    return MRT_OK;
}

void cp_defer_fini(cp_shard *cs)
{
    const cp_config *cfg = &cs->c->cfg;
    if (cs->dq) {
        for (unsigned q = 0; q < CP_NQ(cs->n); q++) {
            mrt_free(cs->a, cs->dq[q].e, sizeof(cp_dentry) * cfg->defer_depth);
            mrt_free(cs->a, cs->dq[q].bytes, cfg->defer_bytes);
        }
        mrt_free(cs->a, cs->dq, sizeof(cp_dq) * CP_NQ(cs->n));
    }
    mrt_free(cs->a, cs->scratch, cs->c->max_payload ? cs->c->max_payload : 1);
    cs->dq = NULL;
    cs->scratch = NULL;
}

int cp_defer_put(cp_shard *cs, unsigned q, uint64_t id, unsigned shard,
                 const mrt_causal_link *link, const void *payload, size_t len)
{
    const cp_config *cfg = &cs->c->cfg;
    cp_dq *d = &cs->dq[q];
    if (len > cs->c->max_payload)
        return MRT_SVC_ETOOBIG;
    if (d->count == cfg->defer_depth || cfg->defer_bytes - d->bused < len)
        return MRT_SHARD_EFULL;
    uint32_t off = (uint32_t)(((uint64_t)d->bhead + d->bused) % cfg->defer_bytes);
    size_t first = cfg->defer_bytes - off;
    if (first > len)
        first = len;
    if (first)
        memcpy(d->bytes + off, payload, first);
    if (len > first)
        memcpy(d->bytes, (const uint8_t *)payload + first, len - first);
    d->e[(d->head + d->count) % cfg->defer_depth] =
        (cp_dentry){ .id = id, .link = *link, .len = (uint32_t)len, .off = off,
                     .shard = (uint16_t)shard };
    d->count++;
    d->bused += (uint32_t)len;
    cs->deferred_now++;
    /* At once, not in the hook: a held event retried after the hooks may defer too. */
    (void)mrt_svc_set_pending(cs->ss, CP_SUBSYSTEM_ID, cs->deferred_now);
    return MRT_OK;
}

static void pop(cp_shard *cs, cp_dq *d)
{
    const cp_config *cfg = &cs->c->cfg;
    const cp_dentry *e = &d->e[d->head];
    d->bhead = (uint32_t)(((uint64_t)e->off + e->len) % cfg->defer_bytes);
    d->bused -= e->len;
    d->head = (d->head + 1) % cfg->defer_depth;
    d->count--;
    cs->deferred_now--;
    (void)mrt_svc_set_pending(cs->ss, CP_SUBSYSTEM_ID, cs->deferred_now);
    if (d->count == 0)
        d->head = d->bhead = d->bused = 0; /* start over: fewer payloads wrap */
}

/* Send queue q's entries in order; stop at the first refusal for backpressure. */
static void flush_queue(cp_shard *cs, unsigned q)
{
    const cp_config *cfg = &cs->c->cfg;
    cp_dq *d = &cs->dq[q];
    while (d->count) {
        const cp_dentry *e = &d->e[d->head];
        const uint8_t *p = d->bytes + e->off;
        if ((uint64_t)e->off + e->len > cfg->defer_bytes) {
            size_t first = cfg->defer_bytes - e->off;
            memcpy(cs->scratch, p, first);
            memcpy(cs->scratch + first, d->bytes, e->len - first);
            p = cs->scratch;
        }
        int rc = cp_send_q(cs, q, e->id, e->shard, &e->link, p, e->len);
        if (cp_backpressure(rc))
            return; /* still backpressure: the rest waits behind it */
        if (rc != MRT_OK) {
            mrt_event ev = { .link = e->link, .payload = p, .payload_len = e->len };
            cp_handback(cs, (mrt_compute_ref){ .id = e->id, .shard = e->shard }, &ev, rc);
        }
        pop(cs, d);
    }
}

void cp_defer_flush(cp_shard *cs)
{
    for (unsigned q = 0; q < CP_NQ(cs->n); q++)
        if (cs->dq[q].count)
            flush_queue(cs, q);
}
