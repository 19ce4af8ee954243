/*
 * Routing an event through a group: select a member on the table the
 * caller holds (a shard's adopted snapshot, or for injection the published
 * one inside a reader phase), reserve a connection, put the envelope in
 * front of the payload, send. Nothing here allocates, locks or reads a
 * clock; a reservation is released on every refusal.
 */
#include "groups/groups_internal.h"

#include <string.h>

/* A selecting shard's reservations: its own counts per member, written by that shard only. */
static inline bool try_reserve(const grp_gtab *gt, grp_res *res, unsigned idx)
{
    grp_res *r = &res[idx];
    uint32_t term = gt->s[idx].term;
    uint32_t out = atomic_load_explicit(&r->out, memory_order_relaxed);
    if (atomic_load_explicit(&r->term, memory_order_relaxed) != term) {
        atomic_store_explicit(&r->term, term, memory_order_relaxed); /* a new incarnation */
        out = 0;
    }
    if (out >= gt->max_conn)
        return false;
    atomic_store_explicit(&r->out, out + 1, memory_order_relaxed);
    return true;
}

static inline uint32_t res_count(const grp_gtab *gt, const grp_res *res, unsigned idx)
{
    const grp_res *r = &res[idx];
    return atomic_load_explicit(&r->term, memory_order_relaxed) == gt->s[idx].term
               ? atomic_load_explicit(&r->out, memory_order_relaxed)
               : 0;
}

/* Injection's reservations: term << 32 | count per member, shared by the injecting threads (CAS). */
static inline bool ext_reserve(_Atomic uint64_t *p, uint32_t term, uint32_t max)
{
    uint64_t v = atomic_load(p);
    for (;;) {
        uint64_t nv;
        if ((uint32_t)(v >> 32) != term)
            nv = ((uint64_t)term << 32) | 1u;
        else if ((uint32_t)v >= max)
            return false;
        else
            nv = v + 1;
        if (atomic_compare_exchange_weak(p, &v, nv))
            return true;
    }
}

static inline void ext_put(_Atomic uint64_t *p, uint32_t term)
{
    uint64_t v = atomic_load(p);
    while ((uint32_t)(v >> 32) == term && (uint32_t)v > 0 &&
           !atomic_compare_exchange_weak(p, &v, v - 1))
        ;
}

/*
 * Where a selection reserves: a selecting shard's own counts (`res`,
 * written by that shard only, its cursor `rr`) or, for injecting threads,
 * the group's shared counts (`ext`, its cursor `ext_rr`). One selection for
 * both; each caller passes a constant kind, so the compiler specialises it.
 */
typedef struct pick {
    const grp_gtab *gt;
    grp_res *res;
    uint32_t *rr;
    _Atomic uint64_t *ext;
    _Atomic uint64_t *ext_rr;
} pick;

static inline bool reserve(const pick *p, unsigned idx)
{
    return p->res ? try_reserve(p->gt, p->res, idx)
                  : ext_reserve(&p->ext[idx], p->gt->s[idx].term, p->gt->max_conn);
}

static inline uint32_t count(const pick *p, unsigned idx)
{
    if (p->res)
        return res_count(p->gt, p->res, idx);
    uint64_t v = atomic_load_explicit(&p->ext[idx], memory_order_relaxed);
    return (uint32_t)(v >> 32) == p->gt->s[idx].term ? (uint32_t)v : 0;
}

/* The member for `key` (the active one, or by the strategy), reserved; or a negative status. */
static inline __attribute__((always_inline)) int select_member(const pick *p, uint64_t key)
{
    const grp_gtab *gt = p->gt;
    unsigned n = gt->nup;
    if (n == 0)
        return MRT_GROUPS_ENOMEMBER;
    if (gt->route == GRP_ROUTE_ACTIVE) {
        unsigned a = gt->active;
        if (a >= gt->nslots || gt->s[a].state != GRP_SLOT_UP)
            return MRT_GROUPS_ENOMEMBER;
        return reserve(p, a) ? (int)a : MRT_GROUPS_EMAXCONN;
    }
    switch (gt->strategy) {
    case MRT_GROUP_HASH: {
        /* Sticky: the key's slot while it is up; else the next hash, then any up member. */
        unsigned b = gt->jump[grp_key_bucket(key)];
        if (gt->s[b].state == GRP_SLOT_UP)
            return reserve(p, b) ? (int)b : MRT_GROUPS_EMAXCONN;
        uint64_t k = key;
        for (unsigned t = 0; t < 4; t++) {
            k = k * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
            b = grp_jump_hash(k, gt->nslots);
            if (gt->s[b].state == GRP_SLOT_UP)
                return reserve(p, b) ? (int)b : MRT_GROUPS_EMAXCONN;
        }
        break; /* fall back to round robin */
    }
    case MRT_GROUP_LEAST_CONN: {
        unsigned best = gt->up[0];
        uint32_t bc = count(p, best);
        for (unsigned i = 1; i < n && bc; i++) {
            unsigned idx = gt->up[i];
            uint32_t c = count(p, idx);
            if (c < bc)
                best = idx, bc = c;
        }
        return reserve(p, best) ? (int)best : MRT_GROUPS_EMAXCONN;
    }
    default:
        break;
    }
    /* Round robin from the cursor, skipping members at max connections. */
    unsigned c = p->res ? *p->rr
                        : (unsigned)(atomic_fetch_add_explicit(p->ext_rr, 1, memory_order_relaxed) % n);
    if (c >= n)
        c = 0; /* the group shrank since */
    for (unsigned k = 0; k < n; k++) {
        unsigned idx = gt->up[c];
        c = c + 1 == n ? 0 : c + 1;
        if (reserve(p, idx)) {
            if (p->res)
                *p->rr = c;
            return (int)idx;
        }
    }
    return MRT_GROUPS_EMAXCONN;
}

int grp_select_shard(const grp_gtab *gt, grp_res *res, uint32_t *rr, uint64_t key)
{
    return select_member(&(pick){ .gt = gt, .res = res, .rr = rr }, key);
}

static inline bool backpressure(int rc)
{
    return rc == MRT_SHARD_EFULL || rc == MRT_SVC_EPOOL;
}

int mrt_group_send(mrt_svc_shard *ss, mrt_group *grp, uint64_t key, const mrt_causal_link *link,
                   const void *payload, size_t len, unsigned *member)
{
    if (ss == NULL || grp == NULL || link == NULL || (payload == NULL && len > 0))
        return MRT_GROUPS_EINVAL;
    grp_shard *gs = grp_shard_of(grp->g, ss);
    if (gs == NULL)
        return MRT_GROUPS_EINVAL;
    unsigned gid = grp->gid;
    const grp_gtab *gt = &gs->tab->g[gid];
    if (gt->gen != grp->gen)
        return MRT_GROUPS_ENOGROUP;
    if (len + sizeof(grp_env) > gs->scratch_len)
        return MRT_GROUPS_ETOOBIG;
    int idx = grp_select_shard(gt, gs->res[gid], &gs->rr[gid], key);
    if (idx < 0) {
        grp_inc(&gs->ctr->refused, 1);
        return idx;
    }
    const grp_slot *s = &gt->s[idx];
    grp_env e = { .magic = GRP_MAGIC, .gid = (uint16_t)gid, .sel = (uint16_t)gs->id,
                  .idx = (uint8_t)idx, .term = s->term, .gen = grp->gen };
    memcpy(gs->scratch, &e, sizeof e);
    if (len)
        memcpy(gs->scratch + sizeof e, payload, len);
    mrt_compute_ref ref = { .id = s->id, .shard = s->shard };
    int rc = mrt_compute_send(ss, ref, link, gs->scratch, len + sizeof e);
    if (backpressure(rc)) /* deferred by compute, in order; the reservation rides with it */
        rc = mrt_compute_defer(ss, ref, link, gs->scratch, len + sizeof e);
    if (rc != MRT_OK) {
        grp_res_put(&gs->res[gid][idx]);
        grp_inc(&gs->ctr->refused, 1);
        return rc;
    }
    grp_inc(&gs->ctr->routed, 1);
    if (member)
        *member = (unsigned)idx;
    return MRT_OK;
}

/* ---- injection: the published table inside a reader phase ------------------------ */

int mrt_group_inject(mrt_group *grp, uint64_t key, const void *payload, size_t len)
{
    if (grp == NULL || (payload == NULL && len > 0))
        return MRT_GROUPS_EINVAL;
    if (len > MRT_GROUPS_INJECT_MAX)
        return MRT_GROUPS_ETOOBIG;
    mrt_groups *g = grp->g;
    /* Enter a reader phase (re-checked, so a concurrent flip is never missed). */
    uint64_t p;
    for (;;) {
        p = atomic_load(&g->ext_phase) & 1;
        atomic_fetch_add(&g->ext_cnt[p], 1);
        if ((atomic_load(&g->ext_phase) & 1) == p)
            break;
        atomic_fetch_sub(&g->ext_cnt[p], 1);
    }
    const grp_table *t = atomic_load_explicit(&g->pub, memory_order_acquire);
    const grp_gtab *gt = &t->g[grp->gid];
    pick pk = { .gt = gt, .ext = g->ext_out[grp->gid], .ext_rr = &grp->ext_rr };
    int idx = gt->gen == grp->gen ? select_member(&pk, key) : MRT_GROUPS_ENOGROUP;
    grp_slot s = idx >= 0 ? gt->s[idx] : (grp_slot){ 0 };
    atomic_fetch_sub(&g->ext_cnt[p], 1);
    if (idx < 0) {
        atomic_fetch_add_explicit(&g->ext_refused, 1, memory_order_relaxed);
        return idx;
    }
    uint8_t buf[sizeof(grp_env) + MRT_GROUPS_INJECT_MAX];
    grp_env e = { .magic = GRP_MAGIC, .gid = grp->gid, .sel = MRT_SRC_EXTERNAL,
                  .idx = (uint8_t)idx, .term = s.term, .gen = grp->gen };
    memcpy(buf, &e, sizeof e);
    if (len)
        memcpy(buf + sizeof e, payload, len);
    int rc = mrt_compute_inject(g->c, (mrt_compute_ref){ s.id, s.shard }, buf, len + sizeof e);
    if (rc != MRT_OK) {
        ext_put(&g->ext_out[grp->gid][idx], s.term);
        atomic_fetch_add_explicit(&g->ext_refused, 1, memory_order_relaxed);
        return rc;
    }
    atomic_fetch_add_explicit(&g->ext_routed, 1, memory_order_relaxed);
    return MRT_OK;
}
