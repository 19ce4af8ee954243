/*
 * Private helpers of daemons/: little-endian loads and stores, and the
 * unchecked chain step the host uses once it has checked for overflow.
 */
#ifndef MESHRT_DAEMONS_INTERNAL_H
#define MESHRT_DAEMONS_INTERNAL_H

#include "meshrt/mrt_daemon.h"

#include <stdint.h>
#include <string.h>

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
 * Stamp the next link and advance; the caller has ruled out sequence
 * overflow. At genesis next_parent is 0 (set by init), so it is the parent
 * in both cases.
 */
static inline void mrt_dm_chain_step(mrt_causal_chain *c, uint64_t horizon, const void *payload,
                                     size_t len, mrt_causal_link *out)
{
    mrt_causal_link l;
    l.origin_hash = c->origin_hash;
    l.horizon_encoded = horizon;
    l.sequence = c->has_head ? c->head.sequence + 1 : 0;
    l.parent_hash = c->next_parent;
    c->next_parent = mrt_causal_parent_hash(&l, payload, len);
    c->head = l;
    c->has_head = true;
    *out = l;
}

#endif
