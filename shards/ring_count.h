/* A ring's occupancy read safely from any thread (shards, services, compute). */
#ifndef MESHRT_SHARDS_RING_COUNT_H
#define MESHRT_SHARDS_RING_COUNT_H

#include <rte_ring.h>

/*
 * Elements in a ring another thread may be producing into or consuming
 * from. rte_ring_count reads both tails with plain loads while the other
 * side stores them atomically: a data race (ThreadSanitizer reports it
 * against the producer's tail store). Atomic loads instead; the consumer's
 * tail first, so the difference is never negative, clamped to the capacity
 * (the ring may have turned over between the two loads). A moment's value.
 */
static inline unsigned mrt_ring_entries(const struct rte_ring *r)
{
    uint32_t cons = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
    uint32_t prod = __atomic_load_n(&r->prod.tail, __ATOMIC_ACQUIRE);
    uint32_t n = (prod - cons) & r->mask;
    return n > r->capacity ? r->capacity : n;
}

#endif
