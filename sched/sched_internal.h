/* The scheduler object: per-shard arrays (structure of arrays, so the placement pass streams). */
#ifndef MESHRT_SCHED_INTERNAL_H
#define MESHRT_SCHED_INTERNAL_H

#include "meshrt/mrt_sched.h"

enum {
    SHARD_DRAINED = 1u << 0,
    SHARD_FAILED = 1u << 1,
};
/* Scratch marks, set and cleared within one placement call. */
enum {
    MARK_EXCLUDED = 1u << 0,
    MARK_SEEN = 1u << 1,     /* a candidate already scored (mrt_sched_pick_from) */
};
enum { BUILTIN_NUMA = 0, BUILTIN_CORE = 1, BUILTIN_SHARD = 2 };

struct mrt_sched {
    mrt_allocator alloc;
    uint32_t n;
    double hosted_ref;
    unsigned ntags;
    char tag[MRT_SCHED_MAX_TAGS][MRT_SCHED_TAG_MAX + 1];
    /* per shard */
    uint64_t *tags;     /* user tag bits */
    uint32_t *numa;     /* MRT_SCHED_NONE: unknown */
    uint32_t *core;
    double *latency;    /* ns, 0 = not measured */
    double *free;       /* free capacity of the last load */
    double *headroom;   /* (1 - busy) x (1 - ring occupancy): free without the hosted term */
    uint32_t *hosted;
    uint8_t *state;     /* SHARD_* */
    /* scratch for one call */
    uint8_t *mark;      /* MARK_* */
    double *score;      /* per-shard score of a multi-member placement, NaN = not eligible */
    uint32_t *extra;    /* members this call put on the shard (best-effort overflow) */
};

/*
 * Parse a built-in tag: 1 with *kind and *value set, 0 when `name` has no
 * built-in prefix, MRT_SCHED_ENAME when it has one but no valid number.
 */
int sched_parse_builtin(const char *name, unsigned *kind, uint32_t *value);

/* Validate a tag name's characters and length: MRT_OK or MRT_SCHED_ENAME. */
int sched_check_name(const char *name);

#endif
