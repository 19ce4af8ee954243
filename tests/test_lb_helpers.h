/* Shared by the balancer suites: endpoint ids, and OK() for calls that must succeed. */
#ifndef MESHRT_TESTS_TEST_LB_HELPERS_H
#define MESHRT_TESTS_TEST_LB_HELPERS_H

#include "meshrt/mrt_balancer.h"

#include <check.h>
#include <stdint.h>

/* Check records every assertion it evaluates (I/O, allocation): hot loops test first. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MRT_OK)                                                                         \
            ck_assert_msg(0, "%s -> %d (%s)", #call, rc_, mrt_lb_strerror(rc_));                  \
    } while (0)

/* Node i's 32 bytes: distinct for every i, its index readable in bytes 0..3. */
static inline void node(uint8_t id[MRT_LB_NODE_ID_LEN], uint32_t i)
{
    id[0] = (uint8_t)(i >> 24);
    id[1] = (uint8_t)(i >> 16);
    id[2] = (uint8_t)(i >> 8);
    id[3] = (uint8_t)i;
    for (int k = 4; k < MRT_LB_NODE_ID_LEN; k++)
        id[k] = (uint8_t)(i * 31u + (uint32_t)k * 7u);
}

#endif
