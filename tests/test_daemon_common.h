/* Shared by the daemon tests: the snapshot and restore of a state that begins with one uint64_t counter. */
#ifndef MESHRT_TESTS_TEST_DAEMON_COMMON_H
#define MESHRT_TESTS_TEST_DAEMON_COMMON_H

#include "meshrt/mrt_daemon.h"

#include <string.h>

/* Writes the counter (8 bytes); MRT_DAEMON_ENOSPACE with *len = 8 when buf cannot hold it. */
static inline int test_counter_snapshot(const void *st, void *buf, size_t cap, size_t *len)
{
    *len = 8;
    if (buf == NULL || cap < 8)
        return MRT_DAEMON_ENOSPACE;
    memcpy(buf, st, 8);
    return MRT_OK;
}

/* Reads the counter back; MRT_DAEMON_EBADSTATE unless exactly 8 bytes. */
static inline int test_counter_restore(void *st, const void *buf, size_t len)
{
    if (len != 8)
        return MRT_DAEMON_EBADSTATE;
    memcpy(st, buf, 8);
    return MRT_OK;
}

#endif
