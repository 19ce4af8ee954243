/*
 * Ingress: events with payload from threads that are not shards.
 *
 * Each shard owns an ingress pool (the pool's size classes again, placed
 * after its pool in the same region, so handles resolve through the same
 * base). Its free lists are rte_rings of buffer indices shared by many
 * threads on both sides: an injector dequeues an index, fills the buffer
 * and injects the 32-byte message through the shard's ingress ring; the
 * shard delivers and enqueues the index back. The rings are
 * single-producer/single-consumer: the shard is the only putter, so it
 * never takes a lock; injectors share the taking side under a lock
 * (ifree_get): DPDK's MP/MC and HTS modes do not order a put-back before
 * the next take under C11 or visibly to ThreadSanitizer (core/spin.h). An
 * injector whose injection failed puts its index on the orphan ring
 * (iorphan, the injectors' side under iorphan_put), from which the shard
 * moves it back each iteration. The shard allocates and frees the memory;
 * the rings only move indices, so no thread ever frees another's.
 */
#include "services/svc_internal.h"
#include "shards/ring_count.h"

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <string.h>

int svc_ingress_init(mrt_svc_shard *ss)
{
    const mrt_svc *svc = ss->svc;
    atomic_init(&ss->iorphan_pending, 0);
    for (unsigned c = 0; c < svc->nclasses; c++) {
        uint32_t cnt = svc->icount[c];
        if (cnt == 0)
            continue;
        ss->iout[c] = mrt_calloc(ss->alloc, cnt);
        /* SP/SC; the injectors' side of each under its lock (ifree_take, orphan_put). */
        mrt_spin_init(&ss->ifree_get[c]);
        mrt_spin_init(&ss->iorphan_put[c]);
        ss->ifree[c] = svc_ring_new(ss->alloc, sizeof(uint32_t), cnt,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ, &ss->ifree_bytes[c]);
        ss->iorphan[c] = svc_ring_new(ss->alloc, sizeof(uint32_t), cnt,
                                      RING_F_SP_ENQ | RING_F_SC_DEQ, &ss->ifree_bytes[c]);
        if (ss->iout[c] == NULL || ss->ifree[c] == NULL || ss->iorphan[c] == NULL)
            return MRT_ENOMEM;
        for (uint32_t i = 0; i < cnt; i++)
            atomic_init(&ss->iout[c][i], 0);
        /* Lowest index first out: the first buffers used are the first in memory. */
        for (uint32_t i = 0; i < cnt; i++)
            (void)rte_ring_sp_enqueue_elem(ss->ifree[c], &i, sizeof i);
    }
    return MRT_OK;
}

/* Take a free index of class c (any thread); false when none is free. */
static inline bool ifree_take(mrt_svc_shard *ss, unsigned c, uint32_t *idx)
{
    mrt_spin_lock(&ss->ifree_get[c]);
    bool ok = rte_ring_sc_dequeue_elem(ss->ifree[c], idx, sizeof *idx) == 0;
    mrt_spin_unlock(&ss->ifree_get[c]);
    return ok;
}

/*
 * Put index idx of class c back (the shard only: no lock). Never full: one
 * slot per buffer. The tail's release orders everything the shard did with
 * the buffer before the next taker's acquire.
 */
static inline void ifree_put(mrt_svc_shard *ss, unsigned c, uint32_t idx)
{
    (void)rte_ring_sp_enqueue_elem(ss->ifree[c], &idx, sizeof idx);
}

/* An injector that took idx but could not inject it hands it to the shard. Never full. */
static inline void orphan_put(mrt_svc_shard *ss, unsigned c, uint32_t idx)
{
    mrt_spin_lock(&ss->iorphan_put[c]);
    (void)rte_ring_sp_enqueue_elem(ss->iorphan[c], &idx, sizeof idx);
    mrt_spin_unlock(&ss->iorphan_put[c]);
    atomic_store_explicit(&ss->iorphan_pending, 1, memory_order_release);
}

/*
 * Shard thread, each iteration: orphaned indices back on the free lists.
 * One load when there are none (the usual case) instead of a look at every
 * class's ring. Cleared before the scan: an orphan put after the clear sets
 * it again and waits for the next iteration, never longer.
 */
void svc_ingress_reclaim(mrt_svc_shard *ss)
{
    if (atomic_load_explicit(&ss->iorphan_pending, memory_order_relaxed) == 0 ||
        atomic_exchange_explicit(&ss->iorphan_pending, 0, memory_order_acquire) == 0)
        return;
    for (unsigned c = 0; c < ss->svc->nclasses; c++) {
        uint32_t idx[32];
        unsigned n;
        if (ss->iorphan[c] == NULL)
            continue;
        while ((n = rte_ring_sc_dequeue_burst_elem(ss->iorphan[c], idx, sizeof idx[0], 32,
                                                   NULL)) > 0)
            (void)rte_ring_sp_enqueue_burst_elem(ss->ifree[c], idx, sizeof idx[0], n, NULL);
    }
}

void svc_ingress_fini(mrt_svc_shard *ss)
{
    const mrt_svc *svc = ss->svc;
    for (unsigned c = 0; c < svc->nclasses; c++) {
        mrt_free(ss->alloc, (void *)ss->iout[c], svc->icount[c]);
        svc_ring_free(ss->alloc, ss->ifree[c], ss->ifree_bytes[c]);
        svc_ring_free(ss->alloc, ss->iorphan[c], ss->ifree_bytes[c]); /* same size */
        ss->iorphan[c] = NULL;
        ss->iout[c] = NULL;
        ss->ifree[c] = NULL;
    }
}

int mrt_svc_inject_event(mrt_svc *svc, unsigned dst, uint64_t daemon_id,
                         const mrt_causal_link *link, const void *payload, size_t len)
{
    if (svc == NULL || link == NULL || (payload == NULL && len > 0))
        return MRT_EINVAL;
    if (len > svc->cfg.max_payload)
        return MRT_SVC_ETOOBIG;
    if (dst >= svc->n)
        return MRT_SHARD_EDEST;
    /* Acquire: dst's pool and free lists, set up before it published itself, are visible. */
    mrt_svc_shard *ss = atomic_load_explicit(&svc->shards[dst], memory_order_acquire);
    if (ss == NULL)
        return MRT_SHARD_ENOTREADY;
    if (mrt_mesh_drained(svc->mesh))
        return MRT_SHARD_ESTOPPED;
    unsigned c = svc_class_of(svc, len);
    if (ss->ifree[c] == NULL)
        return MRT_SVC_EPOOL;
    uint32_t idx;
    if (!ifree_take(ss, c, &idx))
        return MRT_SVC_EPOOL;
    uint64_t off = svc->ioff[c] + (uint64_t)idx * svc->class_size[c];
    uint8_t *buf = ss->region + off;
    memcpy(buf + SVC_BUF_LINK, link, sizeof *link);
    memset(buf + SVC_BUF_SENT, 0, 8); /* no completion, so no send time */
    if (len)
        memcpy(buf + SVC_BUF_HDR, payload, len);
    atomic_store_explicit(&ss->iout[c][idx], 1, memory_order_relaxed);
    mrt_msg m = { .type = (uint16_t)(svc->cfg.shard_type_base + SVC_T_EVENT),
                  .aux = (uint32_t)len,
                  .w = { daemon_id, svc_handle(dst, SVC_H_INGRESS | c, off), 0 } };
    /* The ingress ring's release orders the buffer's bytes before the message. */
    int rc = mrt_mesh_inject(svc->mesh, dst, &m);
    if (rc != MRT_OK) {
        atomic_store_explicit(&ss->iout[c][idx], 0, memory_order_relaxed);
        orphan_put(ss, c, idx); /* the shard puts it back: it is the free list's only putter */
    }
    return rc;
}

/*
 * An event message from the ingress ring: when it names one of this shard's
 * ingress buffers that an injector holds, the event it carries (*ev) and the
 * buffer to free after delivery (*ref); false for anything else (a raw
 * mrt_mesh_inject of an event type, a forged handle): malformed, nothing to
 * free. Delivering is route.c's; this file only owns the buffers.
 */
bool svc_ingress_take(mrt_svc_shard *ss, const mrt_msg *m, mrt_event *ev, svc_iref *ref)
{
    const mrt_svc *svc = ss->svc;
    uint64_t h = m->w[1];
    if (svc_h_owner(h) != ss->id || m->w[2] != 0 ||
        !svc_ingress_index(svc, h, m->aux, &ref->c, &ref->idx) ||
        atomic_exchange_explicit(&ss->iout[ref->c][ref->idx], 0, memory_order_relaxed) != 1)
        return false;
    const uint8_t *buf = ss->region + svc_h_off(h);
    memcpy(&ev->link, buf + SVC_BUF_LINK, sizeof ev->link);
    ev->payload = buf + SVC_BUF_HDR;
    ev->payload_len = m->aux;
    ss->st.ingress++;
    return true;
}

void svc_ingress_done(mrt_svc_shard *ss, svc_iref ref)
{
    ifree_put(ss, ref.c, ref.idx);
}

uint32_t mrt_svc_ingress_free(const mrt_svc *svc, unsigned i, unsigned c)
{
    mrt_svc_shard *ss = svc && i < svc->n ? atomic_load(&svc->shards[i]) : NULL;
    if (ss == NULL || c >= svc->nclasses || ss->ifree[c] == NULL)
        return 0;
    /* An orphaned index is free too: the shard just has not moved it back yet. */
    return mrt_ring_entries(ss->ifree[c]) + mrt_ring_entries(ss->iorphan[c]);
}

uint32_t mrt_svc_ingress_class(const mrt_svc *svc, unsigned c)
{
    return (svc && c < svc->nclasses) ? svc->icount[c] : 0;
}
