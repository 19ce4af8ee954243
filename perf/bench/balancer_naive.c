/*
 * The balancer suite's naive baseline (see balancer_naive.h).
 */
#include "balancer_naive.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/*
 * The reference as the audit describes it: endpoints live in a concurrent
 * map of individually allocated, refcounted states with atomic fields.
 * Per select (#148) it walks every endpoint with 3-4 atomic loads, filters
 * (available, circuit, connections, required tags by string, zone), clones
 * each survivor (refcount increment) into a fresh growable array, plus a
 * second array of zone matches; WRR recomputes the total weight (#160);
 * consistent hash (#150) collects the whole ring out of its map into a
 * fresh array, sorts it in place (unstable, key compared inline, as
 * sort_unstable_by_key), binary-searches and scans the survivors linearly
 * for the node id; the reservation is a CAS plus a clock read (#155, the
 * fixed version: atomic store, Instant::now() still taken). Metrics are
 * the fixed #149 version (one atomic pointer load, no clone). Its
 * completion releases the reservation, updates the latency average and
 * the breaker's failure count.
 */
typedef struct nv_ep {
    uint8_t node_id[32];
    char zone[8];
    char tags[2][8];
    int ntags;
    double weight;
    _Atomic uint32_t refcnt;
    _Atomic uint32_t conns;
    _Atomic int enabled;
    _Atomic int health;
    _Atomic int circuit_open;
    _Atomic uint64_t circuit_opened_at;
    _Atomic uint64_t total_requests;
    _Atomic uint64_t last_selected;
    _Atomic uint64_t latency_ns;
    _Atomic uint32_t consecutive_failures;
    _Atomic(const mrt_lb_metrics *) metrics;
    mrt_lb_metrics m;
} nv_ep;

typedef struct nv_ring_entry {
    uint64_t point;
    uint8_t node_id[32];
} nv_ring_entry;

struct naive {
    nv_ep **eps;                /* map iteration order */
    uint32_t n;
    nv_ring_entry *ring_map;    /* the ring's map, unsorted */
    uint32_t ring_n;
    _Atomic uint64_t counter;
    uint64_t rng;
    mrt_lb_strategy strategy;
    const char *zone;           /* request */
    const char *tag;            /* request (one required tag) */
    uint64_t key;
    uint64_t sink;
};

typedef struct vec {
    nv_ep **v;
    size_t len, cap;
} vec;

static void vec_push(vec *a, nv_ep *e)
{
    if (a->len == a->cap) { /* Vec growth: amortised doubling through the allocator */
        size_t nc = a->cap ? a->cap * 2 : 4;
        nv_ep **nv = realloc(a->v, nc * sizeof(*nv));
        if (nv == NULL)
            abort();
        a->v = nv;
        a->cap = nc;
    }
    atomic_fetch_add_explicit(&e->refcnt, 1, memory_order_relaxed); /* Arc::clone */
    a->v[a->len++] = e;
}

static void vec_drop(vec *a)
{
    for (size_t i = 0; i < a->len; i++)
        atomic_fetch_sub_explicit(&a->v[i]->refcnt, 1, memory_order_release);
    free(a->v);
}

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t nv_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * The ring sort as the reference does it, sort_unstable_by_key: in place,
 * unstable, the key compared inline (introsort: median-of-three quicksort,
 * insertion sort for short runs, heapsort when the recursion degrades).
 */
static void ring_swap(nv_ring_entry *a, nv_ring_entry *b)
{
    nv_ring_entry t = *a;
    *a = *b;
    *b = t;
}

static void ring_insertion(nv_ring_entry *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        nv_ring_entry t = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1].point > t.point; j--)
            v[j] = v[j - 1];
        v[j] = t;
    }
}

static void ring_sift(nv_ring_entry *v, size_t root, size_t n)
{
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n)
            return;
        if (c + 1 < n && v[c + 1].point > v[c].point)
            c++;
        if (v[root].point >= v[c].point)
            return;
        ring_swap(&v[root], &v[c]);
        root = c;
    }
}

static void ring_heapsort(nv_ring_entry *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        ring_sift(v, i, n);
    for (size_t end = n; end-- > 1;) {
        ring_swap(&v[0], &v[end]);
        ring_sift(v, 0, end);
    }
}

static void ring_introsort(nv_ring_entry *v, size_t n, int depth)
{
    while (n > 16) {
        if (depth-- == 0) {
            ring_heapsort(v, n);
            return;
        }
        size_t mid = n / 2;
        if (v[mid].point < v[0].point)
            ring_swap(&v[mid], &v[0]);
        if (v[n - 1].point < v[0].point)
            ring_swap(&v[n - 1], &v[0]);
        if (v[n - 1].point < v[mid].point)
            ring_swap(&v[n - 1], &v[mid]);
        uint64_t pivot = v[mid].point;
        size_t i = 0, j = n - 1;
        for (;;) { /* Hoare partition */
            while (v[i].point < pivot)
                i++;
            while (v[j].point > pivot)
                j--;
            if (i >= j)
                break;
            ring_swap(&v[i], &v[j]);
            i++;
            j--;
        }
        /* recurse into the smaller side, loop on the larger */
        size_t left = j + 1;
        if (left < n - left) {
            ring_introsort(v, left, depth);
            v += left;
            n -= left;
        } else {
            ring_introsort(v + left, n - left, depth);
            n = left;
        }
    }
    ring_insertion(v, n);
}

static void ring_sort_unstable(nv_ring_entry *v, size_t n)
{
    int depth = 0;
    for (size_t k = n; k > 1; k >>= 1)
        depth += 2;
    ring_introsort(v, n, depth);
}

static double nv_load(const nv_ep *e)
{
    const mrt_lb_metrics *m = atomic_load_explicit(&e->metrics, memory_order_acquire);
    return mrt_lb_load_score(m);
}

static nv_ep *nv_ch(naive *nv, nv_ep **eps, size_t len)
{
    uint64_t h = XXH3_64bits(&nv->key, sizeof nv->key);
    /* .collect() into a fresh Vec: one allocation, the copy */
    nv_ring_entry *ring = malloc((size_t)nv->ring_n * sizeof(*ring));
    if (ring == NULL)
        abort();
    memcpy(ring, nv->ring_map, (size_t)nv->ring_n * sizeof(*ring));
    ring_sort_unstable(ring, nv->ring_n); /* sort per select */
    size_t lo = 0, hi = nv->ring_n;
    while (lo < hi) { /* partition_point */
        size_t mid = (lo + hi) / 2;
        if (ring[mid].point < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    nv_ep *found = NULL;
    for (size_t i = 0; i < nv->ring_n && !found; i++) {
        const nv_ring_entry *re = &ring[(lo + i) % nv->ring_n];
        for (size_t k = 0; k < len; k++) /* endpoints.iter().find(node_id) */
            if (memcmp(eps[k]->node_id, re->node_id, 32) == 0) {
                found = eps[k];
                break;
            }
    }
    free(ring);
    return found;
}

static nv_ep *nv_pick(naive *nv, nv_ep **eps, size_t len)
{
    uint64_t c;
    double total, best;
    nv_ep *b = NULL;
    switch (nv->strategy) {
    case MRT_LB_ROUND_ROBIN:
        c = atomic_fetch_add_explicit(&nv->counter, 1, memory_order_relaxed);
        return eps[c % len];
    case MRT_LB_WEIGHTED_ROUND_ROBIN:
    case MRT_LB_WEIGHTED_RANDOM: {
        total = 0; /* #160: total weight recomputed per call */
        for (size_t i = 0; i < len; i++)
            total += eps[i]->weight;
        double pos;
        if (nv->strategy == MRT_LB_WEIGHTED_ROUND_ROBIN) {
            c = atomic_fetch_add_explicit(&nv->counter, 1, memory_order_relaxed);
            pos = fmod((double)c, total);
        } else {
            pos = (double)(nv_rand(&nv->rng) >> 11) * 0x1.0p-53 * total;
        }
        for (size_t i = 0; i < len; i++) {
            if (pos < eps[i]->weight)
                return eps[i];
            pos -= eps[i]->weight;
        }
        return eps[len - 1];
    }
    case MRT_LB_RANDOM:
        return eps[nv_rand(&nv->rng) % len];
    case MRT_LB_POWER_OF_TWO: {
        nv_ep *a = eps[nv_rand(&nv->rng) % len], *d = eps[nv_rand(&nv->rng) % len];
        return atomic_load(&d->conns) < atomic_load(&a->conns) ? d : a;
    }
    case MRT_LB_LEAST_CONNECTIONS:
    case MRT_LB_WEIGHTED_LEAST_CONN:
    case MRT_LB_LEAST_LATENCY:
    case MRT_LB_LEAST_LOAD:
        best = INFINITY;
        for (size_t i = 0; i < len; i++) {
            double k;
            if (nv->strategy == MRT_LB_LEAST_CONNECTIONS)
                k = atomic_load(&eps[i]->conns);
            else if (nv->strategy == MRT_LB_WEIGHTED_LEAST_CONN)
                k = (atomic_load(&eps[i]->conns) + 1.0) / eps[i]->weight;
            else if (nv->strategy == MRT_LB_LEAST_LATENCY)
                k = (double)atomic_load(&eps[i]->latency_ns);
            else
                k = nv_load(eps[i]);
            if (k < best) {
                best = k;
                b = eps[i];
            }
        }
        return b;
    case MRT_LB_CONSISTENT_HASH:
        return nv_ch(nv, eps, len);
    case MRT_LB_MAGLEV: /* no per-select rebuild in the reference: hash mod survivors */
        return eps[XXH3_64bits(&nv->key, sizeof nv->key) % len];
    case MRT_LB_ADAPTIVE: {
        double sum = 0;
        for (size_t i = 0; i < len; i++)
            sum += nv_load(eps[i]);
        if (sum / (double)len > 0.7) {
            best = INFINITY;
            for (size_t i = 0; i < len; i++)
                if (atomic_load(&eps[i]->conns) < best) {
                    best = atomic_load(&eps[i]->conns);
                    b = eps[i];
                }
            return b;
        }
        return nv_ch(nv, eps, len);
    }
    default:
        return eps[0];
    }
}

static nv_ep *nv_select(naive *nv)
{
    vec avail = { 0 }, zone = { 0 };
    for (uint32_t i = 0; i < nv->n; i++) { /* #148: full walk per event */
        nv_ep *e = nv->eps[i];
        if (!atomic_load_explicit(&e->enabled, memory_order_relaxed) ||
            atomic_load_explicit(&e->health, memory_order_relaxed) > MRT_LB_DEGRADED)
            continue;
        if (atomic_load_explicit(&e->circuit_open, memory_order_relaxed) &&
            clock_ns() - atomic_load(&e->circuit_opened_at) < 30000000000ull)
            continue;
        if (atomic_load_explicit(&e->conns, memory_order_relaxed) >= UINT32_MAX)
            continue;
        if (nv->tag != NULL) {
            bool has = false;
            for (int t = 0; t < e->ntags; t++)
                has |= strcmp(e->tags[t], nv->tag) == 0;
            if (!has)
                continue;
        }
        if (nv->zone != NULL && strcmp(e->zone, nv->zone) == 0)
            vec_push(&zone, e);
        vec_push(&avail, e);
    }
    vec *use = zone.len > 0 ? &zone : &avail;
    nv_ep *e = use->len ? nv_pick(nv, use->v, use->len) : NULL;
    if (e != NULL) { /* try_record_request: CAS reservation, counters, clock stamp */
        uint32_t cur = atomic_load(&e->conns);
        while (!atomic_compare_exchange_weak(&e->conns, &cur, cur + 1))
            ;
        atomic_fetch_add_explicit(&e->total_requests, 1, memory_order_relaxed);
        atomic_store_explicit(&e->last_selected, clock_ns(), memory_order_relaxed);
    }
    vec_drop(&avail);
    vec_drop(&zone);
    return e;
}

/*
 * The reference's completion: release the reservation, fold the latency
 * into the endpoint's average, breaker bookkeeping (consecutive failures
 * open the circuit and stamp the clock).
 */
static void nv_complete(nv_ep *e, bool ok, uint64_t latency_ns)
{
    atomic_fetch_sub_explicit(&e->conns, 1, memory_order_release);
    uint64_t old = atomic_load_explicit(&e->latency_ns, memory_order_relaxed);
    atomic_store_explicit(&e->latency_ns, (old * 7 + latency_ns) / 8, memory_order_relaxed);
    if (ok) {
        atomic_store_explicit(&e->consecutive_failures, 0, memory_order_relaxed);
    } else if (atomic_fetch_add_explicit(&e->consecutive_failures, 1, memory_order_relaxed) + 1 >=
               5) {
        atomic_store_explicit(&e->circuit_open, 1, memory_order_relaxed);
        atomic_store_explicit(&e->circuit_opened_at, clock_ns(), memory_order_relaxed);
    }
}

/* A select and its completion, the pair a request costs (compared with run_pair). */
void run_naive(void *p, uint64_t iters)
{
    naive *nv = p;
    uint64_t sink = 0;
    for (uint64_t i = 0; i < iters; i++) {
        nv->key++;
        nv_ep *e = nv_select(nv);
        if (e != NULL) {
            sink += e->node_id[0];
            nv_complete(e, true, 1000 + (nv->key & 1023));
        }
    }
    nv->sink += sink;
}

naive *naive_create(uint32_t n, uint32_t vnodes)
{
    naive *nv = calloc(1, sizeof(*nv));
    if (nv == NULL)
        return NULL;
    nv->eps = calloc(n, sizeof(*nv->eps));
    nv->ring_map = malloc((size_t)n * vnodes * sizeof(nv_ring_entry));
    if (nv->eps == NULL || nv->ring_map == NULL)
        abort();
    nv->n = n;
    nv->rng = 7;
    for (uint32_t i = 0; i < n; i++) {
        nv_ep *e = calloc(1, sizeof(*e));
        if (e == NULL)
            abort();
        ep_node(e->node_id, i);
        snprintf(e->zone, sizeof e->zone, "%s", ZONES[(i / 4) % 4]);
        snprintf(e->tags[0], sizeof e->tags[0], "%s", TAGS[i % 4]);
        snprintf(e->tags[1], sizeof e->tags[1], "gpu");
        e->ntags = (i % 2 == 0) ? 2 : 1;
        e->weight = (double)ep_weight(i);
        atomic_init(&e->refcnt, 1);
        atomic_init(&e->conns, 0);
        atomic_init(&e->enabled, 1);
        atomic_init(&e->health, MRT_LB_HEALTHY);
        atomic_init(&e->circuit_open, 0);
        atomic_init(&e->circuit_opened_at, 0);
        atomic_init(&e->total_requests, 0);
        atomic_init(&e->last_selected, 0);
        atomic_init(&e->latency_ns, 1000 + (i * 37) % 500);
        atomic_init(&e->consecutive_failures, 0);
        e->m.cpu = (double)(i % 10) / 20.0;
        e->m.memory = 0.3;
        atomic_init(&e->metrics, &e->m);
        nv->eps[i] = e;
    }
    /* the map's iteration order is not the ring order: scatter the points */
    uint32_t rn = n * vnodes;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t v = 0; v < vnodes; v++) {
            nv_ring_entry *re = &nv->ring_map[(uint64_t)i * vnodes + v];
            uint8_t buf[36];
            memcpy(buf, nv->eps[i]->node_id, 32);
            memcpy(buf + 32, &v, 4);
            re->point = XXH3_64bits(buf, sizeof buf);
            memcpy(re->node_id, nv->eps[i]->node_id, 32);
        }
    uint64_t s = 99;
    for (uint32_t i = rn; i > 1; i--) {
        uint32_t j = (uint32_t)(nv_rand(&s) % i);
        nv_ring_entry t = nv->ring_map[i - 1];
        nv->ring_map[i - 1] = nv->ring_map[j];
        nv->ring_map[j] = t;
    }
    nv->ring_n = rn;
    atomic_init(&nv->counter, 0);
    return nv;
}

void naive_destroy(naive *nv)
{
    if (nv == NULL)
        return;
    for (uint32_t i = 0; i < nv->n; i++)
        free(nv->eps[i]);
    free(nv->eps);
    free(nv->ring_map);
    free(nv);
}

void naive_request(naive *nv, mrt_lb_strategy strategy, const char *zone, const char *tag)
{
    nv->strategy = strategy;
    nv->zone = zone;
    nv->tag = tag;
}
