/*
 * The reverse flow: buffers back to their owners, completions back to the
 * selecting shard, and the in-flight table that turns a completion token
 * into the selection it completes.
 *
 * A receiver stages what it owes each shard during the iteration and the
 * tick sends it in bursts, packed (3 handles or 2 completions per 32-byte
 * message). What a full ring refuses stays staged for the next tick; the
 * staging arrays are sized by their bounds (a shard cannot hold more of an
 * owner's buffers than its pool has, nor more of its tokens than its
 * in-flight table has), so a full reverse ring delays, never loses.
 */
#include "services/svc_internal.h"

#include <string.h>

int svc_flow_init(mrt_svc_shard *ss)
{
    const mrt_svc *svc = ss->svc;
    uint32_t nslots = svc->cfg.inflight;
    ss->pend = mrt_calloc(ss->alloc, sizeof(svc_pend) * ss->n);
    ss->pend_dirty = mrt_calloc(ss->alloc, sizeof(unsigned) * ss->n);
    if (ss->pend == NULL || ss->pend_dirty == NULL)
        return MRT_ENOMEM;
    for (unsigned d = 0; d < ss->n; d++) {
        if (d == ss->id)
            continue; /* own buffers and own tokens are settled in place */
        ss->pend[d].ret = mrt_alloc(ss->alloc, sizeof(uint64_t) * svc->pool_total);
        if (ss->pend[d].ret == NULL)
            return MRT_ENOMEM;
        if (ss->svc->cfg.domain != NULL) {
            ss->pend[d].done = mrt_alloc(ss->alloc, sizeof(svc_done) * nslots);
            if (ss->pend[d].done == NULL)
                return MRT_ENOMEM;
        }
    }
    if (ss->svc->cfg.domain == NULL)
        return MRT_OK;
    ss->slots = mrt_calloc(ss->alloc, sizeof(svc_slot) * nslots);
    ss->slot_free = mrt_alloc(ss->alloc, sizeof(uint32_t) * nslots);
    if (ss->slots == NULL || ss->slot_free == NULL)
        return MRT_ENOMEM;
    for (uint32_t i = 0; i < nslots; i++) {
        ss->slots[i].gen = 1;
        ss->slot_free[i] = nslots - 1 - i;
    }
    ss->nfree_slots = nslots;
    return MRT_OK;
}

void svc_flow_fini(mrt_svc_shard *ss)
{
    const mrt_svc *svc = ss->svc;
    uint32_t nslots = svc->cfg.inflight;
    if (ss->pend) {
        for (unsigned d = 0; d < ss->n; d++) {
            mrt_free(ss->alloc, ss->pend[d].ret, sizeof(uint64_t) * svc->pool_total);
            mrt_free(ss->alloc, ss->pend[d].done, sizeof(svc_done) * nslots);
        }
    }
    mrt_free(ss->alloc, ss->pend, sizeof(svc_pend) * ss->n);
    mrt_free(ss->alloc, ss->pend_dirty, sizeof(unsigned) * ss->n);
    mrt_free(ss->alloc, ss->slots, sizeof(svc_slot) * nslots);
    mrt_free(ss->alloc, ss->slot_free, sizeof(uint32_t) * nslots);
    ss->pend = NULL;
    ss->pend_dirty = NULL;
    ss->slots = NULL;
    ss->slot_free = NULL;
}

static inline void mark_owed(mrt_svc_shard *ss, unsigned d)
{
    if (!ss->pend[d].dirty) {
        ss->pend[d].dirty = 1;
        ss->pend_dirty[ss->npend_dirty++] = d;
    }
}

/* The event that carried buffer h was handled here: free it, or owe it to its owner. */
void svc_release(mrt_svc_shard *ss, uint64_t h)
{
    unsigned owner = svc_h_owner(h);
    if (owner == ss->id) {
        ss->st.returns_local++;
        svc_pool_push(ss, h);
        return;
    }
    svc_pend *p = &ss->pend[owner];
    if (__builtin_expect(p->nret == ss->svc->pool_total, 0)) {
        /* Beyond the bound: only a duplicated handle gets here. */
        ss->st.returns_invalid++;
        return;
    }
    p->ret[p->nret++] = h;
    ss->st.backlog++;
    mark_owed(ss, owner);
}

/* A completion for one of this shard's selections; `now`: the shard's clock, read once per burst. */
static inline void complete_local(mrt_svc_shard *ss, uint64_t key, bool ok, uint32_t latency,
                                  uint64_t now)
{
    uint32_t slot = (uint32_t)(key >> SVC_SLOT_BITS) & SVC_GEN_MASK;
    uint32_t gen = (uint32_t)key & SVC_GEN_MASK;
    if (__builtin_expect(ss->slots == NULL || slot >= ss->svc->cfg.inflight ||
                         !ss->slots[slot].busy || ss->slots[slot].gen != gen, 0)) {
        ss->st.completions_stale++;
        return;
    }
    /* ESTALE / ECOMPLETED from the balancer are accounted there; the slot is done either way. */
    (void)mrt_lb_complete(ss->lb, &ss->slots[slot].sel, ok, latency, now);
    ss->st.completions++;
    uint64_t t0 = ss->slots[slot].t_sel;
    mrt_hist_record(&ss->hist[MRT_SVC_HIST_COMPLETION_RTT], now > t0 ? now - t0 : 0);
    svc_slot_drop(ss, slot);
}

/* The event carrying `token` ended here (ok: delivered): settle it or owe it to its selector. */
void svc_complete(mrt_svc_shard *ss, uint64_t token, bool ok, uint32_t latency)
{
    unsigned sel = (unsigned)(token >> 48) - 1u;
    uint64_t key = token & SVC_KEY_MASK;
    if (sel == ss->id) {
        complete_local(ss, key, ok, latency, mrt_shard_now(ss->shard));
        return;
    }
    if (sel >= ss->n || ss->pend[sel].done == NULL) {
        ss->st.completions_stale++;
        return;
    }
    svc_pend *p = &ss->pend[sel];
    if (__builtin_expect(p->ndone == ss->svc->cfg.inflight, 0)) {
        ss->st.completions_stale++; /* beyond the bound: a duplicated token */
        return;
    }
    p->done[p->ndone++] = (svc_done){ .key = key, .latency = latency, .ok = ok };
    ss->st.backlog++;
    mark_owed(ss, sel);
}

/* Send up to all of p's returns to d; true when none is left. */
static bool send_returns(mrt_svc_shard *ss, unsigned d, svc_pend *p)
{
    uint32_t done = 0;
    while (done < p->nret) {
        mrt_msg m[32];
        unsigned k = 0;
        uint32_t i = done;
        while (k < 32 && i < p->nret) {
            uint32_t c = p->nret - i < SVC_RET_PER_MSG ? p->nret - i : SVC_RET_PER_MSG;
            m[k] = (mrt_msg){ .type = ss->t_ret, .aux = c };
            for (uint32_t j = 0; j < c; j++)
                m[k].w[j] = p->ret[i + j];
            i += c;
            k++;
        }
        unsigned acc = 0;
        (void)mrt_shard_send_burst(ss->shard, d, m, k, &acc);
        uint32_t items = acc * SVC_RET_PER_MSG;
        if (items > i - done)
            items = i - done; /* only the last message can be short */
        done += items;
        ss->st.return_msgs += acc;
        ss->st.returns_sent += items;
        if (acc < k)
            break;
    }
    ss->st.backlog -= done;
    p->nret -= done;
    if (p->nret && done)
        memmove(p->ret, p->ret + done, sizeof(uint64_t) * p->nret);
    return p->nret == 0;
}

static bool send_completions(mrt_svc_shard *ss, unsigned d, svc_pend *p)
{
    uint32_t done = 0;
    while (done < p->ndone) {
        mrt_msg m[32];
        unsigned k = 0;
        uint32_t i = done;
        while (k < 32 && i < p->ndone) {
            uint32_t c = p->ndone - i < SVC_DONE_PER_MSG ? p->ndone - i : SVC_DONE_PER_MSG;
            /* aux: count in bits 0..7, ok flags from bit 8 */
            m[k] = (mrt_msg){ .type = ss->t_done, .aux = c };
            for (uint32_t j = 0; j < c; j++) {
                const svc_done *x = &p->done[i + j];
                m[k].aux |= (uint32_t)x->ok << (8 + j);
                m[k].w[j] = x->key | (uint64_t)x->latency << 32;
            }
            i += c;
            k++;
        }
        unsigned acc = 0;
        (void)mrt_shard_send_burst(ss->shard, d, m, k, &acc);
        uint32_t items = acc * SVC_DONE_PER_MSG;
        if (items > i - done)
            items = i - done;
        done += items;
        ss->st.return_msgs += acc;
        ss->st.done_msgs_sent += acc;
        if (acc < k)
            break;
    }
    ss->st.backlog -= done;
    p->ndone -= done;
    if (p->ndone && done)
        memmove(p->done, p->done + done, sizeof(svc_done) * p->ndone);
    return p->ndone == 0;
}

/* The tick: send what is owed; what a full ring refuses stays for the next tick (counted). */
void svc_flush_owed(mrt_svc_shard *ss)
{
    unsigned keep = 0;
    for (unsigned i = 0; i < ss->npend_dirty; i++) {
        unsigned d = ss->pend_dirty[i];
        svc_pend *p = &ss->pend[d];
        /* Completions first: they are what releases the selector's reservations. */
        bool empty = send_completions(ss, d, p);
        empty = send_returns(ss, d, p) && empty;
        if (empty) {
            p->dirty = 0;
        } else {
            ss->pend_dirty[keep++] = d;
            ss->st.backlog_retries++;
        }
    }
    ss->npend_dirty = keep;
}

/*
 * Two passes: first every returned buffer goes back to its pool and its
 * header words are loaded — independent loads, so the line misses of a burst
 * overlap (the receiver wrote the line) — then the completions are applied.
 * One pass measured a miss per buffer in series behind each completion.
 */
void svc_on_returns(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx)
{
    mrt_svc_shard *ss = ctx;
    uint64_t now = mrt_shard_now(s);
    ss->st.ret_msgs_received += n;
    enum { CHUNK = 16 }; /* messages per pass: up to 48 buffers */
    for (unsigned i0 = 0; i0 < n; i0 += CHUNK) {
        uint64_t key[CHUNK * SVC_RET_PER_MSG], outcome[CHUNK * SVC_RET_PER_MSG];
        unsigned k = 0, end = n - i0 < CHUNK ? n : i0 + CHUNK;
        for (unsigned i = i0; i < end; i++) {
            unsigned c = m[i].aux;
            if (m[i].src == MRT_SRC_EXTERNAL || c == 0 || c > SVC_RET_PER_MSG) {
                ss->st.returns_invalid++;
                continue;
            }
            for (unsigned j = 0; j < c; j++) {
                uint8_t *b = svc_pool_push(ss, m[i].w[j]);
                if (b == NULL)
                    continue;
                memcpy(&key[k], b + SVC_BUF_KEY, sizeof key[k]);
                memcpy(&outcome[k], b + SVC_BUF_SENT, sizeof outcome[k]);
                k++;
            }
            ss->st.returns_received += c;
        }
        for (unsigned x = 0; x < k; x++)
            if (key[x] != 0)
                complete_local(ss, key[x], (outcome[x] >> 32) & 1u, (uint32_t)outcome[x], now);
    }
}

void svc_on_done(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx)
{
    (void)s;
    mrt_svc_shard *ss = ctx;
    uint64_t now = mrt_shard_now(ss->shard);
    ss->st.done_msgs_received += n;
    for (unsigned i = 0; i < n; i++) {
        unsigned c = m[i].aux & 0xffu;
        if (m[i].src == MRT_SRC_EXTERNAL || c == 0 || c > SVC_DONE_PER_MSG) {
            ss->st.completions_stale++;
            continue;
        }
        for (unsigned j = 0; j < c; j++)
            complete_local(ss, m[i].w[j] & SVC_KEY_MASK, (m[i].aux >> (8 + j)) & 1u,
                           (uint32_t)(m[i].w[j] >> 32), now);
    }
}
