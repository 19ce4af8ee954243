/*
 * Private helpers of daemons/: little-endian loads and stores, the sink's
 * output layout, the unchecked chain step and the inline horizon observe.
 */
#ifndef MESHRT_DAEMONS_INTERNAL_H
#define MESHRT_DAEMONS_INTERNAL_H

#include "meshrt/mrt_daemon.h"

#include <stdint.h>
#include <string.h>
/*
 * XXH3 inlined into daemons/: the horizon slot hash and the parent hash of
 * short frames run per event, and a library call per hash cost more than
 * the hash itself (the keyed slot hash: 6.5 ns called, about 4 ns inlined).
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

static inline void mrt_dm_store_le64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof v);
}

static inline uint64_t mrt_dm_load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void mrt_dm_store_le32(uint8_t *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, sizeof v);
}

static inline uint32_t mrt_dm_load_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline void mrt_dm_store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t mrt_dm_load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/*
 * Layout of one output in the sink (MRT_SINK_SLOT_HEADER bytes in front of
 * the payload): 4 bytes of padding, the frame's u32 total, the 32-byte link,
 * then the payload — so the payload is 8-byte aligned and, once stamped,
 * payload - MRT_FRAME_HEADER_SIZE is a complete wire frame and
 * payload - MRT_CAUSAL_LINK_SIZE starts link || payload.
 */
_Static_assert(MRT_SINK_SLOT_HEADER % 8 == 0, "payloads stay 8-byte aligned");

/*
 * The next link of a chain whose head is not at UINT64_MAX. At genesis
 * next_parent is 0 (set by init), so it is the parent in both cases.
 */
static inline mrt_causal_link mrt_dm_next_link(const mrt_causal_chain *c, uint64_t horizon)
{
    mrt_causal_link l;
    l.origin_hash = c->origin_hash;
    l.horizon_encoded = horizon;
    l.sequence = c->has_head ? c->head.sequence + 1 : 0;
    l.parent_hash = c->next_parent;
    return l;
}

/*
 * Home slot of an origin: XXH3-64 of its 8 LE bytes seeded with the
 * process's secret key. Origins arrive from the wire; an unkeyed (and
 * invertible) mix let a sender pick origins that all share one slot.
 */
static inline uint32_t mrt_dm_horizon_slot(const mrt_horizon *h, uint64_t origin)
{
    uint8_t b[8];
    mrt_dm_store_le64(b, origin);
    return (uint32_t)XXH3_64bits_withSeed(b, sizeof b, h->key) & h->mask;
}

/*
 * Walk origin's probe sequence (origin != 0): the slot holding it, or the
 * empty slot where it would go, or NULL when neither lies within
 * MRT_HORIZON_MAX_PROBE slots (inserts never place an origin further, so
 * NULL means "absent, and no room near home"). The one walk every lookup,
 * insert and observe makes; *probes (if not NULL) gets the slots examined.
 */
static inline mrt_horizon_slot *mrt_dm_horizon_probe_n(const mrt_horizon *h, uint64_t origin,
                                                       uint32_t *probes)
{
    uint32_t i = mrt_dm_horizon_slot(h, origin);
    for (uint32_t n = 1; n <= MRT_HORIZON_MAX_PROBE; n++) {
        mrt_horizon_slot *s = &h->slots[i];
        if (s->origin == origin || s->origin == 0) {
            if (probes != NULL)
                *probes = n;
            return s;
        }
        i = (i + 1) & h->mask;
    }
    if (probes != NULL)
        *probes = MRT_HORIZON_MAX_PROBE;
    return NULL;
}

static inline mrt_horizon_slot *mrt_dm_horizon_probe(const mrt_horizon *h, uint64_t origin)
{
    return mrt_dm_horizon_probe_n(h, origin, NULL);
}

#endif
