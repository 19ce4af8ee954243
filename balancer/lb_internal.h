/*
 * Private layout of the balancer: registry records, the compiled snapshot
 * and its pools, per-shard state. White-box tests include this header.
 */
#ifndef MESHRT_BALANCER_LB_INTERNAL_H
#define MESHRT_BALANCER_LB_INTERNAL_H

#include "meshrt/mrt_balancer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LB_NONE UINT32_MAX
#define LB_ZROW_NONE 0xFFFFu

/* ------------------------------------------------------------------ registry */

typedef struct lb_ep {
    uint8_t node_id[MRT_LB_NODE_ID_LEN];
    int64_t weight;
    int32_t priority;
    uint16_t zone;
    uint8_t health;
    bool enabled;
    bool live;
    uint32_t gen;
    uint64_t tags;
    mrt_lb_metrics metrics;
    double load_score;
    uint64_t tripped_until;
    uint64_t user_data;
} lb_ep;

struct mrt_lb_registry {
    mrt_allocator alloc;
    mrt_lb_config cfg;
    lb_ep *eps;             /* by stable id, [0, next_id) */
    uint32_t cap;           /* allocated records */
    uint32_t next_id;       /* id high-water mark */
    uint32_t count;         /* live endpoints */
    uint32_t *free_ids;     /* stack of removed ids (cap entries) */
    uint32_t nfree;
    uint32_t *index;        /* open addressing, linear probing: id + 1, 0 = empty */
    uint32_t index_cap;     /* power of two */
    char tag_names[MRT_LB_MAX_TAGS][MRT_LB_NAME_MAX + 1];
    uint32_t tag_refs[MRT_LB_MAX_TAGS];
    uint64_t tag_used;
    char zone_names[MRT_LB_MAX_ZONES][MRT_LB_NAME_MAX + 1];
    uint32_t nzones;
    uint64_t filter_masks[MRT_LB_MAX_FILTERS];
    uint32_t filter_refs[MRT_LB_MAX_FILTERS];
    uint32_t nfilters;
    uint64_t version;
};

int lb_validate_config(const mrt_lb_config *c);

/* ------------------------------------------------------------------ snapshot */

/* Hot per-slot record: what a select writes into the selection. */
typedef struct lb_slot {
    uint32_t id;
    uint32_t gen;
    uint64_t user;
} lb_slot;

/* One column of a Vose alias table: keep `self` when the coin is below thr, else `other`. */
typedef struct lb_alias {
    uint32_t thr;
    uint32_t self;          /* slot */
    uint32_t other;         /* slot */
} lb_alias;

/*
 * A consistent-hash ring point and its slot, packed so a lookup touches one
 * cache line. The directory already fixes a point's top dir_bits bits, so
 * an entry keeps the 32 bits below them: points are compared on their top
 * dir_bits + 32 bits (>= 40), and a key equal to a point in all of those
 * counts as at or before it.
 */
typedef struct lb_rent {
    uint32_t mid;
    uint32_t slot;
} lb_rent;

/* The 32 bits of a point (or key hash) below a directory of `bits` bits. */
static inline uint32_t lb_ring_mid(uint64_t h, uint32_t bits)
{
    return (uint32_t)((h << bits) >> 32);
}

/* Entries a bucket is scanned over without branches; rings are padded by this many. */
#ifndef LB_RING_WINDOW
#define LB_RING_WINDOW 8
#endif
#ifndef LB_RING_PER_BUCKET
#define LB_RING_PER_BUCKET 4 /* average points per directory bucket */
#endif

#define LB_POOL_TREE 0x1u
#define LB_POOL_ALL 0x2u        /* members are every slot: members[i] == i */

/*
 * A pool: the available endpoints of one (zone row, filter column) pair,
 * with every structure its strategy needs. All slot-valued arrays hold
 * snapshot slot indices so a pick is one load away from the slot record.
 */
typedef struct lb_pool {
    uint32_t n;                 /* members */
    uint32_t flags;
    const uint32_t *members;    /* slots, ascending */
    const lb_alias *alias;      /* weighted random: n columns */
    uint32_t wrr_len;           /* smooth-WRR period */
    const uint32_t *wrr_seq;    /* slots, one period */
    uint32_t ring_n;            /* consistent hash: points */
    uint32_t dir_bits;          /* ring directory: 2^dir_bits buckets of the hash's top bits */
    const lb_rent *ring;        /* ascending points, each with its slot */
    const uint32_t *ring_dir;   /* 2^dir_bits + 1: first ring index of each bucket */
    uint32_t mag_m;             /* Maglev table size (prime) */
    const uint32_t *mag_slot;
    double mean_load;
    uint32_t tree_base;         /* per-shard tree node offset, LB_NONE without a tree */
    uint32_t tree_leaves;       /* power of two >= n */
} lb_pool;

#define LB_MAGIC 0x6d72746c62736e70ull

struct mrt_lb_snapshot {
    uint64_t magic;
    mrt_allocator alloc;
    size_t bytes;
    uint64_t version;
    mrt_lb_config cfg;
    uint32_t registered;        /* endpoints in the registry at compile time */
    uint32_t n;                 /* slots */
    uint32_t id_cap;            /* registry id space at compile time */
    uint32_t nrows;             /* 1 (all zones) + zones with an available endpoint */
    uint32_t ncols;             /* 1 (no filter) + declared filters */
    uint32_t npools;            /* nrows * ncols */
    uint32_t tree_nodes;        /* per-shard tree nodes over all pools */
    bool wrr_quantized;
    const lb_slot *slots;
    const uint8_t *node_ids;    /* n x 32 */
    const uint32_t *weights;    /* effective, half units */
    const double *load;
    const uint64_t *tags;
    const uint16_t *zones;
    const uint32_t *id_to_slot; /* id_cap entries, LB_NONE when absent */
    const uint16_t *zone_row;   /* MRT_LB_MAX_ZONES entries: zone id -> row, LB_ZROW_NONE */
    const uint64_t *filter_masks; /* ncols - 1, ascending */
    const lb_pool *pools;
    /* tree membership: for slot s, entries [mem_off[s], mem_off[s+1]) */
    const uint32_t *mem_off;
    const uint32_t *mem_pool;
    const uint32_t *mem_idx;
    /*
     * Process-unique, given by the first publish (0: never published) and
     * never reused, unlike the address: what sync compares to decide whether
     * a shard already holds the current snapshot. Written before the
     * publishing exchange, so every reader that loads the pointer sees it.
     */
    uint64_t publish_id;
    /* writer-private retire bookkeeping (mrt_lb_domain) */
    uint64_t retire_epoch;
    struct mrt_lb_snapshot *retire_next;
};

/* ------------------------------------------------------------------ shard */

enum { LB_BRK_CLOSED = 0, LB_BRK_HALF = 1, LB_BRK_OPEN = 2, LB_BRK_PROBING = 3 };

/* What a select reads about an endpoint on this shard. */
typedef struct lb_live {
    uint32_t inflight;
    uint8_t brk;
    uint8_t pad[3];
} lb_live;

/*
 * The rest of an endpoint's shard state, by stable id. `parked` holds the
 * live part while the endpoint is not in the adopted snapshot (tripped,
 * unhealthy, removed); otherwise it lives in mrt_lb_shard.live by slot.
 */
typedef struct lb_cold {
    uint32_t gen;
    uint32_t fails;
    uint32_t probe_epoch;
    uint8_t in_list;
    uint8_t pad[3];
    lb_live parked;
    uint64_t opened_at;
    uint64_t probe_at;
    double ewma;
} lb_cold;

typedef struct lb_tnode {
    double key;
    uint32_t idx;           /* member index in the pool */
    uint32_t pad;
} lb_tnode;

#define LB_REPORTS 64

typedef int lb_select_fn(const mrt_lb_snapshot *S, mrt_lb_shard *sh, const mrt_lb_request *rq,
                         uint64_t now_ns, mrt_lb_selection *out);

struct mrt_lb_shard {
    /* The adopted snapshot while it is guaranteed alive; NULL while detached. */
    const mrt_lb_snapshot *snap;
    uint64_t snap_id;           /* publish_id of the adopted snapshot, kept while detached */
    lb_select_fn *select;       /* the adopted strategy's select instance; NULL before any adopt */
    mrt_allocator alloc;
    uint64_t rng;
    uint32_t maxc;              /* max_connections, UINT32_MAX when unlimited */
    uint32_t nslots;            /* slots of the adopted snapshot */
    lb_live *live;              /* by slot of the adopted snapshot */
    uint32_t *slot_id;          /* by slot: its endpoint id (private copy) */
    uint32_t slots_cap;
    uint32_t cap;               /* per-id arrays */
    lb_cold *cold;              /* by id */
    uint32_t *id_slot;          /* by id: slot in the adopted snapshot, LB_NONE */
    uint32_t *tripped;          /* ids whose breaker is OPEN or PROBING (cap entries) */
    uint32_t ntripped;
    uint64_t next_wake;         /* earliest breaker deadline among tripped */
    uint64_t recovery_ns;       /* from the adopted snapshot's config */
    uint32_t breaker_threshold;
    double latency_alpha;
    uint32_t npools_cap;
    uint32_t *rr;               /* per pool */
    uint32_t *wrr;              /* per pool */
    uint8_t *tree_on;           /* per pool: its tree is built and maintained */
    uint32_t tree_cap;
    lb_tnode *tree;
    mrt_lb_breaker_report reports[LB_REPORTS];
    uint32_t rep_head, rep_count;
    mrt_lb_shard_stats st;
};

/*
 * The domain's reader went offline: the adopted snapshot may be freed from
 * now on, so drop the pointer (selects get MRT_LB_ENOTADOPTED) and the trees
 * (completes no longer maintain them). Per-endpoint state stays: completes
 * still release reservations and feed breakers.
 */
void lb_shard_detach(mrt_lb_shard *sh);
/* Back online and `s` (alive) is the snapshot the shard adopted last (same publish_id). */
void lb_shard_reattach(mrt_lb_shard *sh, const mrt_lb_snapshot *s);

/* The select instance of a strategy (select.c; shard.c's adopt installs it). */
lb_select_fn *lb_select_for(mrt_lb_strategy st);
/* breaker.c: open id's breaker (counted, reported), track a deadline, apply those due by now. */
void lb_open_breaker(mrt_lb_shard *sh, lb_live *l, uint32_t id, uint64_t now);
void lb_add_tripped(mrt_lb_shard *sh, uint32_t id, uint64_t deadline);
void lb_breaker_wake(mrt_lb_shard *sh, uint64_t now);

static inline uint64_t lb_sat_add(uint64_t a, uint64_t b)
{
    uint64_t s = a + b;
    return s < a ? UINT64_MAX : s;
}

/* An endpoint's live state: by slot while it is in the adopted snapshot, else parked by id. */
static inline lb_live *lb_live_of(mrt_lb_shard *sh, uint32_t id)
{
    uint32_t s = sh->id_slot[id];
    return s != LB_NONE ? &sh->live[s] : &sh->cold[id].parked;
}

/* wyrand: one 64x64->128 multiply per step; seeded once per shard. */
static inline uint64_t lb_rand(uint64_t *s)
{
    __extension__ typedef unsigned __int128 u128;
    *s += 0xa0761d6478bd642full;
    u128 t = (u128)*s * (*s ^ 0xe7037ed1a0b428dbull);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* floor(x * n / 2^64): maps a uniform 64-bit value onto [0, n) without division. */
static inline uint32_t lb_reduce(uint64_t x, uint32_t n)
{
    __extension__ typedef unsigned __int128 u128;
    return (uint32_t)(((u128)x * n) >> 64);
}

/* Consistent-hash ring point of replica `v` of a node: XXH3(node id || v as LE u32). */
uint64_t lb_ring_point(const uint8_t node_id[MRT_LB_NODE_ID_LEN], uint32_t v);
/* Hash of a request's key (XXH3-64). */
uint64_t lb_key_hash(const void *key, size_t len);

bool lb_is_prime(uint32_t m);

#endif
