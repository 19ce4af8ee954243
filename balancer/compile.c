/*
 * Snapshot compiler: registry -> one immutable block holding the available
 * endpoints (slots, in node-id order so every structure is deterministic),
 * the pools of each (zone row, filter column) pair and the per-strategy
 * structures of each pool:
 *
 *   weighted random   Vose alias table (integer arithmetic)          O(1) pick
 *   smooth WRR        one period of nginx's sequence                 O(1) pick
 *   consistent hash   sorted ring + parallel slot array + directory  O(log k) pick
 *   Maglev            prime-size table, weighted population          O(1) pick
 *   least load        members by ascending load_score                O(1) pick
 *   least-* trees     per-shard tournament tree layout               O(1) pick
 *
 * Build work is O(N x vnodes) for the ring (radix sort), O(M log M) for
 * Maglev and O(W x D) for the smooth-WRR period (W total reduced weight, D
 * distinct weights): all off the event path. This file is the driver
 * (gather, plan, fill); the structures' builders are in build.c.
 */
#include "balancer/lb_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

uint64_t lb_ring_point(const uint8_t node_id[MRT_LB_NODE_ID_LEN], uint32_t v)
{
    /* node id || replica (LE u32), hashed as one 36-byte input on the stack */
    uint8_t buf[MRT_LB_NODE_ID_LEN + 4];
    memcpy(buf, node_id, MRT_LB_NODE_ID_LEN);
    buf[32] = (uint8_t)v;
    buf[33] = (uint8_t)(v >> 8);
    buf[34] = (uint8_t)(v >> 16);
    buf[35] = (uint8_t)(v >> 24);
    return XXH3_64bits(buf, sizeof buf);
}

uint64_t lb_key_hash(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

#define MAGLEV_SEED_OFFSET 0x6d61676c65763031ull
#define MAGLEV_SEED_SKIP 0x6d61676c65763032ull

static bool needs_alias(mrt_lb_strategy s) { return s == MRT_LB_WEIGHTED_RANDOM; }
static bool needs_wrr(mrt_lb_strategy s)
{
    return s == MRT_LB_WEIGHTED_ROUND_ROBIN || s == MRT_LB_ADAPTIVE;
}
static bool needs_ring(mrt_lb_strategy s)
{
    return s == MRT_LB_CONSISTENT_HASH || s == MRT_LB_ADAPTIVE;
}
static bool needs_maglev(mrt_lb_strategy s) { return s == MRT_LB_MAGLEV; }
static bool tree_strategy(mrt_lb_strategy s)
{
    return s == MRT_LB_LEAST_CONNECTIONS || s == MRT_LB_WEIGHTED_LEAST_CONN ||
           s == MRT_LB_LEAST_LATENCY || s == MRT_LB_LEAST_LOAD;
}

#define ADAPTIVE_LOAD_THRESHOLD 0.7

static int cmp_ep_node(const void *a, const void *b)
{
    const lb_ep *const *x = a;
    const lb_ep *const *y = b;
    return memcmp((*x)->node_id, (*y)->node_id, MRT_LB_NODE_ID_LEN);
}

/* ------------------------------------------------------------------ compile */

/*
 * One compile, phase by phase: gather (available endpoints in node-id order,
 * zone rows and filter columns, each pool's members), plan (each pool's
 * structures and the one block's layout), then fill the block (slots, the
 * per-slot ring points and Maglev hashes, the pools, the trees' membership).
 * What the phases hand on lives here; what is temporary is freed at the end.
 */
typedef struct build {
    const mrt_lb_registry *r;
    const mrt_lb_config *cfg;
    mrt_lb_strategy strat;
    mrt_allocator al;
    /* gather */
    const lb_ep **avail;    /* [n], node-id order: slot s is avail[s] */
    uint32_t n, nrows, ncols, npools, nf;
    uint16_t zone_row[MRT_LB_MAX_ZONES];
    uint64_t fmask[MRT_LB_MAX_FILTERS];
    uint32_t *pool_cnt;
    uint32_t *pool_mem;     /* CSR of members, by pool */
    pool_plan *plan;        /* [npools] */
    uint32_t *wtmp;         /* [n] effective weights, half units */
    double *ltmp;           /* [n] load scores */
    /* plan: the block's layout */
    size_t off, o_snap, o_slots, o_ids, o_w, o_load, o_tags, o_zones, o_id2s, o_zrow, o_fm,
        o_pools, o_moff, o_mpool, o_midx;
    bool quantized;
    uint32_t tree_nodes;
    uint64_t tree_mem;
    /* fill: per-slot hashes shared by every pool's ring and Maglev table */
    uint64_t *h_off, *h_skip;
    uint64_t *all_pts;
    uint32_t *all_slot;
    uint64_t *sub_pts;
    uint8_t *mark;
} build;

static void build_free(build *b)
{
    const mrt_allocator *a = &b->al;
    mrt_free(a, b->avail, 0);
    mrt_free(a, b->pool_cnt, 0);
    mrt_free(a, b->pool_mem, 0);
    mrt_free(a, b->plan, 0);
    mrt_free(a, b->wtmp, 0);
    mrt_free(a, b->ltmp, 0);
    mrt_free(a, b->h_off, 0);
    mrt_free(a, b->h_skip, 0);
    mrt_free(a, b->all_pts, 0);
    mrt_free(a, b->all_slot, 0);
    mrt_free(a, b->sub_pts, 0);
    mrt_free(a, b->mark, 0);
}

/* The zone row of e (0: its zone has no row of its own). */
static inline uint32_t zone_row_of(const build *b, const lb_ep *e)
{
    return e->zone == MRT_LB_ZONE_NONE ? 0 : b->zone_row[e->zone];
}

/*
 * The pools e belongs to (out: at most 2 x columns): each filter column it
 * passes, in row 0 and in its zone's row.
 */
static unsigned pools_of(const build *b, const lb_ep *e, uint32_t *out)
{
    uint32_t zr = zone_row_of(b, e);
    unsigned k = 0;
    for (uint32_t c = 0; c < b->ncols; c++) {
        uint64_t m = c ? b->fmask[c - 1] : 0;
        if ((e->tags & m) != m)
            continue;
        out[k++] = c;
        if (zr)
            out[k++] = zr * b->ncols + c;
    }
    return k;
}

/* 1. The available endpoints in node-id order, the rows and columns, each pool's members. */
static int gather(build *b, uint64_t now_ns)
{
    const mrt_lb_registry *r = b->r;
    if (r->count > 0) {
        b->avail = mrt_alloc(&b->al, (size_t)r->count * sizeof(*b->avail));
        if (b->avail == NULL)
            return MRT_LB_ENOMEM;
    }
    uint32_t n = 0;
    for (uint32_t id = 0; id < r->next_id; id++) {
        const lb_ep *e = &r->eps[id];
        if (!e->live || !e->enabled || e->tripped_until > now_ns)
            continue;
        if (e->health != MRT_LB_HEALTHY && e->health != MRT_LB_DEGRADED)
            continue;
        b->avail[n++] = e;
    }
    if (n > 1)
        qsort(b->avail, n, sizeof(*b->avail), cmp_ep_node);
    b->n = n;

    /* Rows: zones with an available endpoint, numbered in zone-id order (row 0: all). */
    for (uint32_t z = 0; z < MRT_LB_MAX_ZONES; z++)
        b->zone_row[z] = LB_ZROW_NONE;
    for (uint32_t s = 0; s < n; s++) {
        uint16_t z = b->avail[s]->zone;
        if (z != MRT_LB_ZONE_NONE)
            b->zone_row[z] = 0; /* mark */
    }
    b->nrows = 1;
    for (uint32_t z = 0; z < MRT_LB_MAX_ZONES; z++)
        if (b->zone_row[z] == 0)
            b->zone_row[z] = (uint16_t)b->nrows++;
    /* Columns: no filter, then the declared filters in mask order. */
    b->nf = r->nfilters;
    memcpy(b->fmask, r->filter_masks, b->nf * sizeof(uint64_t));
    qsort(b->fmask, b->nf, sizeof(uint64_t), lb_cmp_u64);
    b->ncols = b->nf + 1;
    b->npools = b->nrows * b->ncols;

    /* Each pool's members, as a CSR: count, lay out, fill. */
    b->pool_cnt = mrt_calloc(&b->al, (size_t)b->npools * sizeof(uint32_t));
    b->plan = mrt_calloc(&b->al, (size_t)b->npools * sizeof(pool_plan));
    if (b->pool_cnt == NULL || b->plan == NULL)
        return MRT_LB_ENOMEM;
    uint32_t in[2 * (MRT_LB_MAX_FILTERS + 1)];
    uint64_t total = 0;
    for (uint32_t s = 0; s < n; s++) {
        unsigned k = pools_of(b, b->avail[s], in);
        for (unsigned j = 0; j < k; j++)
            b->pool_cnt[in[j]]++;
        total += k;
    }
    if (total > 0) {
        b->pool_mem = mrt_alloc(&b->al, (size_t)total * sizeof(uint32_t));
        if (b->pool_mem == NULL)
            return MRT_LB_ENOMEM;
    }
    uint32_t off = 0;
    for (uint32_t pi = 0; pi < b->npools; pi++) {
        b->plan[pi].moff = off;
        off += b->pool_cnt[pi];
    }
    for (uint32_t s = 0; s < n; s++) {
        unsigned k = pools_of(b, b->avail[s], in);
        for (unsigned j = 0; j < k; j++) {
            pool_plan *p = &b->plan[in[j]];
            b->pool_mem[p->moff + p->n++] = s;
        }
    }

    /* Effective weights in half units (healthy x2, degraded x1), and load scores. */
    if (n > 0) {
        b->wtmp = mrt_alloc(&b->al, (size_t)n * sizeof(uint32_t));
        b->ltmp = mrt_alloc(&b->al, (size_t)n * sizeof(double));
        if (b->wtmp == NULL || b->ltmp == NULL)
            return MRT_LB_ENOMEM;
        for (uint32_t s = 0; s < n; s++) {
            const lb_ep *e = b->avail[s];
            b->wtmp[s] = (uint32_t)(e->health == MRT_LB_HEALTHY ? e->weight * 2 : e->weight);
            b->ltmp[s] = e->load_score;
        }
    }
    return MRT_OK;
}

/* 2. Plan every pool's structures and lay the one block out (offsets only). */
static void plan(build *b)
{
    const mrt_lb_config *cfg = b->cfg;
    mrt_lb_strategy strat = b->strat;
    size_t n = b->n;
    size_t *off = &b->off;
    b->o_snap = lb_take(off, sizeof(mrt_lb_snapshot));
    b->o_slots = lb_take(off, n * sizeof(lb_slot));
    b->o_ids = lb_take(off, n * MRT_LB_NODE_ID_LEN);
    b->o_w = lb_take(off, n * sizeof(uint32_t));
    b->o_load = lb_take(off, n * sizeof(double));
    b->o_tags = lb_take(off, n * sizeof(uint64_t));
    b->o_zones = lb_take(off, n * sizeof(uint16_t));
    b->o_id2s = lb_take(off, (size_t)b->r->next_id * sizeof(uint32_t));
    b->o_zrow = lb_take(off, MRT_LB_MAX_ZONES * sizeof(uint16_t));
    b->o_fm = lb_take(off, (size_t)b->nf * sizeof(uint64_t));
    b->o_pools = lb_take(off, (size_t)b->npools * sizeof(lb_pool));
    for (uint32_t pi = 0; pi < b->npools; pi++) {
        pool_plan *p = &b->plan[pi];
        const uint32_t *mem = b->pool_mem ? b->pool_mem + p->moff : NULL;
        double sum = 0;
        for (uint32_t i = 0; i < p->n; i++)
            sum += b->ltmp[mem[i]];
        p->mean_load = p->n ? sum / p->n : 0.0;
        if (p->n == 0)
            continue;
        p->o_members = lb_take(off, (size_t)p->n * sizeof(uint32_t));
        if (needs_alias(strat))
            p->o_alias = lb_take(off, (size_t)p->n * sizeof(lb_alias));
        if (needs_wrr(strat)) {
            lb_plan_wrr(p, mem, b->wtmp, cfg->wrr_max_period, &b->quantized);
            p->o_wrr = lb_take(off, (size_t)p->wrr_len * sizeof(uint32_t));
        }
        if (needs_ring(strat)) {
            p->ring_n = p->n * cfg->vnodes;
            /* about 4 points per directory bucket: the bucket is one cache line of entries */
            uint32_t bits = 0;
            while (bits < 24 && ((uint64_t)LB_RING_PER_BUCKET << bits) < p->ring_n)
                bits++;
            p->dir_bits = bits;
            p->o_pts = lb_take(off, ((size_t)p->ring_n + LB_RING_WINDOW) * sizeof(lb_rent));
            p->o_dir = lb_take(off, ((size_t)(1u << p->dir_bits) + 1) * sizeof(uint32_t));
        }
        if (needs_maglev(strat)) {
            uint64_t want = (uint64_t)p->n * 128;
            p->mag_m = (pi == 0 || want >= cfg->maglev_size)
                           ? cfg->maglev_size
                           : lb_next_prime((uint32_t)(want < 131 ? 131 : want));
            if (p->mag_m > cfg->maglev_size)
                p->mag_m = cfg->maglev_size;
            p->o_mag = lb_take(off, (size_t)p->mag_m * sizeof(uint32_t));
        }
        p->tree = tree_strategy(strat) ||
                  (strat == MRT_LB_ADAPTIVE && p->mean_load > ADAPTIVE_LOAD_THRESHOLD);
        if (p->tree) {
            p->tree_leaves = lb_pow2_at_least(p->n);
            b->tree_nodes += 2 * p->tree_leaves;
            b->tree_mem += p->n;
        }
    }
    b->o_moff = lb_take(off, (n + 1) * sizeof(uint32_t));
    b->o_mpool = lb_take(off, (size_t)b->tree_mem * sizeof(uint32_t));
    b->o_midx = lb_take(off, (size_t)b->tree_mem * sizeof(uint32_t));
}

/* 3a. The per-slot arrays, the id map, the rows and columns. */
static void fill_slots(const build *b, mrt_lb_snapshot *S, uint8_t *base)
{
    const mrt_lb_registry *r = b->r;
    lb_slot *slots = (lb_slot *)(base + b->o_slots);
    uint8_t *ids = base + b->o_ids;
    uint32_t *wts = (uint32_t *)(base + b->o_w);
    double *load = (double *)(base + b->o_load);
    uint64_t *tags = (uint64_t *)(base + b->o_tags);
    uint16_t *zones = (uint16_t *)(base + b->o_zones);
    uint32_t *id2s = (uint32_t *)(base + b->o_id2s);
    uint16_t *zrow = (uint16_t *)(base + b->o_zrow);
    uint64_t *fm = (uint64_t *)(base + b->o_fm);
    for (uint32_t id = 0; id < r->next_id; id++)
        id2s[id] = LB_NONE;
    for (uint32_t s = 0; s < b->n; s++) {
        const lb_ep *e = b->avail[s];
        uint32_t id = (uint32_t)(e - r->eps);
        slots[s].id = id;
        slots[s].gen = e->gen;
        slots[s].user = e->user_data;
        memcpy(ids + (size_t)s * MRT_LB_NODE_ID_LEN, e->node_id, MRT_LB_NODE_ID_LEN);
        wts[s] = b->wtmp[s];
        load[s] = b->ltmp[s];
        tags[s] = e->tags;
        zones[s] = e->zone;
        id2s[id] = s;
    }
    memcpy(zrow, b->zone_row, sizeof b->zone_row);
    memcpy(fm, b->fmask, b->nf * sizeof(uint64_t));
    S->slots = slots;
    S->node_ids = ids;
    S->weights = wts;
    S->load = load;
    S->tags = tags;
    S->zones = zones;
    S->id_to_slot = id2s;
    S->zone_row = zrow;
    S->filter_masks = fm;
    S->pools = (lb_pool *)(base + b->o_pools);
}

/* 3b. Ring points and Maglev hashes, once per slot: every pool's structures are cut from them. */
static int hash_slots(build *b, const uint8_t *ids)
{
    uint32_t n = b->n;
    uint32_t vnodes = b->cfg->vnodes;
    if (n > 0 && needs_ring(b->strat)) {
        size_t rn = (size_t)n * vnodes;
        b->all_pts = mrt_alloc(&b->al, rn * sizeof(uint64_t));
        b->all_slot = mrt_alloc(&b->al, rn * sizeof(uint32_t));
        b->sub_pts = b->npools > 1 ? mrt_alloc(&b->al, rn * sizeof(uint64_t)) : NULL;
        b->mark = mrt_calloc(&b->al, n);
        if (b->all_pts == NULL || b->all_slot == NULL || b->mark == NULL ||
            (b->npools > 1 && b->sub_pts == NULL))
            return MRT_LB_ENOMEM;
        size_t k = 0;
        for (uint32_t s = 0; s < n; s++)
            for (uint32_t v = 0; v < vnodes; v++) {
                b->all_pts[k] = lb_ring_point(ids + (size_t)s * MRT_LB_NODE_ID_LEN, v);
                b->all_slot[k] = s;
                k++;
            }
        if (lb_radix_sort(&b->al, b->all_pts, b->all_slot, (uint32_t)rn) != MRT_OK)
            return MRT_LB_ENOMEM;
    }
    if (n > 0 && needs_maglev(b->strat)) {
        b->h_off = mrt_alloc(&b->al, (size_t)n * sizeof(uint64_t));
        b->h_skip = mrt_alloc(&b->al, (size_t)n * sizeof(uint64_t));
        if (b->h_off == NULL || b->h_skip == NULL)
            return MRT_LB_ENOMEM;
        for (uint32_t s = 0; s < n; s++) {
            const uint8_t *nid = ids + (size_t)s * MRT_LB_NODE_ID_LEN;
            b->h_off[s] = XXH3_64bits_withSeed(nid, MRT_LB_NODE_ID_LEN, MAGLEV_SEED_OFFSET);
            b->h_skip[s] = XXH3_64bits_withSeed(nid, MRT_LB_NODE_ID_LEN, MAGLEV_SEED_SKIP);
        }
    }
    return MRT_OK;
}

/* Pool pi's consistent-hash ring: the all-endpoint ring filtered (so already sorted). */
static void fill_ring(build *b, uint32_t pi, const uint32_t *mem, lb_pool *P, uint8_t *base)
{
    const pool_plan *p = &b->plan[pi];
    lb_rent *ring = (lb_rent *)(base + p->o_pts);
    uint32_t *dir = (uint32_t *)(base + p->o_dir);
    size_t rn = (size_t)b->n * b->cfg->vnodes;
    uint64_t *pts = b->all_pts;
    if (pi != 0) {
        pts = b->sub_pts;
        for (uint32_t i = 0; i < p->n; i++)
            b->mark[mem[i]] = 1;
        size_t k = 0;
        for (size_t i = 0; i < rn; i++)
            if (b->mark[b->all_slot[i]]) {
                pts[k] = b->all_pts[i];
                ring[k].slot = b->all_slot[i];
                k++;
            }
        for (uint32_t i = 0; i < p->n; i++)
            b->mark[mem[i]] = 0;
    } else {
        for (size_t i = 0; i < rn; i++)
            ring[i].slot = b->all_slot[i];
    }
    for (uint32_t i = 0; i < p->ring_n; i++)
        ring[i].mid = lb_ring_mid(pts[i], p->dir_bits);
    for (uint32_t i = p->ring_n; i < p->ring_n + LB_RING_WINDOW; i++) {
        ring[i].mid = UINT32_MAX;
        ring[i].slot = 0;
    }
    lb_build_dir(pts, p->ring_n, p->dir_bits, dir);
    P->ring_n = p->ring_n;
    P->dir_bits = p->dir_bits;
    P->ring = ring;
    P->ring_dir = dir;
}

/* 3c. Every pool: members and the strategy's structures; counts each slot's tree pools in moff. */
static int fill_pools(build *b, const mrt_lb_snapshot *S, uint8_t *base, uint32_t *moff)
{
    mrt_lb_strategy strat = b->strat;
    const uint32_t *wts = S->weights;
    lb_pool *pools = (lb_pool *)(base + b->o_pools);
    uint32_t tree_base = 0;
    for (uint32_t pi = 0; pi < b->npools; pi++) {
        pool_plan *p = &b->plan[pi];
        lb_pool *P = &pools[pi];
        memset(P, 0, sizeof(*P));
        P->n = p->n;
        P->mean_load = p->mean_load;
        P->tree_base = LB_NONE;
        if (p->n == 0)
            continue;
        const uint32_t *mem = b->pool_mem + p->moff;
        uint32_t *members = (uint32_t *)(base + p->o_members);
        memcpy(members, mem, (size_t)p->n * sizeof(uint32_t));
        P->members = members;
        if (p->n == b->n)
            P->flags |= LB_POOL_ALL; /* a subset as large as the whole is the whole */
        if (needs_alias(strat)) {
            lb_alias *tab = (lb_alias *)(base + p->o_alias);
            if (lb_build_alias(&b->al, p->n, mem, wts, tab) != MRT_OK)
                return MRT_LB_ENOMEM;
            P->alias = tab;
        }
        if (needs_wrr(strat)) {
            uint32_t *seq = (uint32_t *)(base + p->o_wrr);
            if (lb_build_wrr(&b->al, p, mem, wts, seq) != MRT_OK)
                return MRT_LB_ENOMEM;
            P->wrr_seq = seq;
            P->wrr_len = p->wrr_len;
        }
        if (needs_ring(strat))
            fill_ring(b, pi, mem, P, base);
        if (needs_maglev(strat)) {
            uint32_t *tab = (uint32_t *)(base + p->o_mag);
            if (lb_build_maglev(&b->al, p->n, mem, wts, b->h_off, b->h_skip, p->mag_m, tab) !=
                MRT_OK)
                return MRT_LB_ENOMEM;
            P->mag_m = p->mag_m;
            P->mag_slot = tab;
        }
        if (p->tree) {
            P->flags |= LB_POOL_TREE;
            P->tree_base = tree_base;
            P->tree_leaves = p->tree_leaves;
            tree_base += 2 * p->tree_leaves;
            for (uint32_t i = 0; i < p->n; i++)
                moff[mem[i] + 1]++;
        }
    }
    return MRT_OK;
}

/* 3d. Tree membership as a CSR: for each slot, the (pool, member index) pairs with a tree. */
static int fill_tree_members(const build *b, mrt_lb_snapshot *S, uint8_t *base, uint32_t *moff)
{
    uint32_t *mpool = (uint32_t *)(base + b->o_mpool);
    uint32_t *midx = (uint32_t *)(base + b->o_midx);
    for (uint32_t s = 0; s < b->n; s++)
        moff[s + 1] += moff[s];
    if (b->tree_mem > 0) {
        uint32_t *fillc = mrt_calloc(&b->al, (size_t)b->n * sizeof(uint32_t));
        if (fillc == NULL)
            return MRT_LB_ENOMEM;
        for (uint32_t pi = 0; pi < b->npools; pi++) {
            const lb_pool *P = &S->pools[pi];
            if (!(P->flags & LB_POOL_TREE))
                continue;
            for (uint32_t i = 0; i < P->n; i++) {
                uint32_t s = P->members[i];
                uint32_t k = moff[s] + fillc[s]++;
                mpool[k] = pi;
                midx[k] = i;
            }
        }
        mrt_free(&b->al, fillc, 0);
    }
    S->mem_off = moff;
    S->mem_pool = mpool;
    S->mem_idx = midx;
    return MRT_OK;
}

int mrt_lb_registry_compile(mrt_lb_registry *r, uint64_t now_ns, const mrt_allocator *a,
                            mrt_lb_snapshot **out)
{
    if (r == NULL || out == NULL)
        return MRT_LB_EINVAL;
    build b;
    memset(&b, 0, sizeof b);
    b.r = r;
    b.cfg = &r->cfg;
    b.strat = r->cfg.strategy;
    b.al = mrt_allocator_or_default(a);
    int rc = gather(&b, now_ns);
    if (rc != MRT_OK) {
        build_free(&b);
        return rc;
    }
    plan(&b);
    uint8_t *base = mrt_alloc_aligned(&b.al, b.off, 64);
    if (base == NULL) {
        build_free(&b);
        return MRT_LB_ENOMEM;
    }
    mrt_lb_snapshot *S = (mrt_lb_snapshot *)(base + b.o_snap);
    memset(S, 0, sizeof(*S));
    S->magic = LB_MAGIC;
    S->alloc = b.al;
    S->bytes = b.off;
    S->version = r->version + 1;
    S->cfg = r->cfg;
    S->registered = r->count;
    S->n = b.n;
    S->id_cap = r->next_id;
    S->nrows = b.nrows;
    S->ncols = b.ncols;
    S->npools = b.npools;
    S->tree_nodes = b.tree_nodes;
    S->wrr_quantized = b.quantized;
    fill_slots(&b, S, base);
    uint32_t *moff = (uint32_t *)(base + b.o_moff);
    memset(moff, 0, ((size_t)b.n + 1) * sizeof(uint32_t));
    rc = hash_slots(&b, S->node_ids);
    if (rc == MRT_OK)
        rc = fill_pools(&b, S, base, moff);
    if (rc == MRT_OK)
        rc = fill_tree_members(&b, S, base, moff);
    build_free(&b);
    if (rc != MRT_OK) {
        mrt_free_aligned(&b.al, base, b.off, 64);
        return rc;
    }
    r->version++;
    *out = S;
    return MRT_OK;
}

void mrt_lb_snapshot_free(mrt_lb_snapshot *s)
{
    if (s == NULL || s->magic != LB_MAGIC)
        return;
    mrt_allocator a = s->alloc;
    size_t bytes = s->bytes;
    s->magic = 0;
    /* The snapshot struct sits at offset 0 of its block. */
    mrt_free_aligned(&a, s, bytes, 64);
}

uint32_t mrt_lb_snapshot_size(const mrt_lb_snapshot *s)
{
    return s ? s->n : 0;
}

uint64_t mrt_lb_snapshot_version(const mrt_lb_snapshot *s)
{
    return s ? s->version : 0;
}

size_t mrt_lb_snapshot_bytes(const mrt_lb_snapshot *s)
{
    return s ? s->bytes : 0;
}

const mrt_lb_config *mrt_lb_snapshot_config(const mrt_lb_snapshot *s)
{
    return s ? &s->cfg : NULL;
}

bool mrt_lb_snapshot_wrr_quantized(const mrt_lb_snapshot *s)
{
    return s ? s->wrr_quantized : false;
}

int mrt_lb_snapshot_slot(const mrt_lb_snapshot *s, uint32_t slot, mrt_lb_slot_info *out)
{
    if (s == NULL || out == NULL || slot >= s->n)
        return MRT_LB_EINVAL;
    out->node_id = s->node_ids + (size_t)slot * MRT_LB_NODE_ID_LEN;
    out->endpoint_id = s->slots[slot].id;
    out->generation = s->slots[slot].gen;
    out->weight = s->weights[slot];
    out->zone = s->zones[slot];
    out->tags = s->tags[slot];
    out->load_score = s->load[slot];
    out->user_data = s->slots[slot].user;
    return MRT_OK;
}

int64_t mrt_lb_snapshot_slot_of(const mrt_lb_snapshot *s, uint32_t endpoint_id)
{
    if (s == NULL || endpoint_id >= s->id_cap)
        return -1;
    uint32_t slot = s->id_to_slot[endpoint_id];
    return slot == LB_NONE ? -1 : (int64_t)slot;
}
