/* Shared by the strategy suites (test_balancer_strategies.c, test_balancer_hashing.c): a compiled fixture, one pick. */
#ifndef MESHRT_TESTS_TEST_BALANCER_COMMON_H
#define MESHRT_TESTS_TEST_BALANCER_COMMON_H

#include "balancer/lb_internal.h"
#include "meshrt/mrt_balancer.h"
#include "tests/check_main.h"
#include "tests/test_lb_helpers.h"

#include <check.h>
#include <string.h>

#define EQ(a, b)                                                                                   \
    do {                                                                                           \
        uint64_t a_ = (a), b_ = (b);                                                               \
        if (a_ != b_)                                                                              \
            ck_assert_msg(0, "%s == %s: %lu vs %lu", #a, #b, (unsigned long)a_,                   \
                          (unsigned long)b_);                                                      \
    } while (0)

typedef struct fx {
    mrt_lb_registry *r;
    mrt_lb_shard *sh;
    mrt_lb_snapshot *S;
} fx;

/* n endpoints (node ids in index order, so slot i is endpoint i), weights w or default. */
static inline void fx_init(fx *f, mrt_lb_strategy st, uint32_t n, const int64_t *w,
                    const mrt_lb_config *over)
{
    mrt_lb_config c;
    if (over)
        c = *over;
    else
        mrt_lb_config_default(&c);
    c.strategy = st;
    OK(mrt_lb_registry_create(NULL, &c, &f->r));
    for (uint32_t i = 0; i < n; i++) {
        mrt_lb_endpoint_spec s;
        uint8_t id[32];
        node(id, i);
        mrt_lb_endpoint_spec_init(&s, id);
        if (w)
            s.weight = w[i];
        s.user_data = 1000 + i;
        OK(mrt_lb_registry_add(f->r, &s, NULL));
    }
    OK(mrt_lb_shard_create(NULL, 42, &f->sh));
    f->S = NULL;
}

static inline void fx_compile(fx *f)
{
    mrt_lb_snapshot *S;
    OK(mrt_lb_registry_compile(f->r, 0, NULL, &S));
    OK(mrt_lb_shard_adopt(f->sh, S));
    mrt_lb_snapshot_free(f->S);
    f->S = S;
}

static inline void fx_free(fx *f)
{
    mrt_lb_shard_destroy(f->sh);
    mrt_lb_snapshot_free(f->S);
    mrt_lb_registry_destroy(f->r);
}

/* select + complete(ok); returns the endpoint id */
static inline uint32_t pick1(fx *f, const mrt_lb_request *rq)
{
    mrt_lb_selection sel;
    OK(mrt_lb_select(f->S, f->sh, rq, 0, &sel));
    OK(mrt_lb_complete(f->sh, &sel, true, 1000, 0));
    return sel.endpoint_id;
}

static inline uint32_t pick_key(fx *f, uint64_t key)
{
    mrt_lb_request rq;
    mrt_lb_request_init(&rq);
    rq.routing_key = &key;
    rq.routing_key_len = sizeof key;
    return pick1(f, &rq);
}

#endif
