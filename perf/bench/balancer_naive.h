/*
 * The balancer suite's endpoint population (both sides build the same N
 * endpoints) and its naive baseline (balancer_naive.c): the reference code
 * as compute-audit.md describes it, measured beside meshrt's balancer.
 */
#ifndef MRT_BENCH_BALANCER_NAIVE_H
#define MRT_BENCH_BALANCER_NAIVE_H

#include "meshrt/mrt_balancer.h"

#include <stdint.h>
#include <string.h>
#include <xxhash.h>

/* Endpoint i: zone z<(i/4)%4>, tag t<i%4>, plus "gpu" when i is even. */
static inline void ep_node(uint8_t id[32], uint32_t i)
{
    uint64_t h[4];
    for (int k = 0; k < 4; k++)
        h[k] = XXH3_64bits_withSeed(&i, sizeof i, (uint64_t)k);
    memcpy(id, h, 32);
}

static const char *const ZONES[4] = { "z0", "z1", "z2", "z3" };
static const char *const TAGS[4] = { "t0", "t1", "t2", "t3" };

static inline int64_t ep_weight(uint32_t i)
{
    return 50 + 25 * (int64_t)(i % 4); /* 50, 75, 100, 125: four classes */
}

typedef struct naive naive;

/* N endpoints as above, `vnodes` ring points each; aborts when memory runs out. */
naive *naive_create(uint32_t n, uint32_t vnodes);
void naive_destroy(naive *nv);
/* What the next selections ask: the strategy, a preferred zone and a required tag (or NULL). */
void naive_request(naive *nv, mrt_lb_strategy strategy, const char *zone, const char *tag);
/* mrt_bench_fn: `iters` select + complete pairs. */
void run_naive(void *p, uint64_t iters);

#endif
