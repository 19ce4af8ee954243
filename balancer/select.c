/*
 * Per-shard state, adopt, select and complete. Everything here runs on one
 * shard's thread and touches only that shard's memory plus the read-only
 * snapshot: no atomics, no locks, no allocation on select/complete.
 */
#include "balancer/lb_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The same XXH3 as libxxhash, compiled inline so an 8..32-byte key costs a few ns, not a call. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define WHY_BREAKER 1u
#define WHY_MAXCONN 2u
#define CH_RING_STEPS 16

static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t s = a + b;
    return s < a ? UINT64_MAX : s;
}

/* ------------------------------------------------------------------ lifecycle */

int mrt_lb_shard_create(const mrt_allocator *a, uint64_t seed, mrt_lb_shard **out)
{
    if (out == NULL)
        return MRT_LB_EINVAL;
    mrt_allocator al = mrt_allocator_or_default(a);
    mrt_lb_shard *sh = mrt_calloc(&al, sizeof(*sh));
    if (sh == NULL)
        return MRT_LB_ENOMEM;
    sh->alloc = al;
    sh->rng = seed;
    (void)lb_rand(&sh->rng);
    sh->maxc = UINT32_MAX;
    sh->next_wake = UINT64_MAX;
    *out = sh;
    return MRT_OK;
}

void mrt_lb_shard_destroy(mrt_lb_shard *sh)
{
    if (sh == NULL)
        return;
    mrt_allocator a = sh->alloc;
    mrt_free(&a, sh->live, (size_t)sh->slots_cap * sizeof(lb_live));
    mrt_free(&a, sh->slot_id, (size_t)sh->slots_cap * sizeof(uint32_t));
    mrt_free(&a, sh->cold, (size_t)sh->cap * sizeof(lb_cold));
    mrt_free(&a, sh->id_slot, (size_t)sh->cap * sizeof(uint32_t));
    mrt_free(&a, sh->tripped, (size_t)sh->cap * sizeof(uint32_t));
    mrt_free(&a, sh->rr, (size_t)sh->npools_cap * sizeof(uint32_t));
    mrt_free(&a, sh->wrr, (size_t)sh->npools_cap * sizeof(uint32_t));
    mrt_free(&a, sh->tree_on, sh->npools_cap);
    mrt_free(&a, sh->tree, (size_t)sh->tree_cap * sizeof(lb_tnode));
    mrt_free(&a, sh, sizeof(*sh));
}

const mrt_lb_snapshot *mrt_lb_shard_snapshot(const mrt_lb_shard *sh)
{
    return sh ? sh->snap : NULL;
}

void lb_shard_detach(mrt_lb_shard *sh)
{
    sh->snap = NULL;
    if (sh->npools_cap > 0)
        memset(sh->tree_on, 0, sh->npools_cap); /* stale from now on: rebuilt on first use */
}

void lb_shard_reattach(mrt_lb_shard *sh, const mrt_lb_snapshot *s)
{
    sh->snap = s;
}

/* An endpoint's live state: by slot while it is in the adopted snapshot, else parked by id. */
static inline lb_live *live_of(mrt_lb_shard *sh, uint32_t id)
{
    uint32_t s = sh->id_slot[id];
    return s != LB_NONE ? &sh->live[s] : &sh->cold[id].parked;
}

/* ------------------------------------------------------------------ least-* trees */

/*
 * Least latency and least load weigh their metric by what is in flight
 * ("peak EWMA": cost = (metric + floor) x (in-flight + 1)). On the metric
 * alone every shard would send everything to the one endpoint that looked
 * best, which then never gets a new sample (a slower one is never measured
 * again, a loaded one never relieved) — with load scores that no one
 * reports, all traffic would go to the first endpoint. The floor keeps an
 * endpoint whose metric reads 0 (a coarse clock's 0 ns, no metrics yet)
 * from absorbing everything: equal metrics reduce to least connections.
 */
#define LB_LATENCY_FLOOR_NS 1000.0 /* about one poll iteration: the coarse clock's grain */
#define LB_LOAD_FLOOR 0.01         /* load scores are in [0, 1] */

static inline double tree_key(const mrt_lb_snapshot *S, const mrt_lb_shard *sh, uint32_t slot)
{
    const lb_live *h = &sh->live[slot];
    if (h->brk >= LB_BRK_OPEN)
        return INFINITY;
    if (h->inflight >= sh->maxc)
        return DBL_MAX;
    switch (S->cfg.strategy) {
    case MRT_LB_WEIGHTED_LEAST_CONN:
        return ((double)h->inflight + 1.0) / (double)S->weights[slot];
    case MRT_LB_LEAST_LATENCY:
        return (sh->cold[sh->slot_id[slot]].ewma + LB_LATENCY_FLOOR_NS) *
               ((double)h->inflight + 1.0);
    case MRT_LB_LEAST_LOAD:
        return (S->load[slot] + LB_LOAD_FLOOR) * ((double)h->inflight + 1.0);
    default: /* least connections, adaptive */
        return (double)h->inflight;
    }
}

/* Set leaf i of pool P and replay the matches above it; stop once a node is unchanged. */
static inline void tree_set(lb_tnode *T, const lb_pool *P, uint32_t i, double key)
{
    lb_tnode *t = T + P->tree_base;
    uint32_t k = P->tree_leaves + i;
    if (t[k].key == key)
        return;
    t[k].key = key;
    while (k > 1) {
        k >>= 1;
        const lb_tnode *l = &t[2 * k], *r = &t[2 * k + 1];
        const lb_tnode *w = (r->key < l->key) ? r : l; /* ties: lower index */
        if (t[k].key == w->key && t[k].idx == w->idx)
            return;
        t[k].key = w->key;
        t[k].idx = w->idx;
    }
}

/* Replay one endpoint's key into the trees of the pools this shard has used. */
static void tree_update_slot(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t slot)
{
    uint32_t a = S->mem_off[slot], b = S->mem_off[slot + 1];
    if (a == b)
        return;
    double key = tree_key(S, sh, slot);
    for (uint32_t k = a; k < b; k++) {
        uint32_t pi = S->mem_pool[k];
        if (sh->tree_on[pi])
            tree_set(sh->tree, &S->pools[pi], S->mem_idx[k], key);
    }
}

static void tree_update_id(mrt_lb_shard *sh, uint32_t id)
{
    const mrt_lb_snapshot *S = sh->snap;
    if (S == NULL || S->tree_nodes == 0)
        return;
    uint32_t slot = sh->id_slot[id];
    if (slot != LB_NONE)
        tree_update_slot(S, sh, slot);
}

/*
 * Build pool pi's tree from the current per-endpoint state. Trees start
 * inactive after an adopt and are built on their pool's first select on
 * this shard (O(n), no allocation: the memory is reserved at adopt), so a
 * shard maintains only the trees of the pools its requests use.
 */
static void tree_build(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t pi)
{
    const lb_pool *P = &S->pools[pi];
    lb_tnode *t = sh->tree + P->tree_base;
    uint32_t L = P->tree_leaves;
    for (uint32_t i = 0; i < L; i++) {
        t[L + i].idx = i;
        t[L + i].pad = 0;
        t[L + i].key = i < P->n ? tree_key(S, sh, P->members[i]) : INFINITY;
    }
    for (uint32_t k = L - 1; k >= 1; k--) {
        const lb_tnode *l = &t[2 * k], *r = &t[2 * k + 1];
        t[k] = (r->key < l->key) ? *r : *l;
    }
    t[0].key = INFINITY;
    t[0].idx = 0;
    sh->tree_on[pi] = 1;
}

/* ------------------------------------------------------------------ breakers */

static void add_tripped(mrt_lb_shard *sh, uint32_t id, uint64_t deadline)
{
    lb_cold *c = &sh->cold[id];
    if (!c->in_list) {
        c->in_list = 1;
        sh->tripped[sh->ntripped++] = id;
    }
    if (deadline < sh->next_wake)
        sh->next_wake = deadline;
}

static void push_report(mrt_lb_shard *sh, uint32_t id, uint64_t now)
{
    if (sh->rep_count == LB_REPORTS) {
        sh->rep_head = (sh->rep_head + 1) % LB_REPORTS;
        sh->rep_count--;
        sh->st.reports_dropped++;
    }
    mrt_lb_breaker_report *r = &sh->reports[(sh->rep_head + sh->rep_count) % LB_REPORTS];
    r->endpoint_id = id;
    r->generation = sh->cold[id].gen;
    r->opened_at_ns = now;
    sh->rep_count++;
}

static void open_breaker(mrt_lb_shard *sh, lb_live *l, uint32_t id, uint64_t now)
{
    l->brk = LB_BRK_OPEN;
    sh->cold[id].opened_at = now;
    sh->st.breaker_opens++;
    add_tripped(sh, id, sat_add(now, sh->recovery_ns));
    push_report(sh, id, now);
}

/*
 * Apply the breaker transitions due by `now`: open -> half-open after the
 * recovery time, and a probe still out after a recovery window is
 * reclaimed (its reservation released, the shard may probe again). Runs
 * only when the earliest deadline has passed: one compare per select.
 */
static void wake(mrt_lb_shard *sh, uint64_t now)
{
    uint64_t rec = sh->recovery_ns;
    uint64_t next = UINT64_MAX;
    uint32_t keep = 0;
    for (uint32_t j = 0; j < sh->ntripped; j++) {
        uint32_t id = sh->tripped[j];
        lb_live *h = live_of(sh, id);
        lb_cold *c = &sh->cold[id];
        uint64_t deadline;
        if (h->brk == LB_BRK_OPEN) {
            deadline = sat_add(c->opened_at, rec);
            if (now >= deadline) {
                h->brk = LB_BRK_HALF;
                c->in_list = 0;
                tree_update_id(sh, id);
                continue;
            }
        } else if (h->brk == LB_BRK_PROBING) {
            deadline = sat_add(c->probe_at, rec);
            if (now >= deadline) {
                h->brk = LB_BRK_HALF;
                c->in_list = 0;
                c->probe_epoch++;
                if (h->inflight > 0)
                    h->inflight--;
                if (sh->st.outstanding > 0)
                    sh->st.outstanding--;
                sh->st.probes_reclaimed++;
                tree_update_id(sh, id);
                continue;
            }
        } else {
            c->in_list = 0;
            continue;
        }
        sh->tripped[keep++] = id;
        if (deadline < next)
            next = deadline;
    }
    sh->ntripped = keep;
    sh->next_wake = next;
}

/* ------------------------------------------------------------------ adopt */

static lb_select_fn *const select_fns[MRT_LB_STRATEGY_COUNT];

static int grow(const mrt_allocator *a, void **p, size_t old_bytes, size_t new_bytes)
{
    void *n = mrt_realloc(a, *p, new_bytes);
    if (n == NULL)
        return MRT_LB_ENOMEM;
    if (new_bytes > old_bytes)
        memset((uint8_t *)n + old_bytes, 0, new_bytes - old_bytes);
    *p = n;
    return MRT_OK;
}

int mrt_lb_shard_adopt(mrt_lb_shard *sh, const mrt_lb_snapshot *S)
{
    if (sh == NULL || S == NULL || S->magic != LB_MAGIC)
        return MRT_LB_EINVAL;
    const mrt_allocator *a = &sh->alloc;
    /*
     * Grow first. Every array keeps its contents (and id_slot's new entries
     * name ids nobody has), so a failure changes nothing a select can see.
     * The previous snapshot is not read: it may already be gone.
     */
    if (S->id_cap > sh->cap) {
        uint32_t ncap = sh->cap ? sh->cap : 16;
        while (ncap < S->id_cap)
            ncap *= 2;
        if (grow(a, (void **)&sh->cold, (size_t)sh->cap * sizeof(lb_cold),
                 (size_t)ncap * sizeof(lb_cold)) != MRT_OK ||
            grow(a, (void **)&sh->tripped, (size_t)sh->cap * sizeof(uint32_t),
                 (size_t)ncap * sizeof(uint32_t)) != MRT_OK ||
            grow(a, (void **)&sh->id_slot, (size_t)sh->cap * sizeof(uint32_t),
                 (size_t)ncap * sizeof(uint32_t)) != MRT_OK)
            return MRT_LB_ENOMEM;
        for (uint32_t id = sh->cap; id < ncap; id++)
            sh->id_slot[id] = LB_NONE;
        sh->cap = ncap;
    }
    if (S->n > sh->slots_cap) {
        if (grow(a, (void **)&sh->live, (size_t)sh->slots_cap * sizeof(lb_live),
                 (size_t)S->n * sizeof(lb_live)) != MRT_OK ||
            grow(a, (void **)&sh->slot_id, (size_t)sh->slots_cap * sizeof(uint32_t),
                 (size_t)S->n * sizeof(uint32_t)) != MRT_OK)
            return MRT_LB_ENOMEM;
        sh->slots_cap = S->n;
    }
    if (S->npools > sh->npools_cap) {
        if (grow(a, (void **)&sh->rr, (size_t)sh->npools_cap * sizeof(uint32_t),
                 (size_t)S->npools * sizeof(uint32_t)) != MRT_OK ||
            grow(a, (void **)&sh->wrr, (size_t)sh->npools_cap * sizeof(uint32_t),
                 (size_t)S->npools * sizeof(uint32_t)) != MRT_OK ||
            grow(a, (void **)&sh->tree_on, sh->npools_cap, S->npools) != MRT_OK)
            return MRT_LB_ENOMEM;
        sh->npools_cap = S->npools;
    }
    if (S->tree_nodes > sh->tree_cap) {
        if (grow(a, (void **)&sh->tree, (size_t)sh->tree_cap * sizeof(lb_tnode),
                 (size_t)S->tree_nodes * sizeof(lb_tnode)) != MRT_OK)
            return MRT_LB_ENOMEM;
        sh->tree_cap = S->tree_nodes;
    }

    /* Park the live state of the old slots under their ids ... */
    for (uint32_t s = 0; s < sh->nslots; s++) {
        uint32_t id = sh->slot_id[s];
        sh->cold[id].parked = sh->live[s];
        sh->id_slot[id] = LB_NONE;
    }
    /* ... and unpark it at the new ones; an id now held by another generation starts fresh. */
    for (uint32_t s = 0; s < S->n; s++) {
        uint32_t id = S->slots[s].id;
        lb_cold *c = &sh->cold[id];
        if (c->gen != S->slots[s].gen) {
            uint8_t in_list = c->in_list;
            memset(c, 0, sizeof(*c));
            c->in_list = in_list;
            c->gen = S->slots[s].gen;
        }
        sh->live[s] = c->parked;
        sh->slot_id[s] = id;
        sh->id_slot[id] = s;
    }
    sh->nslots = S->n;
    sh->snap = S;
    sh->snap_id = S->publish_id;
    sh->select = select_fns[S->cfg.strategy];
    sh->maxc = S->cfg.max_connections ? S->cfg.max_connections : UINT32_MAX;
    sh->recovery_ns = S->cfg.recovery_ns;
    sh->breaker_threshold = S->cfg.breaker_threshold;
    sh->latency_alpha = S->cfg.latency_alpha;
    /* Start cursors at random offsets so shards do not march in lockstep. */
    for (uint32_t pi = 0; pi < S->npools; pi++) {
        const lb_pool *P = &S->pools[pi];
        uint64_t r = lb_rand(&sh->rng);
        sh->rr[pi] = P->n ? lb_reduce(r, P->n) : 0;
        sh->wrr[pi] = P->wrr_len ? lb_reduce(r * 0x9e3779b97f4a7c15ull, P->wrr_len) : 0;
    }
    memset(sh->tree_on, 0, S->npools); /* trees are built on first use */
    /* Deadlines depend on the recovery time, which may have changed. */
    if (sh->ntripped > 0)
        sh->next_wake = 0;
    sh->st.adopts++;
    return MRT_OK;
}

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
        tree_build(S, sh, pi);
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
    add_tripped(sh, id, sat_add(now_ns, sh->recovery_ns));
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
        wake(sh, now_ns);

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
        tree_update_slot(S, sh, slot);
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
    lb_live *h = live_of(sh, id);
    if (h->inflight > 0)
        h->inflight--;
    return MRT_OK;
}

/* Detached (reader offline): the snapshot may be gone; no tree to maintain. */
static inline void tree_touch(mrt_lb_shard *sh, uint32_t id)
{
    if (sh->snap != NULL && sh->snap->tree_nodes > 0)
        tree_update_id(sh, id);
}

int mrt_lb_complete(mrt_lb_shard *sh, mrt_lb_selection *sel, bool ok, uint64_t latency_ns,
                    uint64_t now_ns)
{
    int rc = give_back(sh, sel);
    if (rc != MRT_OK)
        return rc;
    uint32_t id = sel->endpoint_id;
    bool probe = (sel->flags & MRT_LB_SEL_PROBE) != 0;
    lb_live *h = live_of(sh, id);
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
                open_breaker(sh, h, id, now_ns);
            }
        } else if (h->brk == LB_BRK_CLOSED) {
            if (ok) {
                c->fails = 0;
            } else if (++c->fails >= sh->breaker_threshold) {
                open_breaker(sh, h, id, now_ns);
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
    lb_live *h = live_of(sh, id);
    if ((sel->flags & MRT_LB_SEL_PROBE) && h->brk == LB_BRK_PROBING) {
        h->brk = LB_BRK_HALF; /* the reclaim scan drops it from the tripped list */
        sh->cold[id].probe_epoch++;
    }
    tree_touch(sh, id);
    return MRT_OK;
}

/* ------------------------------------------------------------------ reports, stats */

size_t mrt_lb_shard_drain_reports(mrt_lb_shard *sh, mrt_lb_breaker_report *out, size_t max)
{
    if (sh == NULL || out == NULL)
        return 0;
    size_t n = 0;
    while (n < max && sh->rep_count > 0) {
        out[n++] = sh->reports[sh->rep_head];
        sh->rep_head = (sh->rep_head + 1) % LB_REPORTS;
        sh->rep_count--;
    }
    return n;
}

void mrt_lb_shard_stats_get(const mrt_lb_shard *sh, mrt_lb_shard_stats *out)
{
    if (sh == NULL || out == NULL)
        return;
    *out = sh->st;
}

uint32_t mrt_lb_shard_inflight(const mrt_lb_shard *sh, uint32_t endpoint_id)
{
    if (sh == NULL || endpoint_id >= sh->cap)
        return 0;
    return live_of((mrt_lb_shard *)sh, endpoint_id)->inflight;
}

int mrt_lb_shard_endpoint(mrt_lb_shard *sh, uint32_t endpoint_id, uint64_t now_ns,
                          mrt_lb_endpoint_shard_info *out)
{
    if (sh == NULL || out == NULL || endpoint_id >= sh->cap || sh->select == NULL)
        return MRT_LB_EINVAL;
    if (now_ns >= sh->next_wake)
        wake(sh, now_ns);
    const lb_live *h = live_of(sh, endpoint_id);
    const lb_cold *c = &sh->cold[endpoint_id];
    out->breaker = (mrt_lb_breaker_state)h->brk;
    out->consecutive_failures = c->fails;
    out->inflight = h->inflight;
    out->opened_at_ns = c->opened_at;
    out->latency_ewma_ns = c->ewma;
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
