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
 * distinct weights): all off the event path.
 */
#include "balancer/lb_internal.h"

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

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static uint32_t next_prime(uint32_t x)
{
    if (x <= 2)
        return 2;
    if ((x & 1) == 0)
        x++;
    while (!lb_is_prime(x))
        x += 2;
    return x;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Per-pool build plan (temporary). */
typedef struct pool_plan {
    uint32_t moff;          /* offset of the pool's members in the temp CSR */
    uint32_t n;
    uint32_t wrr_len;
    uint64_t wrr_div;       /* divide weights by this after scaling */
    double wrr_scale;       /* 1.0 unless quantised */
    uint32_t ring_n, dir_bits, mag_m, tree_leaves;
    bool tree;
    double mean_load;
    size_t o_members, o_alias, o_wrr, o_pts, o_dir, o_mag;
} pool_plan;

static size_t take(size_t *off, size_t bytes)
{
    size_t o = (*off + 63) & ~(size_t)63;
    *off = o + bytes;
    return o;
}

/* Smooth-WRR reduced weight of member weight w under the pool's plan. */
static uint64_t wrr_weight(const pool_plan *p, uint32_t w)
{
    uint64_t q = w;
    if (p->wrr_scale != 1.0) {
        q = (uint64_t)floor((double)w * p->wrr_scale);
        if (q == 0)
            q = 1;
    }
    return q / p->wrr_div;
}

/* Choose the smooth-WRR scale/divisor of a pool so its period fits the cap. */
static void plan_wrr(pool_plan *p, const uint32_t *mem, const uint32_t *w, uint32_t cap,
                     bool *quantized)
{
    p->wrr_scale = 1.0;
    p->wrr_div = 1;
    uint64_t g = 0, total = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        g = gcd64(g, w[mem[i]]);
        total += w[mem[i]];
    }
    uint64_t limit = cap > p->n ? cap : p->n;
    if (total / g > limit) {
        p->wrr_scale = (double)limit / (double)(total / g) / (double)g;
        *quantized = true;
        g = 0;
        for (uint32_t i = 0; i < p->n; i++)
            g = gcd64(g, wrr_weight(p, w[mem[i]]));
    }
    p->wrr_div = g;
    total = 0;
    for (uint32_t i = 0; i < p->n; i++)
        total += wrr_weight(p, w[mem[i]]);
    p->wrr_len = (uint32_t)total;
}

/* ------------------------------------------------------------------ builders */

typedef struct wrr_class {
    uint64_t w;
    uint32_t start, size;   /* range in the class member list */
    uint32_t k;             /* cursor */
    uint64_t round;
} wrr_class;

/* Release a builder's three scratch arrays (any of them NULL after a failed allocation). */
static void free3(const mrt_allocator *a, void *x, void *y, void *z)
{
    mrt_free(a, x, 0);
    mrt_free(a, y, 0);
    mrt_free(a, z, 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*
 * One period of nginx's smooth WRR. nginx picks, at step t (1-based), the
 * first peer with the largest current weight t*w_i - W*p_i (p_i = picks so
 * far). Peers of equal weight are picked in member order, so each weight
 * class is a cursor and a step is an argmax over the D classes: O(W x D)
 * instead of O(W x N), and exactly nginx's sequence.
 */
static int build_wrr(const mrt_allocator *a, const pool_plan *p, const uint32_t *mem,
                     const uint32_t *w, uint32_t *seq)
{
    uint32_t n = p->n;
    uint64_t *ws = mrt_alloc(a, (size_t)n * sizeof(uint64_t));
    wrr_class *cls = mrt_alloc(a, (size_t)n * sizeof(wrr_class));
    uint32_t *list = mrt_alloc(a, (size_t)n * sizeof(uint32_t));
    if (ws == NULL || cls == NULL || list == NULL) {
        free3(a, ws, cls, list);
        return MRT_LB_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        ws[i] = wrr_weight(p, w[mem[i]]);
    /* distinct weights: the classes */
    uint32_t D = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = 0;
        while (c < D && cls[c].w != ws[i])
            c++;
        if (c == D) {
            cls[D].w = ws[i];
            cls[D].size = 0;
            D++;
        }
        cls[c].size++;
    }
    uint32_t pos = 0;
    for (uint32_t c = 0; c < D; c++) {
        cls[c].start = pos;
        pos += cls[c].size;
        cls[c].size = 0;
        cls[c].k = 0;
        cls[c].round = 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = 0;
        while (cls[c].w != ws[i])
            c++;
        list[cls[c].start + cls[c].size++] = i;
    }
    int64_t W = (int64_t)p->wrr_len;
    for (int64_t t = 1; t <= W; t++) {
        uint32_t best = 0;
        int64_t bestv = 0;
        uint32_t bestm = UINT32_MAX;
        for (uint32_t c = 0; c < D; c++) {
            uint32_t m = list[cls[c].start + cls[c].k];
            int64_t v = t * (int64_t)cls[c].w - W * (int64_t)cls[c].round;
            if (bestm == UINT32_MAX || v > bestv || (v == bestv && m < bestm)) {
                best = c;
                bestv = v;
                bestm = m;
            }
        }
        seq[t - 1] = mem[bestm];
        if (++cls[best].k == cls[best].size) {
            cls[best].k = 0;
            cls[best].round++;
        }
    }
    free3(a, ws, cls, list);
    return MRT_OK;
}

/* Vose alias table over the members' effective weights, exact in integers. */
static int build_alias(const mrt_allocator *a, uint32_t n, const uint32_t *mem,
                       const uint32_t *w, lb_alias *out)
{
    uint64_t *q = mrt_alloc(a, (size_t)n * sizeof(uint64_t));
    uint32_t *small = mrt_alloc(a, (size_t)n * sizeof(uint32_t));
    uint32_t *large = mrt_alloc(a, (size_t)n * sizeof(uint32_t));
    if (q == NULL || small == NULL || large == NULL) {
        free3(a, q, small, large);
        return MRT_LB_ENOMEM;
    }
    uint64_t W = 0;
    for (uint32_t i = 0; i < n; i++)
        W += w[mem[i]];
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        q[i] = (uint64_t)w[mem[i]] * n; /* a column holds W */
        if (q[i] < W)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        uint32_t s = small[--ns];
        uint32_t l = large[--nl];
        double thr = (double)q[s] / (double)W * 4294967296.0;
        out[s].thr = thr >= 4294967295.0 ? UINT32_MAX : (uint32_t)thr;
        out[s].self = mem[s];
        out[s].other = mem[l];
        q[l] -= W - q[s];
        if (q[l] < W)
            small[ns++] = l;
        else
            large[nl++] = l;
    }
    while (nl > 0) {
        uint32_t l = large[--nl];
        out[l].thr = UINT32_MAX;
        out[l].self = out[l].other = mem[l];
    }
    while (ns > 0) { /* rounding leftovers: a full column */
        uint32_t s = small[--ns];
        out[s].thr = UINT32_MAX;
        out[s].self = out[s].other = mem[s];
    }
    free3(a, q, small, large);
    return MRT_OK;
}

/* LSD radix sort of (point, slot) pairs by point; stable, so ties keep slot order. */
static int radix_sort(const mrt_allocator *a, uint64_t *pts, uint32_t *slots, uint32_t n)
{
    if (n < 2)
        return MRT_OK;
    uint64_t *p2 = mrt_alloc(a, (size_t)n * sizeof(uint64_t));
    uint32_t *s2 = mrt_alloc(a, (size_t)n * sizeof(uint32_t));
    uint32_t (*hist)[256] = mrt_calloc(a, 8 * 256 * sizeof(uint32_t));
    if (p2 == NULL || s2 == NULL || hist == NULL) {
        free3(a, p2, s2, hist);
        return MRT_LB_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        for (int d = 0; d < 8; d++)
            hist[d][(pts[i] >> (8 * d)) & 0xff]++;
    uint64_t *src = pts, *dst = p2;
    uint32_t *ssrc = slots, *sdst = s2;
    for (int d = 0; d < 8; d++) {
        uint32_t sum = 0;
        bool trivial = false;
        for (int b = 0; b < 256; b++) {
            if (hist[d][b] == n)
                trivial = true;
            uint32_t c = hist[d][b];
            hist[d][b] = sum;
            sum += c;
        }
        if (trivial)
            continue;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t o = hist[d][(src[i] >> (8 * d)) & 0xff]++;
            dst[o] = src[i];
            sdst[o] = ssrc[i];
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
        uint32_t *ts = ssrc;
        ssrc = sdst;
        sdst = ts;
    }
    if (src != pts) {
        memcpy(pts, src, (size_t)n * sizeof(uint64_t));
        memcpy(slots, ssrc, (size_t)n * sizeof(uint32_t));
    }
    free3(a, p2, s2, hist);
    return MRT_OK;
}

static void build_dir(const uint64_t *pts, uint32_t n, uint32_t bits, uint32_t *dir)
{
    uint32_t buckets = 1u << bits;
    uint32_t i = 0;
    for (uint32_t b = 0; b < buckets; b++) {
        while (i < n && bits != 0 && (pts[i] >> (64 - bits)) < b)
            i++;
        dir[b] = (bits == 0) ? 0 : i;
    }
    dir[buckets] = n;
}

/*
 * Weighted Maglev population (Eisenbud et al., with Envoy's weighting): in
 * iteration k an endpoint of weight w claims its next free preferred entry
 * when k*w has reached its running target, so the heaviest claims every
 * iteration and shares follow the weights.
 */
static int build_maglev(const mrt_allocator *a, uint32_t n, const uint32_t *mem,
                        const uint32_t *w, const uint64_t *h_off, const uint64_t *h_skip,
                        uint32_t M, uint32_t *table)
{
    uint32_t *cur = mrt_alloc(a, (size_t)n * sizeof(uint32_t));
    uint32_t *skip = mrt_alloc(a, (size_t)n * sizeof(uint32_t));
    uint64_t *target = mrt_calloc(a, (size_t)n * sizeof(uint64_t));
    if (cur == NULL || skip == NULL || target == NULL) {
        free3(a, cur, skip, target);
        return MRT_LB_ENOMEM;
    }
    uint64_t maxw = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = mem[i];
        cur[i] = (uint32_t)(h_off[s] % M);
        skip[i] = (uint32_t)(h_skip[s] % (M - 1)) + 1;
        if (w[s] > maxw)
            maxw = w[s];
    }
    for (uint32_t j = 0; j < M; j++)
        table[j] = LB_NONE;
    uint32_t filled = 0;
    for (uint64_t iter = 1; filled < M; iter++) {
        for (uint32_t i = 0; i < n && filled < M; i++) {
            if (iter * w[mem[i]] < target[i])
                continue;
            target[i] += maxw;
            uint32_t c = cur[i];
            while (table[c] != LB_NONE) {
                c += skip[i];
                if (c >= M)
                    c -= M;
            }
            table[c] = mem[i];
            c += skip[i];
            if (c >= M)
                c -= M;
            cur[i] = c;
            filled++;
        }
    }
    free3(a, cur, skip, target);
    return MRT_OK;
}

static int cmp_ep_node(const void *a, const void *b)
{
    const lb_ep *const *x = a;
    const lb_ep *const *y = b;
    return memcmp((*x)->node_id, (*y)->node_id, MRT_LB_NODE_ID_LEN);
}

/* ------------------------------------------------------------------ compile */

typedef struct build_tmp {
    const lb_ep **avail;
    uint32_t *pool_cnt;
    uint32_t *pool_mem;     /* CSR of members, by pool */
    uint64_t *h_off, *h_skip;
    uint64_t *all_pts;
    uint32_t *all_slot;
    uint64_t *sub_pts;
    uint8_t *mark;
    pool_plan *plan;
} build_tmp;

static void tmp_free(const mrt_allocator *a, build_tmp *t)
{
    mrt_free(a, t->avail, 0);
    mrt_free(a, t->pool_cnt, 0);
    mrt_free(a, t->pool_mem, 0);
    mrt_free(a, t->h_off, 0);
    mrt_free(a, t->h_skip, 0);
    mrt_free(a, t->all_pts, 0);
    mrt_free(a, t->all_slot, 0);
    mrt_free(a, t->sub_pts, 0);
    mrt_free(a, t->mark, 0);
    mrt_free(a, t->plan, 0);
}

int mrt_lb_registry_compile(mrt_lb_registry *r, uint64_t now_ns, const mrt_allocator *a,
                            mrt_lb_snapshot **out)
{
    if (r == NULL || out == NULL)
        return MRT_LB_EINVAL;
    mrt_allocator al = mrt_allocator_or_default(a);
    const mrt_lb_config *cfg = &r->cfg;
    mrt_lb_strategy strat = cfg->strategy;
    build_tmp t;
    memset(&t, 0, sizeof t);
    int rc = MRT_LB_ENOMEM;

    /* 1. available endpoints, in node-id order */
    uint32_t n = 0;
    if (r->count > 0) {
        t.avail = mrt_alloc(&al, (size_t)r->count * sizeof(*t.avail));
        if (t.avail == NULL)
            goto fail;
    }
    for (uint32_t id = 0; id < r->next_id; id++) {
        const lb_ep *e = &r->eps[id];
        if (!e->live || !e->enabled || e->tripped_until > now_ns)
            continue;
        if (e->health != MRT_LB_HEALTHY && e->health != MRT_LB_DEGRADED)
            continue;
        t.avail[n++] = e;
    }
    if (n > 1)
        qsort(t.avail, n, sizeof(*t.avail), cmp_ep_node);

    /* 2. rows (zones with an available endpoint) and columns (declared filters) */
    uint16_t zone_row_tmp[MRT_LB_MAX_ZONES];
    for (uint32_t z = 0; z < MRT_LB_MAX_ZONES; z++)
        zone_row_tmp[z] = LB_ZROW_NONE;
    uint32_t nrows = 1;
    for (uint32_t s = 0; s < n; s++) {
        uint16_t z = t.avail[s]->zone;
        if (z != MRT_LB_ZONE_NONE && zone_row_tmp[z] == LB_ZROW_NONE)
            zone_row_tmp[z] = 0; /* mark; numbered below in zone-id order */
    }
    for (uint32_t z = 0; z < MRT_LB_MAX_ZONES; z++)
        if (zone_row_tmp[z] == 0)
            zone_row_tmp[z] = (uint16_t)nrows++;
    uint64_t fmask[MRT_LB_MAX_FILTERS];
    uint32_t nf = r->nfilters;
    memcpy(fmask, r->filter_masks, nf * sizeof(uint64_t));
    qsort(fmask, nf, sizeof(uint64_t), cmp_u64);
    uint32_t ncols = nf + 1;
    uint32_t npools = nrows * ncols;

    /* 3. pool membership (temporary CSR) */
    t.pool_cnt = mrt_calloc(&al, (size_t)npools * sizeof(uint32_t));
    t.plan = mrt_calloc(&al, (size_t)npools * sizeof(pool_plan));
    if (t.pool_cnt == NULL || t.plan == NULL)
        goto fail;
    uint64_t total_mem = 0;
    for (uint32_t s = 0; s < n; s++) {
        const lb_ep *e = t.avail[s];
        uint32_t zr = e->zone == MRT_LB_ZONE_NONE ? 0 : zone_row_tmp[e->zone];
        for (uint32_t c = 0; c < ncols; c++) {
            uint64_t m = c ? fmask[c - 1] : 0;
            if ((e->tags & m) != m)
                continue;
            t.pool_cnt[c]++;
            total_mem++;
            if (zr) {
                t.pool_cnt[zr * ncols + c]++;
                total_mem++;
            }
        }
    }
    if (total_mem > 0) {
        t.pool_mem = mrt_alloc(&al, (size_t)total_mem * sizeof(uint32_t));
        if (t.pool_mem == NULL)
            goto fail;
    }
    {
        uint32_t off = 0;
        for (uint32_t p = 0; p < npools; p++) {
            t.plan[p].moff = off;
            t.plan[p].n = 0;
            off += t.pool_cnt[p];
        }
        for (uint32_t s = 0; s < n; s++) {
            const lb_ep *e = t.avail[s];
            uint32_t zr = e->zone == MRT_LB_ZONE_NONE ? 0 : zone_row_tmp[e->zone];
            for (uint32_t c = 0; c < ncols; c++) {
                uint64_t m = c ? fmask[c - 1] : 0;
                if ((e->tags & m) != m)
                    continue;
                pool_plan *p0 = &t.plan[c];
                t.pool_mem[p0->moff + p0->n++] = s;
                if (zr) {
                    pool_plan *pz = &t.plan[zr * ncols + c];
                    t.pool_mem[pz->moff + pz->n++] = s;
                }
            }
        }
    }

    /* effective weights in half units: healthy x2, degraded x1 */
    uint32_t *wtmp = NULL;
    double *ltmp = NULL;
    if (n > 0) {
        wtmp = mrt_alloc(&al, (size_t)n * sizeof(uint32_t));
        ltmp = mrt_alloc(&al, (size_t)n * sizeof(double));
        if (wtmp == NULL || ltmp == NULL) {
            mrt_free(&al, wtmp, 0);
            mrt_free(&al, ltmp, 0);
            goto fail;
        }
        for (uint32_t s = 0; s < n; s++) {
            const lb_ep *e = t.avail[s];
            wtmp[s] = (uint32_t)(e->health == MRT_LB_HEALTHY ? e->weight * 2 : e->weight);
            ltmp[s] = e->load_score;
        }
    }

    /* 4. plan every pool and lay the block out */
    bool quantized = false;
    uint32_t tree_nodes = 0;
    uint64_t tree_mem = 0;
    size_t off = 0;
    size_t o_snap = take(&off, sizeof(mrt_lb_snapshot));
    size_t o_slots = take(&off, (size_t)n * sizeof(lb_slot));
    size_t o_ids = take(&off, (size_t)n * MRT_LB_NODE_ID_LEN);
    size_t o_w = take(&off, (size_t)n * sizeof(uint32_t));
    size_t o_load = take(&off, (size_t)n * sizeof(double));
    size_t o_tags = take(&off, (size_t)n * sizeof(uint64_t));
    size_t o_zones = take(&off, (size_t)n * sizeof(uint16_t));
    size_t o_id2s = take(&off, (size_t)r->next_id * sizeof(uint32_t));
    size_t o_zrow = take(&off, MRT_LB_MAX_ZONES * sizeof(uint16_t));
    size_t o_fm = take(&off, (size_t)nf * sizeof(uint64_t));
    size_t o_pools = take(&off, (size_t)npools * sizeof(lb_pool));
    for (uint32_t pi = 0; pi < npools; pi++) {
        pool_plan *p = &t.plan[pi];
        const uint32_t *mem = t.pool_mem ? t.pool_mem + p->moff : NULL;
        double sum = 0;
        for (uint32_t i = 0; i < p->n; i++)
            sum += ltmp[mem[i]];
        p->mean_load = p->n ? sum / p->n : 0.0;
        if (p->n == 0)
            continue;
        p->o_members = take(&off, (size_t)p->n * sizeof(uint32_t));
        if (needs_alias(strat))
            p->o_alias = take(&off, (size_t)p->n * sizeof(lb_alias));
        if (needs_wrr(strat)) {
            plan_wrr(p, mem, wtmp, cfg->wrr_max_period, &quantized);
            p->o_wrr = take(&off, (size_t)p->wrr_len * sizeof(uint32_t));
        }
        if (needs_ring(strat)) {
            p->ring_n = p->n * cfg->vnodes;
            /* about 4 points per directory bucket: the bucket is one cache line of entries */
            uint32_t bits = 0;
            while (bits < 24 && ((uint64_t)LB_RING_PER_BUCKET << bits) < p->ring_n)
                bits++;
            p->dir_bits = bits;
            p->o_pts = take(&off, ((size_t)p->ring_n + LB_RING_WINDOW) * sizeof(lb_rent));
            p->o_dir = take(&off, ((size_t)(1u << p->dir_bits) + 1) * sizeof(uint32_t));
        }
        if (needs_maglev(strat)) {
            uint64_t want = (uint64_t)p->n * 128;
            p->mag_m = (pi == 0 || want >= cfg->maglev_size)
                           ? cfg->maglev_size
                           : next_prime((uint32_t)(want < 131 ? 131 : want));
            if (p->mag_m > cfg->maglev_size)
                p->mag_m = cfg->maglev_size;
            p->o_mag = take(&off, (size_t)p->mag_m * sizeof(uint32_t));
        }
        p->tree = tree_strategy(strat) ||
                  (strat == MRT_LB_ADAPTIVE && p->mean_load > ADAPTIVE_LOAD_THRESHOLD);
        if (p->tree) {
            p->tree_leaves = pow2_at_least(p->n);
            tree_nodes += 2 * p->tree_leaves;
            tree_mem += p->n;
        }
    }
    size_t o_moff = take(&off, ((size_t)n + 1) * sizeof(uint32_t));
    size_t o_mpool = take(&off, (size_t)tree_mem * sizeof(uint32_t));
    size_t o_midx = take(&off, (size_t)tree_mem * sizeof(uint32_t));

    uint8_t *base = mrt_alloc_aligned(&al, off, 64);
    if (base == NULL) {
        mrt_free(&al, wtmp, 0);
        mrt_free(&al, ltmp, 0);
        goto fail;
    }
    mrt_lb_snapshot *S = (mrt_lb_snapshot *)(base + o_snap);
    memset(S, 0, sizeof(*S));
    S->magic = LB_MAGIC;
    S->alloc = al;
    S->bytes = off;
    S->version = ++r->version;
    S->cfg = *cfg;
    S->registered = r->count;
    S->n = n;
    S->id_cap = r->next_id;
    S->nrows = nrows;
    S->ncols = ncols;
    S->npools = npools;
    S->tree_nodes = tree_nodes;
    S->wrr_quantized = quantized;

    /* 5. fill */
    lb_slot *slots = (lb_slot *)(base + o_slots);
    uint8_t *ids = base + o_ids;
    uint32_t *wts = (uint32_t *)(base + o_w);
    double *load = (double *)(base + o_load);
    uint64_t *tags = (uint64_t *)(base + o_tags);
    uint16_t *zones = (uint16_t *)(base + o_zones);
    uint32_t *id2s = (uint32_t *)(base + o_id2s);
    uint16_t *zrow = (uint16_t *)(base + o_zrow);
    uint64_t *fm = (uint64_t *)(base + o_fm);
    lb_pool *pools = (lb_pool *)(base + o_pools);
    for (uint32_t id = 0; id < r->next_id; id++)
        id2s[id] = LB_NONE;
    for (uint32_t s = 0; s < n; s++) {
        const lb_ep *e = t.avail[s];
        uint32_t id = (uint32_t)(e - r->eps);
        slots[s].id = id;
        slots[s].gen = e->gen;
        slots[s].user = e->user_data;
        memcpy(ids + (size_t)s * MRT_LB_NODE_ID_LEN, e->node_id, MRT_LB_NODE_ID_LEN);
        wts[s] = wtmp[s];
        load[s] = ltmp[s];
        tags[s] = e->tags;
        zones[s] = e->zone;
        id2s[id] = s;
    }
    memcpy(zrow, zone_row_tmp, sizeof zone_row_tmp);
    memcpy(fm, fmask, nf * sizeof(uint64_t));
    S->slots = slots;
    S->node_ids = ids;
    S->weights = wts;
    S->load = load;
    S->tags = tags;
    S->zones = zones;
    S->id_to_slot = id2s;
    S->zone_row = zrow;
    S->filter_masks = fm;
    S->pools = pools;

    /* ring points and Maglev hashes once per slot */
    if (n > 0 && needs_ring(strat)) {
        size_t rn = (size_t)n * cfg->vnodes;
        t.all_pts = mrt_alloc(&al, rn * sizeof(uint64_t));
        t.all_slot = mrt_alloc(&al, rn * sizeof(uint32_t));
        t.sub_pts = npools > 1 ? mrt_alloc(&al, rn * sizeof(uint64_t)) : NULL;
        t.mark = mrt_calloc(&al, n);
        if (t.all_pts == NULL || t.all_slot == NULL || t.mark == NULL ||
            (npools > 1 && t.sub_pts == NULL))
            goto fail_block;
        size_t k = 0;
        for (uint32_t s = 0; s < n; s++)
            for (uint32_t v = 0; v < cfg->vnodes; v++) {
                t.all_pts[k] = lb_ring_point(ids + (size_t)s * MRT_LB_NODE_ID_LEN, v);
                t.all_slot[k] = s;
                k++;
            }
        if (radix_sort(&al, t.all_pts, t.all_slot, (uint32_t)rn) != MRT_OK)
            goto fail_block;
    }
    if (n > 0 && needs_maglev(strat)) {
        t.h_off = mrt_alloc(&al, (size_t)n * sizeof(uint64_t));
        t.h_skip = mrt_alloc(&al, (size_t)n * sizeof(uint64_t));
        if (t.h_off == NULL || t.h_skip == NULL)
            goto fail_block;
        for (uint32_t s = 0; s < n; s++) {
            const uint8_t *nid = ids + (size_t)s * MRT_LB_NODE_ID_LEN;
            t.h_off[s] = XXH3_64bits_withSeed(nid, MRT_LB_NODE_ID_LEN, MAGLEV_SEED_OFFSET);
            t.h_skip[s] = XXH3_64bits_withSeed(nid, MRT_LB_NODE_ID_LEN, MAGLEV_SEED_SKIP);
        }
    }

    uint32_t *moff = (uint32_t *)(base + o_moff);
    uint32_t *mpool = (uint32_t *)(base + o_mpool);
    uint32_t *midx = (uint32_t *)(base + o_midx);
    memset(moff, 0, ((size_t)n + 1) * sizeof(uint32_t));
    uint32_t tree_base = 0;
    for (uint32_t pi = 0; pi < npools; pi++) {
        pool_plan *p = &t.plan[pi];
        lb_pool *P = &pools[pi];
        memset(P, 0, sizeof(*P));
        P->n = p->n;
        P->mean_load = p->mean_load;
        P->tree_base = LB_NONE;
        if (p->n == 0)
            continue;
        const uint32_t *mem = t.pool_mem + p->moff;
        uint32_t *members = (uint32_t *)(base + p->o_members);
        memcpy(members, mem, (size_t)p->n * sizeof(uint32_t));
        P->members = members;
        if (p->n == n)
            P->flags |= LB_POOL_ALL; /* a subset as large as the whole is the whole */
        if (needs_alias(strat)) {
            lb_alias *al_tab = (lb_alias *)(base + p->o_alias);
            if (build_alias(&al, p->n, mem, wts, al_tab) != MRT_OK)
                goto fail_block;
            P->alias = al_tab;
        }
        if (needs_wrr(strat)) {
            uint32_t *seq = (uint32_t *)(base + p->o_wrr);
            if (build_wrr(&al, p, mem, wts, seq) != MRT_OK)
                goto fail_block;
            P->wrr_seq = seq;
            P->wrr_len = p->wrr_len;
        }
        if (needs_ring(strat)) {
            lb_rent *ring = (lb_rent *)(base + p->o_pts);
            uint32_t *dir = (uint32_t *)(base + p->o_dir);
            size_t rn = (size_t)n * cfg->vnodes;
            /* a sub-ring is the all-endpoint ring filtered: already sorted */
            uint64_t *pts = t.all_pts;
            if (pi != 0) {
                pts = t.sub_pts;
                for (uint32_t i = 0; i < p->n; i++)
                    t.mark[mem[i]] = 1;
                size_t k = 0;
                for (size_t i = 0; i < rn; i++)
                    if (t.mark[t.all_slot[i]]) {
                        pts[k] = t.all_pts[i];
                        ring[k].slot = t.all_slot[i];
                        k++;
                    }
                for (uint32_t i = 0; i < p->n; i++)
                    t.mark[mem[i]] = 0;
            } else {
                for (size_t i = 0; i < rn; i++)
                    ring[i].slot = t.all_slot[i];
            }
            for (uint32_t i = 0; i < p->ring_n; i++)
                ring[i].mid = lb_ring_mid(pts[i], p->dir_bits);
            for (uint32_t i = p->ring_n; i < p->ring_n + LB_RING_WINDOW; i++) {
                ring[i].mid = UINT32_MAX;
                ring[i].slot = 0;
            }
            build_dir(pts, p->ring_n, p->dir_bits, dir);
            P->ring_n = p->ring_n;
            P->dir_bits = p->dir_bits;
            P->ring = ring;
            P->ring_dir = dir;
        }
        if (needs_maglev(strat)) {
            uint32_t *tab = (uint32_t *)(base + p->o_mag);
            if (build_maglev(&al, p->n, mem, wts, t.h_off, t.h_skip, p->mag_m, tab) != MRT_OK)
                goto fail_block;
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
    /* tree membership CSR: for each slot, the (pool, member index) pairs with a tree */
    for (uint32_t s = 0; s < n; s++)
        moff[s + 1] += moff[s];
    if (tree_mem > 0) {
        uint32_t *fillc = mrt_calloc(&al, (size_t)n * sizeof(uint32_t));
        if (fillc == NULL)
            goto fail_block;
        for (uint32_t pi = 0; pi < npools; pi++) {
            const lb_pool *P = &pools[pi];
            if (!(P->flags & LB_POOL_TREE))
                continue;
            for (uint32_t i = 0; i < P->n; i++) {
                uint32_t s = P->members[i];
                uint32_t k = moff[s] + fillc[s]++;
                mpool[k] = pi;
                midx[k] = i;
            }
        }
        mrt_free(&al, fillc, 0);
    }
    S->mem_off = moff;
    S->mem_pool = mpool;
    S->mem_idx = midx;

    mrt_free(&al, wtmp, 0);
    mrt_free(&al, ltmp, 0);
    tmp_free(&al, &t);
    *out = S;
    return MRT_OK;

fail_block:
    mrt_free(&al, wtmp, 0);
    mrt_free(&al, ltmp, 0);
    mrt_free_aligned(&al, base, off, 64);
fail:
    tmp_free(&al, &t);
    return rc;
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
