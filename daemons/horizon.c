/* Observed horizon: bounded open-addressing map origin -> highest sequence, cached bloom. */
#include "daemons/daemon_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <xxhash.h>

/*
 * Origins arrive from the wire, so their slots come from a keyed hash
 * (mrt_dm_horizon_slot) and every walk is bounded (mrt_dm_horizon_probe_n).
 * The key is drawn once per process: every horizon of the process shares it,
 * so nothing about it is visible to a sender except through timing.
 */
static _Atomic uint64_t process_key; /* 0: not drawn yet */

static int horizon_key(uint64_t *out)
{
    uint64_t k = atomic_load_explicit(&process_key, memory_order_acquire);
    while (k == 0) {
        ssize_t n = getrandom(&k, sizeof k, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof k)
            return MRT_ENOSYS; /* no kernel entropy: refuse rather than run unkeyed */
        uint64_t none = 0;
        if (k != 0 && !atomic_compare_exchange_strong(&process_key, &none, k))
            k = none; /* another thread drew first: everyone uses its key */
    }
    *out = k;
    return MRT_OK;
}

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
    int rc = horizon_key(&h->key);
    if (rc != MRT_OK)
        return rc;
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
    return s != NULL && s->origin != 0 ? s : NULL;
}

/* Put a new origin into its empty slot s (capacity checked by the caller). */
static void claim(mrt_horizon *h, mrt_horizon_slot *s, uint64_t origin, uint64_t seq)
{
    s->origin = origin;
    s->seq = seq;
    h->count++;
    h->encoded |= mrt_horizon_origin_bits(origin);
}

/* Origin 0 lives aside (0 marks an empty slot). */
static void observe_zero(mrt_horizon *h, uint64_t seq)
{
    if (!h->has_zero) {
        h->has_zero = true;
        h->zero_seq = seq;
        h->count++;
        h->encoded |= mrt_horizon_origin_bits(0);
    } else if (seq > h->zero_seq) {
        h->zero_seq = seq;
    }
}

int mrt_horizon_observe(mrt_horizon *h, uint64_t origin, uint64_t seq)
{
    if (origin != 0) {
        /* Hot path: a known origin costs one probe sequence and no hashing. */
        mrt_horizon_slot *s = mrt_dm_horizon_probe(h, origin);
        if (s != NULL && s->origin == origin) {
            if (seq > s->seq)
                s->seq = seq;
        } else {
            if (h->count >= h->max_origins)
                return MRT_DAEMON_EHORIZONFULL;
            if (s == NULL)
                return MRT_DAEMON_EHORIZONPROBE;
            claim(h, s, origin, seq);
        }
        tick(h);
        return MRT_OK;
    }
    if (!h->has_zero && h->count >= h->max_origins)
        return MRT_DAEMON_EHORIZONFULL;
    observe_zero(h, seq);
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
    for (uint32_t i = 0; i <= src->mask; i++) {
        uint64_t o = src->slots[i].origin;
        if (o != 0 && find(dst, o) == NULL)
            fresh++;
    }
    uint32_t fresh_zero = src->has_zero && !dst->has_zero;
    if ((uint64_t)dst->count + fresh + fresh_zero > dst->max_origins)
        return MRT_DAEMON_EHORIZONFULL;
    /*
     * Insert the new origins, remembering their slots: an insert writes only
     * its own slot, so emptying those slots undoes the inserts exactly if one
     * of them meets the probe bound.
     */
    uint32_t *placed = NULL;
    if (fresh > 0) {
        placed = mrt_alloc(&dst->alloc, (size_t)fresh * sizeof *placed);
        if (placed == NULL)
            return MRT_ENOMEM;
    }
    const uint32_t count0 = dst->count;
    const uint64_t encoded0 = dst->encoded;
    uint32_t n = 0;
    for (uint32_t i = 0; i <= src->mask && n < fresh; i++) {
        uint64_t o = src->slots[i].origin;
        if (o == 0)
            continue;
        mrt_horizon_slot *s = mrt_dm_horizon_probe(dst, o);
        if (s == NULL) {
            while (n > 0)
                memset(&dst->slots[placed[--n]], 0, sizeof(mrt_horizon_slot));
            dst->count = count0;
            dst->encoded = encoded0;
            mrt_free(&dst->alloc, placed, (size_t)fresh * sizeof *placed);
            return MRT_DAEMON_EHORIZONPROBE;
        }
        if (s->origin == 0) {
            claim(dst, s, o, src->slots[i].seq);
            placed[n++] = (uint32_t)(s - dst->slots);
        }
    }
    mrt_free(&dst->alloc, placed, (size_t)fresh * sizeof *placed);
    /* Every origin of src is in dst now: raise the sequences. */
    for (uint32_t i = 0; i <= src->mask; i++) {
        const mrt_horizon_slot *s = &src->slots[i];
        if (s->origin != 0) {
            mrt_horizon_slot *d = find(dst, s->origin);
            if (s->seq > d->seq)
                d->seq = s->seq;
        }
    }
    if (src->has_zero)
        observe_zero(dst, src->zero_seq);
    if (src->logical_time > dst->logical_time)
        dst->logical_time = src->logical_time;
    return MRT_OK;
}
