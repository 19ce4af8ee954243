/* Observed horizon: bounded open-addressing map origin -> highest sequence, cached bloom. */
#include "daemons/daemon_internal.h"

#include <xxhash.h>

/*
 * Origins are usually XXH3 outputs already, but they arrive from the wire,
 * so they are mixed (mrt_dm_horizon_slot); probe lengths stay bounded
 * regardless because the table is at most half full. Every walk of the
 * table is mrt_dm_horizon_probe.
 */

static inline void tick(mrt_horizon *h)
{
    h->logical_time += (h->logical_time != UINT64_MAX);
}

uint64_t mrt_horizon_origin_bits(uint64_t origin)
{
    uint8_t b[8];
    mrt_dm_store_le64(b, origin);
    uint64_t x = XXH3_64bits(b, sizeof b);
    uint32_t h1 = (uint32_t)x;
    uint32_t h2 = (uint32_t)(x >> 32) | 1u;
    /* 64 divides 2^32, so wrapping u32 arithmetic gives the same residues mod 64. */
    return (1ull << (h1 & 63u)) | (1ull << ((h1 + h2) & 63u)) | (1ull << ((h1 + 2u * h2) & 63u));
}

bool mrt_horizon_encoding_may_contain(uint64_t encoded, uint64_t origin)
{
    uint64_t bits = mrt_horizon_origin_bits(origin);
    return (encoded & bits) == bits;
}

bool mrt_horizon_potentially_concurrent(uint64_t a, uint64_t b)
{
    return (a & ~b) != 0 && (b & ~a) != 0;
}

int mrt_horizon_init(mrt_horizon *h, const mrt_allocator *alloc, uint32_t max_origins)
{
    if (h == NULL || max_origins == 0 || max_origins > MRT_HORIZON_MAX_ORIGINS)
        return MRT_EINVAL;
    memset(h, 0, sizeof *h);
    h->alloc = mrt_allocator_or_default(alloc);
    uint32_t size = 2;
    while (size < 2u * max_origins)
        size <<= 1;
    h->slots = mrt_calloc(&h->alloc, (size_t)size * sizeof *h->slots);
    if (h->slots == NULL)
        return MRT_ENOMEM;
    h->mask = size - 1;
    h->max_origins = max_origins;
    return MRT_OK;
}

void mrt_horizon_destroy(mrt_horizon *h)
{
    if (h == NULL || h->slots == NULL)
        return;
    mrt_free(&h->alloc, h->slots, ((size_t)h->mask + 1) * sizeof *h->slots);
    h->slots = NULL;
    h->count = 0;
}

void mrt_horizon_clear(mrt_horizon *h)
{
    memset(h->slots, 0, ((size_t)h->mask + 1) * sizeof *h->slots);
    h->count = 0;
    h->has_zero = false;
    h->zero_seq = 0;
    h->logical_time = 0;
    h->encoded = 0;
}

/* The slot holding origin (!= 0), or NULL. */
static mrt_horizon_slot *find(const mrt_horizon *h, uint64_t origin)
{
    mrt_horizon_slot *s = mrt_dm_horizon_probe(h, origin);
    return s->origin != 0 ? s : NULL;
}

/* Put a new origin into its empty slot s (capacity checked by the caller). */
static void claim(mrt_horizon *h, mrt_horizon_slot *s, uint64_t origin, uint64_t seq)
{
    s->origin = origin;
    s->seq = seq;
    h->count++;
    h->encoded |= mrt_horizon_origin_bits(origin);
}

/* Raise origin's sequence to at least seq, inserting it when new (capacity checked by the caller). */
static void upsert(mrt_horizon *h, uint64_t origin, uint64_t seq)
{
    if (origin == 0) {
        if (!h->has_zero) {
            h->has_zero = true;
            h->zero_seq = seq;
            h->count++;
            h->encoded |= mrt_horizon_origin_bits(0);
        } else if (seq > h->zero_seq) {
            h->zero_seq = seq;
        }
        return;
    }
    mrt_horizon_slot *s = mrt_dm_horizon_probe(h, origin);
    if (s->origin == 0)
        claim(h, s, origin, seq);
    else if (seq > s->seq)
        s->seq = seq;
}

int mrt_horizon_observe(mrt_horizon *h, uint64_t origin, uint64_t seq)
{
    if (origin != 0) {
        /* Hot path: a known origin costs one probe sequence and no hashing. */
        mrt_horizon_slot *s = mrt_dm_horizon_probe(h, origin);
        if (s->origin == origin) {
            if (seq > s->seq)
                s->seq = seq;
        } else {
            if (h->count >= h->max_origins)
                return MRT_DAEMON_EHORIZONFULL;
            claim(h, s, origin, seq);
        }
        tick(h);
        return MRT_OK;
    }
    if (!h->has_zero && h->count >= h->max_origins)
        return MRT_DAEMON_EHORIZONFULL;
    upsert(h, 0, seq);
    tick(h);
    return MRT_OK;
}

bool mrt_horizon_highest(const mrt_horizon *h, uint64_t origin, uint64_t *seq)
{
    uint64_t v;
    if (origin == 0) {
        if (!h->has_zero)
            return false;
        v = h->zero_seq;
    } else {
        const mrt_horizon_slot *s = find(h, origin);
        if (s == NULL)
            return false;
        v = s->seq;
    }
    if (seq != NULL)
        *seq = v;
    return true;
}

bool mrt_horizon_has_observed(const mrt_horizon *h, uint64_t origin, uint64_t seq)
{
    uint64_t hi;
    return mrt_horizon_highest(h, origin, &hi) && hi >= seq;
}

bool mrt_horizon_contains_origin(const mrt_horizon *h, uint64_t origin)
{
    return mrt_horizon_highest(h, origin, NULL);
}

uint32_t mrt_horizon_count(const mrt_horizon *h)
{
    return h->count;
}

uint64_t mrt_horizon_logical_time(const mrt_horizon *h)
{
    return h->logical_time;
}

uint64_t mrt_horizon_encoded(const mrt_horizon *h)
{
    return h->encoded;
}

int mrt_horizon_foreach(const mrt_horizon *h, int (*fn)(void *ctx, uint64_t origin, uint64_t seq),
                        void *ctx)
{
    if (h->has_zero) {
        int rc = fn(ctx, 0, h->zero_seq);
        if (rc != 0)
            return rc;
    }
    for (uint32_t i = 0; i <= h->mask; i++) {
        const mrt_horizon_slot *s = &h->slots[i];
        if (s->origin != 0) {
            int rc = fn(ctx, s->origin, s->seq);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int mrt_horizon_merge(mrt_horizon *dst, const mrt_horizon *src)
{
    if (dst == NULL || src == NULL)
        return MRT_EINVAL;
    if (dst == src)
        return MRT_OK;
    /* Count first so that a merge that does not fit changes nothing. */
    uint32_t fresh = 0;
    if (src->has_zero && !dst->has_zero)
        fresh++;
    for (uint32_t i = 0; i <= src->mask; i++) {
        uint64_t o = src->slots[i].origin;
        if (o != 0 && find(dst, o) == NULL)
            fresh++;
    }
    if ((uint64_t)dst->count + fresh > dst->max_origins)
        return MRT_DAEMON_EHORIZONFULL;
    if (src->has_zero)
        upsert(dst, 0, src->zero_seq);
    for (uint32_t i = 0; i <= src->mask; i++) {
        const mrt_horizon_slot *s = &src->slots[i];
        if (s->origin != 0)
            upsert(dst, s->origin, s->seq);
    }
    if (src->logical_time > dst->logical_time)
        dst->logical_time = src->logical_time;
    return MRT_OK;
}
