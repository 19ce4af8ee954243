/* Shared by the scheduler suites (test_sched.c, test_sched_spread.c): a scheduler, loads, one placement. */
#ifndef MESHRT_TESTS_TEST_SCHED_COMMON_H
#define MESHRT_TESTS_TEST_SCHED_COMMON_H

#include "meshrt/mrt_sched.h"
#include "tests/check_main.h"

#include <check.h>

#define OK(x) ck_assert_int_eq((x), MRT_OK)
#define RC(x, want) ck_assert_int_eq((x), (want))

static inline mrt_sched *mk(uint32_t n)
{
    mrt_sched *s = NULL;
    OK(mrt_sched_create(NULL, n, &s));
    ck_assert_ptr_nonnull(s);
    return s;
}

static inline void load(mrt_sched *s, uint32_t shard, double busy, uint32_t hosted, uint32_t used,
                 uint32_t size, double lat)
{
    mrt_sched_load l = { .busy = busy, .hosted = hosted, .ring_used = used, .ring_size = size,
                         .latency_ns = lat };
    OK(mrt_sched_shard_set_load(s, shard, &l));
}

static inline uint32_t place1(mrt_sched *s, const mrt_sched_request *rq)
{
    uint32_t out = 12345;
    OK(mrt_sched_place(s, rq, 1, &out));
    return out;
}

/* A score function reading a per-shard table; counts its calls. */
struct table {
    double v[64];
    unsigned calls[64];
};

static inline double table_score(void *ctx, uint32_t shard, double free_capacity)
{
    (void)free_capacity;
    struct table *t = ctx;
    t->calls[shard]++;
    return t->v[shard];
}

#endif
