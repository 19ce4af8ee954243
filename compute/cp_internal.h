/*
 * Private layout of compute (white-box tests and the runtime include it).
 *
 * One mesh-wide mrt_compute (control thread: types, placement view, the
 * set's registry) and one cp_shard per shard, created by services'
 * subsystem init on the shard thread from its arena: the shard's daemon
 * records (id -> record, next to the host in services' table), their
 * subscriptions and reservations, the deferral queues and the breaker
 * report ring.
 */
#ifndef MESHRT_COMPUTE_CP_INTERNAL_H
#define MESHRT_COMPUTE_CP_INTERNAL_H

#include "meshrt/mrt_compute.h"

#include <stdalign.h>
#include <stdatomic.h>

/* Control types compute takes in each shard's control space: CP_CTL_BASE + op. */
#define CP_CTL_BASE 16u
enum {
    CP_OP_SPAWN = 0,
    CP_OP_STOP = 1,
    CP_OP_SUB = 2,
    CP_OP_FIND = 3,
    CP_OP_DRAIN = 4,    /* mrt_compute_drain_daemons (pressure.c) */
    CP_OP_CALL = 5,     /* mrt_compute_call (groups: snapshot, restore, replay) */
    CP_OP_COUNT         /* keep last */
};
_Static_assert(CP_CTL_BASE + CP_OP_COUNT <= MRT_CTL_TYPES, "control types");

/* Compute is services' first subsystem (the runtime registers it right after mrt_svc_create). */
#define CP_SUBSYSTEM_ID 0u

#define CP_NAME_MAX 63u
/* Deferral queues per shard: one per destination shard, the set's, egress's. */
#define CP_NQ(n) ((n) + 2u)

typedef struct cp_config {
    uint32_t defer_depth;   /* entries per deferral queue (256) */
    uint32_t defer_bytes;   /* payload bytes per deferral queue (2 x max_payload, >= 4 KiB) */
} cp_config;

typedef struct cp_type {
    mrt_compute_type t;
    char name[CP_NAME_MAX + 1];   /* t.name points here */
} cp_type;

typedef struct cp_sub {
    uint8_t kind;           /* mrt_compute_sink_kind */
    uint16_t shard;
    uint64_t id;
} cp_sub;

/* Deferral room one delivery may need in queue q (n: the set's queue, n + 1: egress). */
typedef struct cp_need {
    uint16_t q;
    uint32_t entries;
    uint64_t bytes;
} cp_need;

enum { CP_DRAIN_NONE = 0, CP_DRAIN_STARTED = 1, CP_DRAIN_FINISHED = 2 };

/* A daemon on this shard: next to its host (in services' table under the same id). */
typedef struct cp_daemon {
    uint64_t id;
    mrt_host *host;
    void *state;
    uint16_t type;
    uint8_t nsubs, nneed;
    uint8_t drain;          /* control signals delivered: CP_DRAIN_NONE / _STARTED / _FINISHED */
    cp_sub subs[MRT_COMPUTE_MAX_SUBS];
    cp_need need[MRT_COMPUTE_MAX_SUBS];
    struct cp_daemon *next, *prev;  /* every record of the shard, for teardown */
} cp_daemon;

/* One deferred send: payload bytes at `off` in the queue's byte ring (may wrap). */
/*
 * id and shard: the address a send and a hand-back name — the destination
 * daemon (q < n), none for the set (0, MRT_COMPUTE_ANY_SHARD), the emitter
 * for egress.
 */
typedef struct cp_dentry {
    uint64_t id;
    mrt_causal_link link;
    uint32_t len;
    uint32_t off;
    uint16_t shard;
} cp_dentry;

/* A bounded FIFO of deferred sends to one destination (or to the set). */
typedef struct cp_dq {
    cp_dentry *e;
    uint32_t head, count;
    uint8_t *bytes;
    uint32_t bhead, bused;
} cp_dq;

/* Published counters of one shard: plain stores by the owner once per iteration. */
typedef struct cp_pub {
    alignas(128) _Atomic uint64_t v[sizeof(mrt_compute_stats) / sizeof(uint64_t)];
} cp_pub;

/* Hand-backs of one status (cp_handback's `why`). */
#define CP_HB_SLOTS 8u
typedef struct cp_hb_count {
    int64_t why;
    uint64_t count;
} cp_hb_count;

typedef struct cp_shard {
    mrt_compute *c;
    mrt_svc_shard *ss;
    mrt_shard *shard;
    const mrt_allocator *a;
    unsigned id, n;
    /* Records by id: open addressing, linear probing, at most half full, keyed hash. */
    cp_daemon **slots;
    uint32_t mask, count;
    uint64_t seed;
    cp_daemon *list;
    /* Deferral queues: 0..n-1 per destination shard, n the set, n + 1 egress. */
    cp_dq *dq;
    uint64_t deferred_now;  /* entries waiting over all queues */
    uint8_t *scratch;       /* a wrapped payload made contiguous for sending */
    /* Breaker reports up to the control plane (SPSC ring). */
    struct rte_ring *reports;
    size_t reports_bytes;
    uint32_t bp_level;      /* backpressure level the daemons were told (0: off) */
    bool stop_told;         /* the runtime's stop was told to the daemons (DRAIN_START) */
    mrt_compute_stats st;
    /* Observation (runtime/publish.c reads these on the shard thread). */
    mrt_host_stats hosts_retired;   /* counters of the hosts destroyed on this shard so far */
    cp_hb_count hb[CP_HB_SLOTS];    /* hand-backs by status, first come; hb_other beyond */
    uint64_t hb_other;
} cp_shard;

struct mrt_compute {
    mrt_mesh *mesh;
    mrt_svc *svc;
    unsigned n;
    cp_config cfg;
    uint32_t max_payload;
    cp_type types[MRT_COMPUTE_MAX_TYPES];
    unsigned ntypes;
    mrt_compute_place_fn place;
    void *place_ctx;
    mrt_compute_place_fn place_default;   /* what set_placement(NULL) restores (the runtime's) */
    void *place_default_ctx;
    mrt_compute_handback_fn handback;
    void *handback_ctx;
    mrt_compute_egress_fn egress_drain;   /* outputs left in egress at stop */
    void *egress_drain_ctx;
    _Atomic uint64_t egress_unclaimed;    /* of those, taken with no drain function set */
    _Atomic bool started;
    _Atomic bool stopping;
    /* Control thread only. */
    uint64_t spawn_counter;
    uint32_t *hosted;             /* per shard, as the control thread placed and stopped */
    mrt_lb_registry *set;         /* the set's registry (borrowed from the runtime) */
    _Atomic bool set_dirty;       /* the registry changed since the last publish */
    /* Ingress. */
    uint64_t ingress_origin;
    _Atomic uint64_t inject_seq;
    _Atomic(cp_shard *) *shards;
    cp_pub *pub;                  /* per shard; outlives the shards' parts */
};

/* ---- runtime-facing (compute.c) -------------------------------------------- */

/*
 * Create compute over `svc` (before start; any thread): registers its
 * subsystem (which must be services' first), its hand-back and output
 * callbacks. `set` (may be NULL: no set) is the registry of the
 * balancer-routed set, borrowed, used from the control thread only.
 */
int mrt_compute_create_(mrt_mesh *mesh, mrt_svc *svc, mrt_lb_registry *set, mrt_compute **out);
/* Free the mesh-wide part, after every shard's part was finished. */
void mrt_compute_destroy_(mrt_compute *c);
/* The shards run: control calls are accepted from now on. */
void mrt_compute_started_(mrt_compute *c);
/* A stop began: nothing new is accepted from now on. */
void mrt_compute_stopping_(mrt_compute *c);
/* Control plane: take up to max breaker reports shard i sent up. */
size_t mrt_compute_take_reports_(mrt_compute *c, unsigned i, mrt_lb_breaker_report *out,
                                 size_t max);
/*
 * While the runtime stops (its thread): outputs still in egress go to the
 * drain function, or are counted in egress_unclaimed. Returns how many.
 */
size_t mrt_compute_drain_egress_(mrt_compute *c);
/*
 * The default placement (the runtime's scheduler), which
 * mrt_compute_set_placement(NULL) restores; installed now unless an
 * embedder's function is in place. Before start.
 */
void mrt_compute_set_default_placement_(mrt_compute *c, mrt_compute_place_fn fn, void *ctx);
/* Whether the set's registry changed since the last call (clears the flag). */
bool mrt_compute_set_changed_(mrt_compute *c);

/* ---- shard side ------------------------------------------------------------ */

/* This shard's compute part (NULL when compute is not on it). */
static inline cp_shard *cp_of(mrt_svc_shard *ss)
{
    return (cp_shard *)mrt_svc_state(ss, CP_SUBSYSTEM_ID);
}

/* table.c */
int cp_table_init(cp_shard *cs, uint32_t capacity);
void cp_table_fini(cp_shard *cs);
cp_daemon *cp_find(const cp_shard *cs, uint64_t id);
int cp_insert(cp_shard *cs, cp_daemon *d);
void cp_remove(cp_shard *cs, uint64_t id);

/* control.c */
void cp_control_install(cp_shard *cs);
void cp_daemon_free(cp_shard *cs, cp_daemon *d);

/* pressure.c: control signals to the daemons (backpressure, drain) */
/* Once per iteration, after the deferred sends: backpressure transitions, drain start. */
void cp_pressure_tick(cp_shard *cs, bool draining);
/* A daemon just hosted: tell it the shard's backpressure, if any. */
void cp_pressure_join(cp_shard *cs, cp_daemon *d);
/*
 * Advance d's drain to DRAIN_START or DRAIN_FINISH (finish implies start
 * first); each is delivered at most once per daemon. Returns whether the
 * daemon received anything.
 */
bool cp_drain_to(cp_shard *cs, cp_daemon *d, mrt_daemon_control kind);
/* Control op CP_OP_DRAIN: cp_drain_to every daemon of the shard; the count received. */
int cp_drain_all(cp_shard *cs, mrt_daemon_control kind);

/*
 * Hand an event back to the application with its reason, counted by reason
 * (route.c and defer.c both end an event this way: inline, so neither
 * calls the other for it).
 */
static inline void cp_handback(cp_shard *cs, mrt_compute_ref to, const mrt_event *ev, int why)
{
    cs->st.handed_back++;
    unsigned k = 0; /* by status: a few distinct ones, the first slot that has it or is free */
    while (k < CP_HB_SLOTS && cs->hb[k].count && cs->hb[k].why != why)
        k++;
    if (k < CP_HB_SLOTS) {
        cs->hb[k].why = why;
        cs->hb[k].count++;
    } else {
        cs->hb_other++;
    }
    if (cs->c->handback)
        cs->c->handback(cs->c->handback_ctx, to, ev, why);
}

/* route.c */
void cp_on_output(mrt_svc_shard *ss, mrt_host *host, const mrt_event *outs, size_t n, void *ctx);
void cp_on_handback(mrt_svc_shard *ss, const mrt_svc_event *e, mrt_svc_handback_reason why,
                    void *ctx);
void cp_need_update(cp_shard *cs, cp_daemon *d);
bool cp_admit_daemon(const cp_shard *cs, const cp_daemon *d);
bool cp_admit(mrt_svc_shard *ss, mrt_host *host, void *ctx);

/* defer.c */
int cp_defer_init(cp_shard *cs);
void cp_defer_fini(cp_shard *cs);
/*
 * Queue a send for q (a shard, n for the set, n + 1 for egress, where id is
 * the emitter); MRT_SHARD_EFULL when it has no room.
 */
int cp_defer_put(cp_shard *cs, unsigned q, uint64_t id, unsigned shard,
                 const mrt_causal_link *link, const void *payload, size_t len);
/* Send what waits, in order per queue, until a queue is refused again. */
void cp_defer_flush(cp_shard *cs);
/*
 * Send one event through queue q's channel, skipping the queue: to daemon
 * `id` on `shard` (q < n), to the balancer-routed set (q == n), or to egress
 * as emitter `id` (q == n + 1). On MRT_OK counts it as routed (daemon, set)
 * or egressed; any other code is the caller's to defer or hand back.
 */
static inline int cp_send_q(cp_shard *cs, unsigned q, uint64_t id, unsigned shard,
                            const mrt_causal_link *link, const void *payload, size_t len)
{
    int rc;
    if (q < cs->n) {
        rc = mrt_svc_send(cs->ss, shard, id, link, payload, len);
        cs->st.routed_daemon += rc == MRT_OK;
    } else if (q == cs->n) {
        rc = mrt_svc_send_routed(cs->ss, NULL, 0, link, payload, len, NULL);
        cs->st.routed_set += rc == MRT_OK;
    } else {
        rc = mrt_svc_egress_push(cs->ss, id, link, payload, len);
        cs->st.egressed += rc == MRT_OK;
    }
    return rc;
}

/* Codes after which the same send can succeed later: defer, do not hand back. */
static inline bool cp_backpressure(int rc)
{
    return rc == MRT_SHARD_EFULL || rc == MRT_SVC_EPOOL || rc == MRT_SVC_EINFLIGHT ||
           rc == MRT_LB_EMAXCONN;
}

/* Whether queue q can take `entries` more entries holding `bytes` payload bytes. */
static inline bool cp_defer_room(const cp_shard *cs, unsigned q, uint32_t entries, uint64_t bytes)
{
    const cp_dq *d = &cs->dq[q];
    return cs->c->cfg.defer_depth - d->count >= entries &&
           (uint64_t)cs->c->cfg.defer_bytes - d->bused >= bytes;
}

#endif
