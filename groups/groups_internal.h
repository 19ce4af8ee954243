/*
 * Private layout of the daemon groups (the groups sources, white-box tests, the
 * bench). Group kinds (replica.c here; fork.c and standby.c beside it) plug
 * into the coordinator through grp_kind: the coordinator owns member
 * tables, publication, routing, completions and the recovery registry; a
 * kind owns how its slots are spawned, routed (select among the up members,
 * or one active member) and recovered.
 */
#ifndef MESHRT_GROUPS_GROUPS_INTERNAL_H
#define MESHRT_GROUPS_GROUPS_INTERNAL_H

#include "meshrt/mrt_groups.h"

#include <stdalign.h>
#include <stdatomic.h>

/* ---- the routing table: one snapshot for all groups ---------------------- */

enum { GRP_SLOT_EMPTY = 0, GRP_SLOT_UP = 1, GRP_SLOT_DOWN = 2 };

/* How a group's events pick a member. */
enum {
    GRP_ROUTE_SELECT = 0,  /* the strategy over the up members (replica) */
    GRP_ROUTE_ACTIVE = 1,  /* the single active member (standby; fork addressing) */
};

#define GRP_HASH_SLOTS 512u  /* id -> index map: at most half full with 255 members */
#define GRP_JUMP_BITS 10u    /* hash strategy: 1024 key buckets, each mapped by jump hash */

typedef struct grp_slot {
    uint64_t id;           /* the member daemon's id */
    uint32_t term;         /* its incarnation: events carry it (fencing) */
    uint16_t shard;
    uint8_t state;         /* GRP_SLOT_* */
    uint8_t pad;
} grp_slot;

/* One group in the table (gen 0: no group here). */
typedef struct grp_gtab {
    uint32_t gen;          /* the group's generation: a reused table index never matches */
    uint32_t max_conn;
    uint8_t route;         /* GRP_ROUTE_* */
    uint8_t strategy;      /* mrt_group_strategy */
    uint8_t active;        /* GRP_ROUTE_ACTIVE: the member routed to */
    uint8_t nup;           /* members in up[] */
    uint16_t nslots;       /* slots 0..nslots-1 in use */
    uint16_t pad;
    uint8_t up[MRT_GROUP_MAX_MEMBERS + 1]; /* dense list of routable indices */
    uint16_t hidx[GRP_HASH_SLOTS];         /* id -> index + 1 (0: empty), linear probing */
    uint8_t jump[1u << GRP_JUMP_BITS];     /* key bucket -> slot: jump hash over nslots */
    grp_slot s[MRT_GROUP_MAX_MEMBERS];
} grp_gtab;

typedef struct grp_table {
    uint64_t epoch;
    struct grp_table *next; /* retired / free lists (control thread) */
    uint64_t retired_at;    /* the epoch that replaced it */
    grp_gtab g[MRT_GROUPS_MAX];
} grp_table;

static inline uint32_t grp_hash_home(uint64_t id)
{
    return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 55); /* 9 bits: GRP_HASH_SLOTS */
}

/* Index of member `id` in gt, -1 when absent: O(1), at most half full. */
static inline int grp_gtab_find(const grp_gtab *gt, uint64_t id)
{
    for (uint32_t h = grp_hash_home(id);; h = (h + 1) & (GRP_HASH_SLOTS - 1)) {
        uint16_t v = gt->hidx[h];
        if (v == 0)
            return -1;
        if (gt->s[v - 1].id == id)
            return v - 1;
    }
}

/* Jump consistent hash (Lamping & Veach): key -> bucket in [0, n), 1/n of keys move per grow. */
static inline uint32_t grp_jump_hash(uint64_t key, uint32_t n)
{
    int64_t b = -1, j = 0;
    while (j < (int64_t)n) {
        b = j;
        key = key * 2862933555777941757ull + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1ull << 31) / (double)((key >> 33) + 1)));
    }
    return (uint32_t)b;
}

/* A key's bucket in grp_gtab.jump (the key mixed first: callers' keys may be sequential). */
static inline uint32_t grp_key_bucket(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (uint32_t)(key >> (64 - GRP_JUMP_BITS));
}

/* Rebuild up[], hidx[] and jump[] from s[] (control thread, before publishing). */
void grp_gtab_index(grp_gtab *gt);

/* ---- the envelope in front of every routed payload ----------------------- */

#define GRP_MAGIC 0x6d67u
typedef struct grp_env {
    uint16_t magic;
    uint16_t gid;          /* table index */
    uint16_t sel;          /* selecting shard, MRT_SRC_EXTERNAL for injection */
    uint8_t idx;           /* member index */
    uint8_t pad;
    uint32_t term;         /* the slot's term at selection */
    uint32_t gen;          /* the group's generation */
} grp_env;
_Static_assert(sizeof(grp_env) == MRT_GROUPS_ENVELOPE, "envelope size");

/* ---- per shard --------------------------------------------------------- */

/* A reservation count toward one member slot, with the term it counts for. */
typedef struct grp_res {
    _Atomic uint32_t out;  /* written by the owner shard only; read by the control thread */
    _Atomic uint32_t term;
} grp_res;

typedef struct grp_member grp_member;

typedef struct grp_orphan {
    uint16_t sel, gid;
    uint8_t idx;
    uint32_t term, count;
} grp_orphan;

#define GRP_ORPHANS 1024u

typedef struct grp_shard {
    mrt_groups *g;
    mrt_svc_shard *ss;
    unsigned id, n;
    const mrt_allocator *a;
    const grp_table *tab;         /* adopted at the poll boundary */
    uint32_t rr[MRT_GROUPS_MAX];  /* round-robin cursors */
    grp_res res[MRT_GROUPS_MAX][MRT_GROUP_MAX_MEMBERS];
    grp_member *dirty;            /* members with completions to send */
    grp_orphan orphans[GRP_ORPHANS]; /* completions of members stopped before flushing */
    uint32_t norphans;
    uint8_t *scratch;             /* envelope + payload for sends */
    size_t scratch_len;
    struct grp_ctr *ctr;          /* this shard's counters (the coordinator's memory) */
} grp_shard;

/* Counters of one shard: owner-written, relaxed; they outlive the shard's part. */
typedef struct grp_ctr {
    alignas(64) _Atomic uint64_t routed, refused, completed, stale, late, dropped;
} grp_ctr;

/* Owner-only increment of a published counter (a plain add on the shard). */
static inline void grp_inc(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* A member daemon's state on its shard: the wrapper around the user's daemon. */
struct grp_member {
    void *user;
    const struct grp_type *type;
    grp_shard *gs;
    uint16_t gid;
    uint8_t idx;
    uint32_t term, gen;
    uint32_t fails;               /* consecutive failed events */
    uint32_t *done;               /* per selecting shard: completions not yet sent */
    uint16_t shard, nshards;      /* where it lives; done[]'s length */
    uint64_t dmask[(MRT_MAX_SHARDS + 63) / 64];
    grp_member *next_dirty;
    bool listed;
    /* Standby groups (standby.c): */
    bool replaying;               /* promotion replay: plain events, no envelope, no completion */
    void (*on_accept)(void *ctx, const mrt_event *ev); /* after the user daemon accepted ev */
    void *accept_ctx;
};

/* What the spawn argument of a member carries in front of the user's. */
typedef struct grp_spawn_hdr {
    uint16_t magic;
    uint16_t gid;
    uint16_t shard;
    uint8_t idx;
    uint8_t pad;
    uint32_t term, gen;
} grp_spawn_hdr;
_Static_assert(sizeof(grp_spawn_hdr) == 16, "spawn header");

typedef struct grp_type {
    mrt_groups *g;
    mrt_compute_type user;
    char name[64];
    uint16_t cp_type;             /* the wrapping compute type */
} grp_type;

/* ---- group kinds ----------------------------------------------------------- */

typedef struct grp_kind {
    const char *name;
    uint8_t route;                                  /* GRP_ROUTE_* */
    /* Recover at most max slots: #recovered or a negative status (control). */
    int (*recover)(mrt_group *grp, uint32_t max);
    /* Free the kind's state (control; members already stopped). May be NULL. */
    void (*fini)(mrt_group *grp);
    /*
     * On the member's shard, after its user daemon accepted a routed event
     * (envelope stripped): the standby group buffers it for replay. NULL: none.
     */
    void (*on_accept)(void *kind_state, const mrt_event *ev);
} grp_kind;

/* Control-side member slot: what the coordinator keeps beyond the table. */
typedef struct grp_mslot {
    mrt_causal_chain chain;       /* the chain of the identity's last incarnation */
    bool used;                    /* an incarnation existed (identity re-used on re-grow) */
    bool keyed;                   /* key holds the slot's identity */
    uint8_t key[MRT_HOST_KEY_SIZE];
} grp_mslot;

struct mrt_group {
    mrt_groups *g;
    const grp_kind *kind;
    void *kind_state;
    uint16_t gid;
    uint32_t gen;
    uint32_t term;
    uint16_t type;                /* groups type */
    uint32_t n;                   /* members */
    uint64_t seed;
    mrt_sched_filter filter;
    bool has_filter;
    mrt_sched_spread spread;
    uint32_t *exclude;
    uint32_t nexclude;
    uint8_t arg[MRT_GROUPS_MAX_ARG];
    size_t arg_len;
    mrt_compute_sink_kind sub_kind[MRT_COMPUTE_MAX_SUBS];
    mrt_compute_ref sub_target[MRT_COMPUTE_MAX_SUBS];
    unsigned nsubs;
    uint64_t respawns;
    grp_mslot ms[MRT_GROUP_MAX_MEMBERS];
    const char *label;            /* identity domain label of the kind */
    _Atomic uint64_t ext_rr;      /* injection round robin */
    bool destroyed;
};

/* ---- the coordinator ------------------------------------------------------ */

struct mrt_groups {
    mrt_runtime *rt;
    mrt_compute *c;
    mrt_svc *svc;
    unsigned n;                   /* shards */
    mrt_groups_config cfg;
    uint16_t sub_id;              /* services subsystem */
    uint16_t t_done;              /* completion message type */
    grp_type types[MRT_GROUPS_MAX_TYPES];
    unsigned ntypes;
    /* Groups by table index; generations (control thread). */
    mrt_group *groups[MRT_GROUPS_MAX];
    uint32_t next_gen;
    /* Publication. */
    grp_table *master;            /* the control thread's working copy */
    _Atomic(grp_table *) pub;
    uint64_t epoch;
    grp_table *retired, *free;
    _Atomic uint64_t *seen;       /* per shard: the epoch it adopted (UINT64_MAX: offline) */
    _Atomic(grp_shard *) *shards;
    grp_ctr *ctr;                 /* per shard */
    _Atomic uint64_t left[MRT_GROUPS_MAX]; /* reservations a finished shard still held, per group */
    _Atomic uint64_t ext_phase;   /* injecting threads: two-phase reader counts */
    _Atomic uint64_t ext_cnt[2];
    /* Injection reservations: (term << 32) | count per slot. */
    _Atomic uint64_t ext_out[MRT_GROUPS_MAX][MRT_GROUP_MAX_MEMBERS];
    _Atomic uint64_t ext_routed, ext_refused, ext_completed, ext_late;
    /* Marked unhealthy: the term of the incarnation marked, 0 = none (shards write). */
    _Atomic uint32_t unhealthy[MRT_GROUPS_MAX][MRT_GROUP_MAX_MEMBERS];
    /* Recovery registry. */
    struct {
        mrt_groups_recover_fn fn;
        void *ctx;
        bool evicted;
    } h[MRT_GROUPS_MAX_HANDLERS];
    unsigned nh;
    uint64_t respawns;
};

/* coord.c */
int grp_publish(mrt_groups *g);             /* master -> a new snapshot */
void grp_reclaim(mrt_groups *g);            /* free what every reader left */
int grp_wait_adopted(mrt_groups *g);        /* every running shard and injector on the newest */
grp_shard *grp_shard_of(const mrt_groups *g, mrt_svc_shard *ss);
/* Completion of one event on the member's shard: toward its selector. */
void grp_complete(grp_member *m, const grp_env *e);
/* A member stopping: its unsent completions wait in its shard's orphan list. */
void grp_member_orphan(grp_member *m);

/* member.c: the wrapping vtable (white-box tests), the member slot lifecycle (control). */
const mrt_daemon_vtable *grp_member_vt(void);
/* Identity key of (label, seed, idx). */
void grp_member_key(const char *label, uint64_t seed, unsigned idx,
                    uint8_t key[MRT_HOST_KEY_SIZE]);
/*
 * Spawn slot idx's incarnation on `shard` with term (resuming the slot's
 * saved chain when it has one), subscribe it, and put it in the master
 * table UP (not published). MRT_GROUPS_ESPAWN on failure (nothing left).
 */
int grp_member_spawn(mrt_group *grp, unsigned idx, unsigned shard, uint32_t term);
/*
 * Retire slot idx: DOWN, publish, wait for adoption and its reservations,
 * stop it keeping its chain. The slot stays DOWN in the master table.
 */
int grp_member_retire(mrt_group *grp, unsigned idx);
/* Stop slot idx at once (rollback of a spawn never published). */
void grp_member_kill(mrt_group *grp, unsigned idx);
/*
 * Place one member for slot idx: the group's filter and exclusions, the
 * shards of the other up members excluded (strict) or avoided first (best
 * effort), `avoid` (a shard, or MRT_SCHED_NONE) never chosen.
 */
int grp_place(mrt_group *grp, unsigned idx, uint32_t avoid, uint32_t *shard);
/* Whether slot idx needs recovery (marked unhealthy, its shard failed, left down). */
bool grp_slot_unhealthy(const mrt_group *grp, unsigned idx);
/* Whether any slot of the group needs recovery. */
bool grp_any_unhealthy(const mrt_group *grp);
/* Recover up to max unhealthy slots of a selecting group: retire, re-place, re-spawn term+1. */
int grp_recover_slots(mrt_group *grp, uint32_t max);
/* Sum of reservations toward slot idx at its current term. */
uint64_t grp_slot_outstanding(const mrt_groups *g, unsigned gid, unsigned idx, uint32_t term);

/*
 * Allocate a group of `kind` in a free table index (control): its table
 * entry is initialised (route, strategy, max_conn), its recovery handler
 * registered. For kinds: fill grp->n, then spawn slots and publish.
 */
int grp_group_new(mrt_groups *g, const grp_kind *kind, uint16_t type, mrt_group **out);
/* Stop the members, clear the table entry, publish, free (control). */
void grp_group_free(mrt_group *grp);

/* route.c: member selection on one table entry (shard or injector). */
/*
 * Pick and reserve a member on a shard whose reservation counts toward the
 * group are res[] and round-robin cursor *rr: the index, or
 * MRT_GROUPS_ENOMEMBER / MRT_GROUPS_EMAXCONN. A count whose term is not the
 * slot's restarts at 0 for the new incarnation.
 */
int grp_select_shard(const grp_gtab *gt, grp_res *res, uint32_t *rr, uint64_t key);
/* Release one reservation taken by grp_select_shard (the send was refused). */
static inline void grp_res_put(grp_res *r)
{
    uint32_t v = atomic_load_explicit(&r->out, memory_order_relaxed);
    if (v)
        atomic_store_explicit(&r->out, v - 1, memory_order_relaxed);
}

/* replica.c */
extern const grp_kind grp_kind_replica;
/* fork.c, standby.c */
extern const grp_kind grp_kind_fork;
extern const grp_kind grp_kind_standby;

#endif
