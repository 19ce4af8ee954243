/*
 * Egress: outputs to one application thread, in buffers of the emitting
 * shard's pool. The shard enqueues the handle on its egress ring (SPSC:
 * shard -> application); mrt_svc_egress_poll hands the output to the
 * application and enqueues the handle on the shard's egress-return ring
 * (SPSC: application -> shard), which the shard drains in its tick and
 * frees: memory is always freed by its owner. The return ring holds the
 * whole pool, so a return never finds it full.
 */
#include "services/svc_internal.h"

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <string.h>

#define EG_BURST 32u

int svc_egress_init(mrt_svc_shard *ss)
{
    const mrt_svc *svc = ss->svc;
    const unsigned spsc = RING_F_SP_ENQ | RING_F_SC_DEQ;
    ss->egress = svc_ring_new(ss->alloc, sizeof(uint64_t), svc->cfg.egress_ring, spsc,
                              &ss->egress_bytes);
    ss->eg_ret = svc_ring_new(ss->alloc, sizeof(uint64_t), svc->pool_total, spsc,
                              &ss->eg_ret_bytes);
    atomic_init(&ss->eg_pushed, 0);
    return ss->egress && ss->eg_ret ? MRT_OK : MRT_ENOMEM;
}

void svc_egress_fini(mrt_svc_shard *ss)
{
    svc_ring_free(ss->alloc, ss->egress, ss->egress_bytes);
    svc_ring_free(ss->alloc, ss->eg_ret, ss->eg_ret_bytes);
    ss->egress = ss->eg_ret = NULL;
}

int mrt_svc_egress_push(mrt_svc_shard *ss, uint64_t from_id, const mrt_causal_link *link,
                        const void *payload, size_t len)
{
    if (ss == NULL || link == NULL || (payload == NULL && len > 0))
        return MRT_EINVAL;
    if (len > ss->svc->cfg.max_payload) {
        ss->st.refused_toobig++;
        return MRT_SVC_ETOOBIG;
    }
    uint64_t h;
    uint8_t *buf;
    if (!svc_pool_pop(ss, svc_class_of(ss->svc, len), &h, &buf)) {
        ss->st.egress_refused++;
        return MRT_SVC_EPOOL;
    }
    uint64_t l = len;
    memcpy(buf + SVC_BUF_LINK, link, sizeof *link);
    memcpy(buf + SVC_BUF_EG_LEN, &l, sizeof l);
    memcpy(buf + SVC_BUF_EG_FROM, &from_id, sizeof from_id);
    if (len)
        memcpy(buf + SVC_BUF_HDR, payload, len);
    if (rte_ring_sp_enqueue_elem(ss->egress, &h, sizeof h) != 0) {
        svc_pool_push(ss, h);
        ss->st.egress_refused++;
        return MRT_SHARD_EFULL;
    }
    ss->st.egressed++;
    ss->st.egress_out++;
    /* A plain store on the usual targets; read only by mrt_svc_egress_pending. */
    atomic_store_explicit(&ss->eg_pushed, ss->st.egressed, memory_order_release);
    return MRT_OK;
}

/* The tick: buffers the application is done with come home. */
void svc_egress_returns(mrt_svc_shard *ss)
{
    uint64_t h[EG_BURST];
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst_elem(ss->eg_ret, h, sizeof h[0], EG_BURST, NULL)) > 0) {
        for (unsigned i = 0; i < n; i++)
            svc_pool_push(ss, h[i]);
        ss->st.egress_out -= n;
    }
}

size_t mrt_svc_egress_poll(mrt_svc *svc, mrt_svc_egress_fn fn, void *ctx, size_t max)
{
    if (svc == NULL || fn == NULL)
        return 0;
    size_t total = 0;
    unsigned start = svc->eg_next;
    svc->eg_next = start + 1 < svc->n ? start + 1 : 0;
    bool more = true;
    while (more && total < max) {
        more = false;
        for (unsigned k = 0; k < svc->n && total < max; k++) {
            unsigned i = start + k < svc->n ? start + k : start + k - svc->n;
            mrt_svc_shard *ss = atomic_load_explicit(&svc->shards[i], memory_order_acquire);
            if (ss == NULL)
                continue;
            uint64_t h[EG_BURST];
            unsigned want = max - total < EG_BURST ? (unsigned)(max - total) : EG_BURST;
            unsigned n = rte_ring_sc_dequeue_burst_elem(ss->egress, h, sizeof h[0], want, NULL);
            if (n == 0)
                continue;
            for (unsigned j = 0; j < n; j++) {
                const uint8_t *buf = ss->region + svc_h_off(h[j]);
                uint64_t len, from;
                memcpy(&len, buf + SVC_BUF_EG_LEN, sizeof len);
                memcpy(&from, buf + SVC_BUF_EG_FROM, sizeof from);
                fn(ctx, i, from, (const mrt_causal_link *)(const void *)(buf + SVC_BUF_LINK),
                   buf + SVC_BUF_HDR, (size_t)len);
            }
            /* Room for the whole pool: never short (each buffer is in one place). */
            unsigned back = rte_ring_sp_enqueue_burst_elem(ss->eg_ret, h, sizeof h[0], n, NULL);
            (void)back;
            atomic_fetch_add_explicit(&svc->eg_app[i].polled, n, memory_order_release);
            total += n;
            more |= n == want;
        }
    }
    return total;
}

uint64_t mrt_svc_egress_pending(const mrt_svc *svc)
{
    if (svc == NULL)
        return 0;
    uint64_t pending = 0;
    for (unsigned i = 0; i < svc->n; i++) {
        mrt_svc_shard *ss = atomic_load_explicit(&svc->shards[i], memory_order_acquire);
        if (ss == NULL)
            continue;
        /* Polled first: an output counted as polled was pushed before, so the difference is >= 0. */
        uint64_t polled = atomic_load_explicit(&svc->eg_app[i].polled, memory_order_acquire);
        uint64_t pushed = atomic_load_explicit(&ss->eg_pushed, memory_order_acquire);
        pending += pushed - polled;
    }
    return pending;
}
