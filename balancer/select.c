/*
 * A shard's event path through the balancer: select and complete. Everything
 * here runs on one shard's thread and touches only that shard's memory plus
 * the read-only snapshot: no atomics, no locks, no allocation. The shard's
 * state itself (create, adopt, stats) is in shard.c, its breakers in
 * breaker.c, the least-* trees both keep current in lb_tree.h.
 */
#include "balancer/lb_internal.h"
#include "balancer/lb_tree.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The same XXH3 as libxxhash, compiled inline so an 8..32-byte key costs a few ns, not a call. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define WHY_BREAKER 1u
#define WHY_MAXCONN 2u
#define CH_RING_STEPS 16

/* ------------------------------------------------------------------ select */

/* 0 when slot can take a request on this shard, else WHY_*. */
static inline uint32_t blocked(const mrt_lb_snapshot *S, const mrt_lb_shard *sh, uint32_t slot)
{
    (void)S;
    const lb_live *h = &sh->live[slot];
    if (h->brk >= LB_BRK_OPEN)
        return WHY_BREAKER;
    if (h->inflight >= sh->maxc)
        return WHY_MAXCONN;
    return 0;
}

/* Position of `slot` among the pool's (ascending) members. */
static uint32_t member_index(const lb_pool *P, uint32_t slot)
{
    if (P->flags & LB_POOL_ALL)
        return slot;
    uint32_t lo = 0, hi = P->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (P->members[mid] < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * The picked endpoint cannot take the request here: take the next member
 * after it that can. Bounded by the pool size; this is the only walk a
 * select makes, and only while breakers are open or endpoints are full.
 */
static uint32_t walk_from(const mrt_lb_snapshot *S, mrt_lb_shard *sh, const lb_pool *P,
                          uint32_t slot, uint32_t *why)
{
    uint32_t n = P->n;
    uint32_t i = member_index(P, slot);
    for (uint32_t k = 1; k < n; k++) {
        if (++i >= n)
            i = 0;
        uint32_t s = P->members[i];
        uint32_t b = blocked(S, sh, s);
        if (b == 0) {
            sh->st.skipped_candidates += k;
            return s;
        }
        *why |= b;
    }
    sh->st.skipped_candidates += n;
    return LB_NONE;
}

static inline uint32_t check_or_walk(const mrt_lb_snapshot *S, mrt_lb_shard *sh,
                                     const lb_pool *P, uint32_t s, uint32_t *why)
{
    uint32_t b = blocked(S, sh, s);
    if (__builtin_expect(b == 0, 1))
        return s;
    *why |= b;
    return walk_from(S, sh, P, s, why);
}

static uint32_t rr_walk(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t pi,
                        const lb_pool *P, uint32_t c, uint32_t *why)
{
    uint32_t n = P->n;
    for (uint32_t k = 1; k < n; k++) {
        uint32_t s = P->members[c];
        if (++c == n)
            c = 0;
        uint32_t b = blocked(S, sh, s);
        if (b == 0) {
            sh->rr[pi] = c;
            sh->st.skipped_candidates += k;
            return s;
        }
        *why |= b;
    }
    sh->rr[pi] = c;
    sh->st.skipped_candidates += n;
    return LB_NONE;
}

static inline uint32_t pick_rr(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t pi,
                               const lb_pool *P, uint32_t *why)
{
    uint32_t c = sh->rr[pi];
    uint32_t s = P->members[c];
    if (++c == P->n)
        c = 0;
    uint32_t b = blocked(S, sh, s);
    if (__builtin_expect(b == 0, 1)) {
        sh->rr[pi] = c;
        return s;
    }
    *why |= b;
    return rr_walk(S, sh, pi, P, c, why);
}

static inline uint32_t pick_wrr(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t pi,
                                const lb_pool *P, uint32_t *why)
{
    uint32_t c = sh->wrr[pi];
    uint32_t s = P->wrr_seq[c];
    if (++c == P->wrr_len)
        c = 0;
    sh->wrr[pi] = c;
    return check_or_walk(S, sh, P, s, why);
}

static inline uint32_t ring_find(const lb_pool *P, uint64_t h)
{
    uint32_t bits = P->dir_bits;
    uint32_t b = bits ? (uint32_t)(h >> (64 - bits)) : 0;
    uint32_t lo = P->ring_dir[b], hi = P->ring_dir[b + 1];
    uint32_t mid32 = lb_ring_mid(h, bits);
    const lb_rent *ring = P->ring;
    if (__builtin_expect(hi - lo <= LB_RING_WINDOW, 1)) {
        /* Branch-free: count the bucket's entries below the key (the ring is padded). */
        uint32_t below = 0;
        for (uint32_t j = 0; j < LB_RING_WINDOW; j++)
            below += (ring[lo + j].mid < mid32) & (lo + j < hi);
        lo += below;
    } else {
        while (lo < hi) {
            uint32_t m = lo + (hi - lo) / 2;
            if (ring[m].mid < mid32)
                lo = m + 1;
            else
                hi = m;
        }
    }
    return lo == P->ring_n ? 0 : lo;
}

static uint32_t pick_ch(const mrt_lb_snapshot *S, mrt_lb_shard *sh, const lb_pool *P,
                        uint64_t h, uint32_t *why)
{
    uint32_t pos = ring_find(P, h);
    uint32_t s0 = P->ring[pos].slot;
    uint32_t b = blocked(S, sh, s0);
    if (__builtin_expect(b == 0, 1))
        return s0;
    *why |= b;
    /* Clockwise successors first (the ring's own failover), then the pool. */
    uint32_t prev = s0;
    for (uint32_t k = 1; k <= CH_RING_STEPS && k < P->ring_n; k++) {
        if (++pos == P->ring_n)
            pos = 0;
        uint32_t s = P->ring[pos].slot;
        if (s == prev)
            continue;
        prev = s;
        b = blocked(S, sh, s);
        if (b == 0) {
            sh->st.skipped_candidates += k;
            return s;
        }
        *why |= b;
    }
    return walk_from(S, sh, P, s0, why);
}

static uint32_t pick_p2c(const mrt_lb_snapshot *S, mrt_lb_shard *sh, const lb_pool *P,
                         uint32_t *why)
{
    uint32_t n = P->n;
    uint64_t r = lb_rand(&sh->rng);
    bool all = (P->flags & LB_POOL_ALL) != 0;
    uint32_t i1 = (uint32_t)(((r >> 32) * n) >> 32);
    uint32_t s1 = all ? i1 : P->members[i1];
    if (n == 1)
        return check_or_walk(S, sh, P, s1, why);
    uint32_t i2 = (uint32_t)(((r & 0xffffffffu) * (n - 1)) >> 32);
    i2 += (uint32_t)(i2 >= i1); /* distinct from i1, uniform over the rest, no branch */
    uint32_t s2 = all ? i2 : P->members[i2];
    uint32_t b1 = blocked(S, sh, s1), b2 = blocked(S, sh, s2);
    if (__builtin_expect((b1 | b2) == 0, 1))
        return sh->live[s2].inflight < sh->live[s1].inflight ? s2 : s1;
    if (b1 == 0)
        return s1;
    if (b2 == 0)
        return s2;
    *why |= b1 | b2;
    return walk_from(S, sh, P, s1, why);
}

static uint32_t pick_tree(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t pi,
                          const lb_pool *P, uint32_t *why)
{
    if (__builtin_expect(!sh->tree_on[pi], 0))
        lb_tree_build(S, sh, pi);
    const lb_tnode *root = &sh->tree[P->tree_base + 1];
    if (__builtin_expect(root->key < DBL_MAX, 1))
        return P->members[root->idx];
    *why |= root->key == INFINITY ? WHY_BREAKER : WHY_MAXCONN;
    return LB_NONE;
}

/* The request's hash key (XXH3-64, as lb_key_hash): routing key, then session id, then request id. */
static inline bool request_key(const mrt_lb_request *rq, uint64_t *h)
{
    if (rq == NULL)
        return false;
    if (rq->routing_key_len > 0 && rq->routing_key != NULL) {
        *h = XXH3_64bits(rq->routing_key, rq->routing_key_len);
        return true;
    }
    if (rq->session_id_len > 0 && rq->session_id != NULL) {
        *h = XXH3_64bits(rq->session_id, rq->session_id_len);
        return true;
    }
    if (rq->request_id_len > 0 && rq->request_id != NULL) {
        *h = XXH3_64bits(rq->request_id, rq->request_id_len);
        return true;
    }
    return false;
}

/* Pick from one pool; LB_NONE with *why set when every candidate is blocked. */
static inline __attribute__((always_inline)) uint32_t
pick(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t pi, const mrt_lb_request *rq,
     uint32_t *why, uint8_t *used, const mrt_lb_strategy st)
{
    const lb_pool *P = &S->pools[pi];
    uint64_t h;
    *used = (uint8_t)st;
    switch (st) {
    case MRT_LB_ROUND_ROBIN:
        return pick_rr(S, sh, pi, P, why);
    case MRT_LB_WEIGHTED_ROUND_ROBIN:
        return pick_wrr(S, sh, pi, P, why);
    case MRT_LB_RANDOM: {
        uint32_t i = lb_reduce(lb_rand(&sh->rng), P->n);
        return check_or_walk(S, sh, P, (P->flags & LB_POOL_ALL) ? i : P->members[i], why);
    }
    case MRT_LB_WEIGHTED_RANDOM: {
        uint64_t r = lb_rand(&sh->rng);
        const lb_alias *A = &P->alias[(uint32_t)(((r >> 32) * P->n) >> 32)];
        return check_or_walk(S, sh, P, (uint32_t)r < A->thr ? A->self : A->other, why);
    }
    case MRT_LB_POWER_OF_TWO:
        return pick_p2c(S, sh, P, why);
    case MRT_LB_CONSISTENT_HASH:
        if (!request_key(rq, &h))
            break;
        return pick_ch(S, sh, P, h, why);
    case MRT_LB_MAGLEV:
        if (!request_key(rq, &h))
            break;
        return check_or_walk(S, sh, P, P->mag_slot[lb_reduce(h, P->mag_m)], why);
    case MRT_LB_LEAST_CONNECTIONS:
    case MRT_LB_WEIGHTED_LEAST_CONN:
    case MRT_LB_LEAST_LATENCY:
    case MRT_LB_LEAST_LOAD:
        return pick_tree(S, sh, pi, P, why);
    case MRT_LB_ADAPTIVE:
        if (P->flags & LB_POOL_TREE) { /* pool mean load > 0.7 */
            *used = MRT_LB_LEAST_CONNECTIONS;
            return pick_tree(S, sh, pi, P, why);
        }
        if (request_key(rq, &h)) {
            *used = MRT_LB_CONSISTENT_HASH;
            return pick_ch(S, sh, P, h, why);
        }
        *used = MRT_LB_WEIGHTED_ROUND_ROBIN;
        return pick_wrr(S, sh, pi, P, why);
    default:
        break;
    }
    /* keyless consistent hash / Maglev */
    *used = MRT_LB_ROUND_ROBIN;
    return pick_rr(S, sh, pi, P, why);
}

static inline int why_error(uint32_t why)
{
    return (why & WHY_MAXCONN) ? MRT_LB_EMAXCONN : MRT_LB_ECIRCUITOPEN;
}

static int filter_column(const mrt_lb_snapshot *S, uint64_t mask, uint32_t *col)
{
    if (mask == 0) {
        *col = 0;
        return MRT_OK;
    }
    uint32_t lo = 0, hi = S->ncols - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (S->filter_masks[mid] < mask)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < S->ncols - 1 && S->filter_masks[lo] == mask) {
        *col = lo + 1;
        return MRT_OK;
    }
    return MRT_LB_EFILTER;
}

/*
 * The select path as a template over the strategy: instantiated once per
 * strategy below, so each instance carries only its own strategy's code.
 */
/* Why the chosen pool is empty (cold). */
static int empty_pool_error(const mrt_lb_snapshot *S)
{
    if (S->n == 0)
        return S->registered == 0 ? MRT_LB_ENOENDPOINTS : MRT_LB_EALLUNHEALTHY;
    return MRT_LB_ENOTAGMATCH;
}

/* Claim a half-open breaker's single probe (cold). */
static void take_probe(mrt_lb_shard *sh, lb_live *h, uint32_t id, uint64_t now_ns,
                       mrt_lb_selection *out, uint8_t *flags)
{
    lb_cold *c = &sh->cold[id];
    h->brk = LB_BRK_PROBING;
    c->probe_at = now_ns;
    out->probe_epoch = c->probe_epoch;
    *flags |= MRT_LB_SEL_PROBE;
    sh->st.probes++;
    lb_add_tripped(sh, id, lb_sat_add(now_ns, sh->recovery_ns));
}

static inline bool uses_trees(mrt_lb_strategy st)
{
    return st == MRT_LB_LEAST_CONNECTIONS || st == MRT_LB_WEIGHTED_LEAST_CONN ||
           st == MRT_LB_LEAST_LATENCY || st == MRT_LB_LEAST_LOAD || st == MRT_LB_ADAPTIVE;
}

/*
 * The select path as a template over the strategy: instantiated once per
 * strategy below, so each instance carries only its own strategy's code.
 */
static inline __attribute__((always_inline)) int
select_impl(const mrt_lb_snapshot *S, mrt_lb_shard *sh, const mrt_lb_request *rq,
            uint64_t now_ns, mrt_lb_selection *out, const mrt_lb_strategy strategy)
{
    int rc;
    if (__builtin_expect(now_ns >= sh->next_wake, 0))
        lb_breaker_wake(sh, now_ns);

    uint32_t col = 0;
    uint8_t flags = 0;
    uint32_t pi = 0;
    if (rq != NULL) {
        if (rq->required_tags != 0) {
            if ((rc = filter_column(S, rq->required_tags, &col)) != MRT_OK) {
                if (S->n == 0)
                    rc = empty_pool_error(S);
                goto err;
            }
            pi = col;
        }
        /* The client zone's pool first; all zones when it has nothing (and fallback is on). */
        uint16_t zone = rq->zone;
        if (zone != MRT_LB_ZONE_NONE) {
            uint32_t row = zone < MRT_LB_MAX_ZONES ? S->zone_row[zone] : LB_ZROW_NONE;
            if (row != LB_ZROW_NONE && S->pools[row * S->ncols + col].n > 0) {
                pi = row * S->ncols + col;
            } else if (S->pools[col].n > 0) { /* else: the empty-pool error below */
                if (!S->cfg.zone_fallback) {
                    rc = MRT_LB_ENOZONE;
                    goto err;
                }
                flags = MRT_LB_SEL_FALLBACK;
                sh->st.zone_fallbacks++;
            }
        }
    }
    if (__builtin_expect(S->pools[pi].n == 0, 0)) {
        rc = empty_pool_error(S);
        goto err;
    }
    uint32_t why = 0;
    uint8_t used;
    uint32_t slot;
    for (;;) {
        slot = pick(S, sh, pi, rq, &why, &used, strategy);
        if (__builtin_expect(slot != LB_NONE, 1))
            break;
        if (pi == col || !S->cfg.zone_fallback) {
            rc = why_error(why);
            goto err;
        }
        /* every endpoint of the zone is blocked on this shard: all zones */
        pi = col;
        flags = MRT_LB_SEL_FALLBACK;
        sh->st.zone_fallbacks++;
    }

    /* reserve */
    const lb_slot *sl = &S->slots[slot];
    uint32_t id = sl->id;
    lb_live *h = &sh->live[slot];
    h->inflight++;
    sh->st.outstanding++;
    sh->st.selects++;
    out->probe_epoch = 0;
    if (__builtin_expect(h->brk == LB_BRK_HALF, 0))
        take_probe(sh, h, id, now_ns, out, &flags);
    if (uses_trees(strategy) && S->tree_nodes > 0)
        lb_tree_update_slot(S, sh, slot);
    out->node_id = S->node_ids + (size_t)slot * MRT_LB_NODE_ID_LEN;
    out->user_data = sl->user;
    out->endpoint_id = id;
    out->generation = sl->gen;
    out->slot = slot;
    out->flags = flags;
    out->strategy = used;
    return MRT_OK;
err:
    sh->st.select_errors++;
    return rc;
}

#define LB_SELECT_INSTANCE(fn, st)                                                                 \
    static int fn(const mrt_lb_snapshot *S, mrt_lb_shard *sh, const mrt_lb_request *rq,          \
                  uint64_t now_ns, mrt_lb_selection *out)                                          \
    {                                                                                              \
        return select_impl(S, sh, rq, now_ns, out, st);                                            \
    }
LB_SELECT_INSTANCE(select_rr, MRT_LB_ROUND_ROBIN)
LB_SELECT_INSTANCE(select_wrr, MRT_LB_WEIGHTED_ROUND_ROBIN)
LB_SELECT_INSTANCE(select_lc, MRT_LB_LEAST_CONNECTIONS)
LB_SELECT_INSTANCE(select_wlc, MRT_LB_WEIGHTED_LEAST_CONN)
LB_SELECT_INSTANCE(select_random, MRT_LB_RANDOM)
LB_SELECT_INSTANCE(select_wrandom, MRT_LB_WEIGHTED_RANDOM)
LB_SELECT_INSTANCE(select_ch, MRT_LB_CONSISTENT_HASH)
LB_SELECT_INSTANCE(select_maglev, MRT_LB_MAGLEV)
LB_SELECT_INSTANCE(select_latency, MRT_LB_LEAST_LATENCY)
LB_SELECT_INSTANCE(select_load, MRT_LB_LEAST_LOAD)
LB_SELECT_INSTANCE(select_p2c, MRT_LB_POWER_OF_TWO)
LB_SELECT_INSTANCE(select_adaptive, MRT_LB_ADAPTIVE)

static lb_select_fn *const select_fns[MRT_LB_STRATEGY_COUNT] = {
    [MRT_LB_ROUND_ROBIN] = select_rr,
    [MRT_LB_WEIGHTED_ROUND_ROBIN] = select_wrr,
    [MRT_LB_LEAST_CONNECTIONS] = select_lc,
    [MRT_LB_WEIGHTED_LEAST_CONN] = select_wlc,
    [MRT_LB_RANDOM] = select_random,
    [MRT_LB_WEIGHTED_RANDOM] = select_wrandom,
    [MRT_LB_CONSISTENT_HASH] = select_ch,
    [MRT_LB_MAGLEV] = select_maglev,
    [MRT_LB_LEAST_LATENCY] = select_latency,
    [MRT_LB_LEAST_LOAD] = select_load,
    [MRT_LB_POWER_OF_TWO] = select_p2c,
    [MRT_LB_ADAPTIVE] = select_adaptive,
};

lb_select_fn *lb_select_for(mrt_lb_strategy st)
{
    return select_fns[st];
}

int mrt_lb_select(const mrt_lb_snapshot *S, mrt_lb_shard *sh, const mrt_lb_request *rq,
                  uint64_t now_ns, mrt_lb_selection *out)
{
    if (__builtin_expect(S == NULL || sh == NULL || out == NULL, 0))
        return MRT_LB_EINVAL;
    /* Both pointers are to live snapshots (a shard detaches before its snapshot can be freed). */
    if (__builtin_expect(S != sh->snap, 0))
        return MRT_LB_ENOTADOPTED;
    return sh->select(S, sh, rq, now_ns, out); /* the adopted strategy's instance */
}

/* ------------------------------------------------------------------ complete */

/*
 * What complete and release share: mark sel done and give its reservation
 * back (the shard's outstanding count and the endpoint's in-flight count).
 * MRT_LB_ESTALE when the probe was reclaimed (released then) or the id was
 * re-keyed to another endpoint (that reservation went with it).
 */
static inline int give_back(mrt_lb_shard *sh, mrt_lb_selection *sel)
{
    if (sh == NULL || sel == NULL || sh->select == NULL)
        return MRT_LB_EINVAL;
    if (sel->flags & MRT_LB_SEL_DONE)
        return MRT_LB_ECOMPLETED;
    sel->flags |= MRT_LB_SEL_DONE;
    sh->st.completes++;
    uint32_t id = sel->endpoint_id;
    bool known = id < sh->cap && sh->cold[id].gen == sel->generation;
    if (known && (sel->flags & MRT_LB_SEL_PROBE) && sel->probe_epoch != sh->cold[id].probe_epoch) {
        sh->st.stale_completes++;
        return MRT_LB_ESTALE;
    }
    if (sh->st.outstanding > 0)
        sh->st.outstanding--;
    if (!known) {
        sh->st.stale_completes++;
        return MRT_LB_ESTALE;
    }
    lb_live *h = lb_live_of(sh, id);
    if (h->inflight > 0)
        h->inflight--;
    return MRT_OK;
}

/* Detached (reader offline): the snapshot may be gone; no tree to maintain. */
static inline void tree_touch(mrt_lb_shard *sh, uint32_t id)
{
    if (sh->snap != NULL && sh->snap->tree_nodes > 0)
        lb_tree_update_id(sh, id);
}

int mrt_lb_complete(mrt_lb_shard *sh, mrt_lb_selection *sel, bool ok, uint64_t latency_ns,
                    uint64_t now_ns)
{
    int rc = give_back(sh, sel);
    if (rc != MRT_OK)
        return rc;
    uint32_t id = sel->endpoint_id;
    bool probe = (sel->flags & MRT_LB_SEL_PROBE) != 0;
    lb_live *h = lb_live_of(sh, id);
    lb_cold *c = &sh->cold[id];
    double lat = (double)latency_ns;
    c->ewma = c->ewma == 0.0 ? lat : c->ewma + sh->latency_alpha * (lat - c->ewma);
    if (sh->breaker_threshold > 0) {
        if (probe && h->brk == LB_BRK_PROBING) {
            if (ok) {
                h->brk = LB_BRK_CLOSED;
                c->fails = 0;
            } else {
                c->fails++;
                lb_open_breaker(sh, h, id, now_ns);
            }
        } else if (h->brk == LB_BRK_CLOSED) {
            if (ok) {
                c->fails = 0;
            } else if (++c->fails >= sh->breaker_threshold) {
                lb_open_breaker(sh, h, id, now_ns);
            }
        }
        /* open / half-open: late results of requests sent before it opened change nothing */
    }
    tree_touch(sh, id);
    return MRT_OK;
}

/*
 * Release a selection's reservation without an outcome: the request never
 * reached the endpoint (the sender's own backpressure), so neither the
 * latency EWMA nor the breaker learn anything from it. A half-open probe
 * released this way was never tried: the endpoint is half-open again and
 * the next select probes it.
 */
int mrt_lb_release(mrt_lb_shard *sh, mrt_lb_selection *sel)
{
    int rc = give_back(sh, sel);
    if (rc != MRT_OK)
        return rc;
    uint32_t id = sel->endpoint_id;
    lb_live *h = lb_live_of(sh, id);
    if ((sel->flags & MRT_LB_SEL_PROBE) && h->brk == LB_BRK_PROBING) {
        h->brk = LB_BRK_HALF; /* the reclaim scan drops it from the tripped list */
        sh->cold[id].probe_epoch++;
    }
    tree_touch(sh, id);
    return MRT_OK;
}

/* ------------------------------------------------------------------ bursts */

/* The pool a request will most likely use (no side effects; a miss only wastes a prefetch). */
static inline const lb_pool *likely_pool(const mrt_lb_snapshot *S, const mrt_lb_request *rq)
{
    uint32_t col = 0;
    if (rq->required_tags != 0 && filter_column(S, rq->required_tags, &col) != MRT_OK)
        return NULL;
    uint32_t pi = col;
    if (rq->zone != MRT_LB_ZONE_NONE && rq->zone < MRT_LB_MAX_ZONES) {
        uint32_t row = S->zone_row[rq->zone];
        if (row != LB_ZROW_NONE && S->pools[row * S->ncols + col].n > 0)
            pi = row * S->ncols + col;
    }
    return S->pools[pi].n > 0 ? &S->pools[pi] : NULL;
}

#define LB_BURST_MIN_BYTES (1u << 20)
#define LB_BURST_DIST 8         /* requests between the stages of the prefetch pipeline */
#define LB_BURST_RING 32        /* > 2 x LB_BURST_DIST, a power of two */

size_t mrt_lb_select_burst(const mrt_lb_snapshot *S, mrt_lb_shard *sh, const mrt_lb_request *rq,
                           size_t n, uint64_t now_ns, mrt_lb_selection *out, int *rc)
{
    if (out == NULL || rc == NULL)
        return 0;
    size_t ok = 0;
    mrt_lb_strategy st = (S != NULL && sh != NULL && S == sh->snap) ? S->cfg.strategy
                                                                   : MRT_LB_STRATEGY_COUNT;
    bool keyed = rq != NULL && (st == MRT_LB_CONSISTENT_HASH || st == MRT_LB_MAGLEV ||
                                st == MRT_LB_ADAPTIVE);
    /* Prefetching pays only when the structure does not sit in the core's cache anyway. */
    if (keyed && (size_t)S->pools[0].ring_n * sizeof(lb_rent) < LB_BURST_MIN_BYTES &&
        (size_t)S->pools[0].mag_m * sizeof(uint32_t) < LB_BURST_MIN_BYTES)
        keyed = false;
    if (!keyed) {
        for (size_t k = 0; k < n; k++) {
            rc[k] = mrt_lb_select(S, sh, rq ? &rq[k] : NULL, now_ns, &out[k]);
            ok += rc[k] == MRT_OK;
        }
        return ok;
    }
    /*
     * A three-stage software pipeline: request j+2D is hashed and its directory
     * entry (or Maglev entry) prefetched, request j+D reads that entry and
     * prefetches its ring line, request j is picked: each miss has 2 x D
     * requests' worth of time to arrive and the misses overlap.
     */
    uint64_t h[LB_BURST_RING];
    const lb_pool *P[LB_BURST_RING];
    for (size_t j = 0; j < n + 2 * LB_BURST_DIST; j++) {
        size_t a = j, b = j - LB_BURST_DIST, c = j - 2 * LB_BURST_DIST;
        if (a < n) {
            size_t x = a % LB_BURST_RING;
            P[x] = likely_pool(S, &rq[a]);
            if (P[x] != NULL && request_key(&rq[a], &h[x])) {
                if (P[x]->ring != NULL) {
                    uint32_t bits = P[x]->dir_bits;
                    __builtin_prefetch(&P[x]->ring_dir[bits ? h[x] >> (64 - bits) : 0]);
                } else if (P[x]->mag_slot != NULL) {
                    __builtin_prefetch(&P[x]->mag_slot[lb_reduce(h[x], P[x]->mag_m)]);
                }
            } else {
                P[x] = NULL;
            }
        }
        if (j >= LB_BURST_DIST && b < n) {
            size_t x = b % LB_BURST_RING;
            if (P[x] != NULL && P[x]->ring != NULL) {
                uint32_t bits = P[x]->dir_bits;
                __builtin_prefetch(&P[x]->ring[P[x]->ring_dir[bits ? h[x] >> (64 - bits) : 0]]);
            }
        }
        if (j >= 2 * LB_BURST_DIST) {
            rc[c] = mrt_lb_select(S, sh, &rq[c], now_ns, &out[c]);
            ok += rc[c] == MRT_OK;
        }
    }
    return ok;
}
