/*
 * The snapshot compiler's builders: each pool's smooth-WRR plan, and the
 * per-strategy structures of a pool — nginx's smooth-WRR period, Vose's
 * alias table, the ring's radix sort and directory, the Maglev table.
 * Deterministic for a given input; off the event path.
 */
#include "balancer/lb_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

uint32_t lb_next_prime(uint32_t x)
{
    if (x <= 2)
        return 2;
    if ((x & 1) == 0)
        x++;
    while (!lb_is_prime(x))
        x += 2;
    return x;
}

uint32_t lb_pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

size_t lb_take(size_t *off, size_t bytes)
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
void lb_plan_wrr(pool_plan *p, const uint32_t *mem, const uint32_t *w, uint32_t cap,
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

int lb_cmp_u64(const void *a, const void *b)
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
int lb_build_wrr(const mrt_allocator *a, const pool_plan *p, const uint32_t *mem,
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
int lb_build_alias(const mrt_allocator *a, uint32_t n, const uint32_t *mem,
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
int lb_radix_sort(const mrt_allocator *a, uint64_t *pts, uint32_t *slots, uint32_t n)
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

void lb_build_dir(const uint64_t *pts, uint32_t n, uint32_t bits, uint32_t *dir)
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
int lb_build_maglev(const mrt_allocator *a, uint32_t n, const uint32_t *mem,
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

