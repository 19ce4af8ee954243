/*
 * mrt_groups.h — daemon groups on the runtime: a coordinator shared by all
 * groups, replica groups (N interchangeable members), and the recovery
 * registry the control plane runs once per control tick.
 *
 * A member placed on shard S is a compute daemon hosted on S (a wrapped
 * daemon type: mrt_groups_register_type). Routing an event through a group:
 * the shard's own routing-table snapshot selects a member with the group's
 * strategy and reserves a connection to it, the event crosses to the
 * member's shard (mrt_compute send or inject), the member delivers it, and
 * the completion comes back to the selecting shard, which releases the
 * reservation. Every reservation is released: delivered, refused by the
 * member, or handed back at the member's retirement.
 *
 * Coordinator: one member table per group with dense indices 0..n-1 (at
 * most MRT_GROUP_MAX_MEMBERS), a daemon id -> index map (O(1)), the health
 * aggregate. ONE routing table for all groups is published by pointer swap:
 * each shard adopts the newest at its poll-iteration boundary (a services
 * hook); a replaced table is freed (kept for reuse) only once every shard
 * and every injecting thread has moved past it. No select waits.
 *
 * Fencing: every routed event carries the term of the member slot it was
 * selected for (a 16-byte envelope in front of the payload, which the
 * member strips before its daemon sees the event). A member rejects an
 * event of an older term (MRT_GROUPS_ESTALE) and an event of a newer term
 * (MRT_GROUPS_EFENCED: it is itself a superseded incarnation); both still
 * release their reservation.
 *
 * Failure: a member is unhealthy when its daemon reports
 * MRT_DAEMON_UNHEALTHY, fails fail_threshold consecutive events, is marked
 * with mrt_group_mark_unhealthy, or its shard was failed
 * (mrt_runtime_fail_shard). Recovery (once per control tick, at most
 * recover_per_tick slots per group): route away from it, wait for its
 * reservations to come back, stop it and take its chain, re-spawn it under
 * the same identity on another shard continuing that chain
 * (mrt_compute_spawn_resume), with term + 1.
 *
 * Threads: "control" functions run on the runtime's control thread, the
 * one that calls mrt_runtime_control_tick (they use mrt_runtime_sched and
 * block on compute's control calls); mrt_group_inject from any thread;
 * mrt_group_send on a shard thread. Routing, delivery and completion
 * allocate nothing, take no lock and read no clock.
 */
#ifndef MESHRT_MRT_GROUPS_H
#define MESHRT_MRT_GROUPS_H

#include "meshrt/mrt_compute.h"
#include "meshrt/mrt_core.h"
#include "meshrt/mrt_runtime.h"
#include "meshrt/mrt_sched.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-1000 .. -1099, MRT_ERANGE_GROUPS_MIN in mrt_core.h). */
enum mrt_groups_status {
    MRT_GROUPS_EINVAL = -1000,    /* NULL pointer or an argument outside its domain */
    MRT_GROUPS_ENOMEM = -1001,    /* an allocation failed */
    MRT_GROUPS_ELIMIT = -1002,    /* a fixed table is full (groups, members, types, handlers) */
    MRT_GROUPS_ESTATE = -1003,    /* not in this phase (before / after runtime start) */
    MRT_GROUPS_ENOGROUP = -1004,  /* the group was destroyed (or is not published yet) */
    MRT_GROUPS_ESPREAD = -1005,   /* strict spread: no free eligible shard for a member */
    MRT_GROUPS_ENOPLACE = -1006,  /* no eligible shard (filter, exclusions, drained, failed) */
    MRT_GROUPS_ENOMEMBER = -1007, /* no routable member (none up) */
    MRT_GROUPS_EMAXCONN = -1008,  /* every routable member at max connections: backpressure */
    MRT_GROUPS_ESTALE = -1009,    /* fencing: the event's term is older than the member's */
    MRT_GROUPS_EFENCED = -1010,   /* fencing: the member is older than the event's term */
    MRT_GROUPS_ESPAWN = -1011,    /* a member could not be spawned; what the call made is undone */
    MRT_GROUPS_EKIND = -1012,     /* the operation does not apply to this group kind */
    MRT_GROUPS_ENOTYPE = -1013,   /* not a type from mrt_groups_register_type */
    MRT_GROUPS_ETOOBIG = -1014,   /* payload or spawn argument too large */
    MRT_GROUPS_EENVELOPE = -1015, /* an event without a group envelope reached a member */
};

/* Name of a groups status code; NULL outside -1000..-1099. */
const char *mrt_groups_strerror(int status);

#define MRT_GROUP_MAX_MEMBERS 255u
#define MRT_GROUPS_MAX 32u              /* groups alive at once per coordinator */
#define MRT_GROUPS_MAX_TYPES 16u
#define MRT_GROUPS_MAX_HANDLERS 64u     /* recovery handlers */
#define MRT_GROUPS_ENVELOPE 16u         /* bytes in front of a routed payload */
#define MRT_GROUPS_INJECT_MAX 4096u     /* payload bytes mrt_group_inject takes */
#define MRT_GROUPS_MAX_ARG (MRT_COMPUTE_MAX_ARG - 16u) /* a member's spawn argument */

typedef struct mrt_groups mrt_groups;
typedef struct mrt_group mrt_group;

typedef struct mrt_groups_config {
    uint32_t max_conn;          /* default reservations per member per selecting shard (10000) */
    uint32_t fail_threshold;    /* consecutive failed events that make a member unhealthy (3) */
    uint32_t recover_per_tick;  /* slots recovered per group per control tick (4) */
    uint32_t quiesce_ms;        /* how long a retiring member's reservations are awaited (2000) */
} mrt_groups_config;

/* Fill *cfg with the defaults above. */
void mrt_groups_config_default(mrt_groups_config *cfg);

/*
 * Create the coordinator on rt (control thread, before mrt_runtime_start):
 * its per-shard part (a services subsystem), its completion message type,
 * and its recovery registry on rt's control tick. cfg NULL: defaults.
 * MRT_GROUPS_EINVAL, MRT_GROUPS_ENOMEM, MRT_GROUPS_ESTATE (after start),
 * services' registration codes.
 */
int mrt_groups_create(mrt_runtime *rt, const mrt_groups_config *cfg, mrt_groups **out);

/*
 * Free the coordinator (after mrt_runtime_stop, before
 * mrt_runtime_destroy; its groups are freed, their daemons were stopped
 * with the runtime). NULL is a no-op.
 */
void mrt_groups_destroy(mrt_groups *g);

/*
 * Register a daemon type whose daemons can be group members (before
 * start): compute registers a wrapping type (name "g:" + t->name) that
 * strips and checks the envelope, completes the reservation, watches
 * health, then runs t. *type receives the groups type id. Codes of
 * mrt_compute_register_type, MRT_GROUPS_ELIMIT, MRT_GROUPS_ESTATE.
 */
int mrt_groups_register_type(mrt_groups *g, const mrt_compute_type *t, uint16_t *type);

/* Selection strategies. */
typedef enum mrt_group_strategy {
    MRT_GROUP_ROUND_ROBIN = 0,   /* per selecting shard, skipping members at max connections */
    MRT_GROUP_HASH = 1,          /* jump consistent hash of the key (1024 buckets mapped at
                                    publication): sticky; a down slot's keys rehash */
    MRT_GROUP_LEAST_CONN = 2,    /* fewest reservations from this selector (O(n) scan) */
} mrt_group_strategy;

typedef struct mrt_group_replica_config {
    uint16_t type;              /* a groups type (mrt_groups_register_type) */
    uint32_t members;           /* initial member count, 1..MRT_GROUP_MAX_MEMBERS */
    uint64_t seed;              /* identity: member i's key derives from (seed, i); two groups
                                   with one seed share identities (ESPAWN where they meet) */
    mrt_group_strategy strategy;
    mrt_sched_spread spread;    /* strict: distinct shards or MRT_GROUPS_ESPREAD */
    const mrt_sched_filter *filter; /* capability filter (NULL: any shard); copied */
    const uint32_t *exclude;    /* shards never used by this group; copied */
    uint32_t nexclude;
    uint32_t max_conn;          /* 0: the coordinator's default */
    const void *arg;            /* each member's spawn argument (copied), <= MRT_GROUPS_MAX_ARG */
    size_t arg_len;
} mrt_group_replica_config;

/* Defaults: 1 member, round robin, best-effort spread, nothing else. */
void mrt_group_replica_config_default(mrt_group_replica_config *cfg);

/*
 * Create a replica group and spawn its members, spread over the shards by
 * the scheduler (control, after start): each member i is identity
 * XXH3("meshrt/groups/replica/v1" || seed || i), placed one at a time with
 * the shards of members already placed excluded (best effort: then the
 * shard with fewest of this group's members). If any spawn fails, the
 * members already spawned are stopped and nothing remains. Routed to once
 * published (before it returns). MRT_GROUPS_EINVAL, MRT_GROUPS_ENOTYPE,
 * MRT_GROUPS_ELIMIT, MRT_GROUPS_ESPREAD, MRT_GROUPS_ENOPLACE,
 * MRT_GROUPS_ESPAWN, MRT_GROUPS_ESTATE.
 */
int mrt_group_replica_create(mrt_groups *g, const mrt_group_replica_config *cfg,
                             mrt_group **out);

/*
 * Subscribe every member, present and future (grown, re-spawned), to
 * `kind`/`target` as mrt_compute_subscribe does (control). At most
 * MRT_COMPUTE_MAX_SUBS - 1. Codes of mrt_compute_subscribe, MRT_GROUPS_ELIMIT.
 */
int mrt_group_subscribe(mrt_group *grp, mrt_compute_sink_kind kind, mrt_compute_ref target);

/*
 * Scale to n members (control): grow spawns indices n_old..n-1, each placed
 * with the spread re-evaluated against the members present (an index used
 * before re-uses its identity and continues its chain); shrink retires the
 * highest indices (routed away, reservations awaited, stopped, chain kept).
 * A grow that fails part-way stops what it spawned and returns the error
 * with the group as before. MRT_GROUPS_EINVAL (n outside 1..255), spawn
 * and placement codes as mrt_group_replica_create.
 */
int mrt_group_scale_to(mrt_group *grp, uint32_t n);

/*
 * Stop every member and free the group (control); its recovery handler is
 * evicted at the next tick. NULL is a no-op.
 */
void mrt_group_destroy(mrt_group *grp);

/*
 * Route one event through the group from a thread that is not a shard (any
 * thread): select (the strategy; `key` for hash), reserve, inject to the
 * member's shard with the envelope. MRT_OK, or with nothing sent and no
 * reservation held: MRT_GROUPS_ENOMEMBER, MRT_GROUPS_EMAXCONN,
 * MRT_GROUPS_ETOOBIG (> MRT_GROUPS_INJECT_MAX), MRT_GROUPS_ENOGROUP,
 * compute's inject codes (backpressure: retry).
 */
int mrt_group_inject(mrt_group *grp, uint64_t key, const void *payload, size_t len);

/*
 * Route one event from shard code (a handler or hook on the shard of ss):
 * the shard's snapshot selects and reserves, the event goes to the
 * member's shard (deferred by compute under backpressure, the reservation
 * kept). *member (may be NULL) receives the index chosen. Codes as
 * mrt_group_inject, plus mrt_compute_defer's when even deferral is full.
 */
int mrt_group_send(mrt_svc_shard *ss, mrt_group *grp, uint64_t key, const mrt_causal_link *link,
                   const void *payload, size_t len, unsigned *member);

typedef enum mrt_group_state {
    MRT_GROUP_HEALTHY = 0,   /* every member up and healthy */
    MRT_GROUP_DEGRADED = 1,  /* some (healthy of members) */
    MRT_GROUP_DEAD = 2,      /* none */
} mrt_group_state;

typedef struct mrt_group_health {
    mrt_group_state state;
    uint32_t healthy;        /* members up and not marked unhealthy */
    uint32_t members;        /* n */
    uint32_t term;           /* the group term: + 1 on every recovery that recovered anything */
    uint64_t respawns;       /* members re-spawned by recovery so far */
} mrt_group_health;

/* The health aggregate (control). MRT_GROUPS_EINVAL. */
int mrt_group_health_get(const mrt_group *grp, mrt_group_health *out);

typedef struct mrt_group_member_info {
    mrt_compute_ref ref;     /* the daemon and its shard */
    uint32_t term;           /* its incarnation's term */
    bool up;                 /* routed to */
    bool unhealthy;          /* awaiting recovery */
} mrt_group_member_info;

/* Member `idx` (control). MRT_GROUPS_EINVAL for an index >= n. */
int mrt_group_member(const mrt_group *grp, unsigned idx, mrt_group_member_info *out);

/* Member index of daemon id `id` in O(1), or -1 (control). */
int mrt_group_member_of(const mrt_group *grp, uint64_t id);

/* Mark member idx unhealthy (control; operators, tests): recovered at the next tick. */
int mrt_group_mark_unhealthy(mrt_group *grp, unsigned idx);

/*
 * Reservations now held towards the group's members over every selector
 * (shards and injecting threads), read from the shards' published counts
 * (any thread; exact once the shards are quiet).
 */
uint64_t mrt_group_outstanding(const mrt_group *grp);

/* Counters of the coordinator over all shards (any thread; exact once quiet). */
typedef struct mrt_groups_stats {
    uint64_t routed;         /* events sent or injected through a group */
    uint64_t refused;        /* routes refused (no member, max connections, backpressure) */
    uint64_t completed;      /* reservations released by a completion */
    uint64_t stale;          /* events a member rejected for their term (ESTALE or EFENCED) */
    uint64_t late;           /* completions for a replaced incarnation (its count was reset)
                                or dropped with a full orphan list: 0 in a clean run */
    uint64_t respawns;       /* members re-spawned by recovery */
} mrt_groups_stats;
/* Fill *out: all zero when g is NULL (out must not be). */
void mrt_groups_stats_get(const mrt_groups *g, mrt_groups_stats *out);

/* ---- the recovery registry (control thread) ---- */

/*
 * A recovery handler: recover at most max_slots slots (per group it
 * covers); return how many it recovered, or a negative status to be
 * evicted (not called again).
 */
typedef int (*mrt_groups_recover_fn)(mrt_groups *g, void *ctx, uint32_t max_slots);

/*
 * Register a handler (control; also from inside a handler: it runs from
 * the next tick). Each group registers its own. MRT_GROUPS_ELIMIT past
 * MRT_GROUPS_MAX_HANDLERS, MRT_GROUPS_EINVAL.
 */
int mrt_groups_recovery_register(mrt_groups *g, mrt_groups_recover_fn fn, void *ctx);

/*
 * Run every registered handler once with recover_per_tick (control): the
 * runtime calls it from mrt_runtime_control_tick. Handlers registered
 * during the run wait for the next one; evicted ones are removed after
 * it. No allocation. Returns the slots recovered in total.
 */
int mrt_groups_recovery_tick(mrt_groups *g);

/* Handlers registered now (evicted ones excluded). */
unsigned mrt_groups_recovery_count(const mrt_groups *g);

/* ---- fork and standby groups (groups/fork.c, groups/standby.c) ------------- */

/* Status codes of the fork and standby groups (in the groups range). */
#define MRT_GROUPS_ENOSTANDBY (-1090) /* no healthy standby synced and replayable: nothing changed */
#define MRT_GROUPS_ELINEAGE (-1091)   /* a fork group's lineage does not verify */

/*
 * Standby group: members >= 2 on distinct shards; only the active
 * processes events (route: the active). All members carry ONE chain
 * identity (key from (seed) in the standby-only domain): the routing
 * identity is the member slot, the chain identity the group's, so a
 * promoted standby continues the active's chain and a receiver validates
 * it across the failover.
 *  - The active's accepted events are buffered by their ingress index
 *    (mrt_replay_*: bounded by events and bytes, a sync point per
 *    standby; a standby too far behind needs a full re-sync).
 *  - Sync: snapshot the active, restore it onto each standby.
 *  - Promotion: the freshest healthy standby (highest sync point; the
 *    scheduler's placement ranking only breaks ties), term + 1, the old
 *    active retired, the buffered events past the standby's sync point
 *    replayed with their outputs suppressed, then routed to. No candidate:
 *    MRT_GROUPS_ENOSTANDBY and no state change.
 *  - Recovery: an unhealthy active (its shard failed included) is promoted
 *    away from, never re-placed; unhealthy standbys are re-placed on other
 *    shards and synced.
 * Members share one daemon id (their refs differ by shard):
 * mrt_group_member_of(id) names the lowest index; use mrt_group_member.
 */
typedef struct mrt_group_standby_config {
    uint16_t type;              /* a groups type */
    uint32_t members;           /* 2..MRT_GROUP_MAX_MEMBERS, on distinct shards */
    uint64_t seed;              /* the group's chain identity */
    const mrt_sched_filter *filter; /* capability filter (NULL: any shard); copied */
    uint32_t max_conn;          /* 0: the coordinator's default */
    const void *arg;            /* each member's spawn argument (copied) */
    size_t arg_len;
    uint32_t buffer_events;     /* replay buffer bound in events (0: 65536) */
    uint32_t buffer_bytes;      /* ... and in payload bytes (0: 16 MiB) */
} mrt_group_standby_config;

/* Defaults: 2 members, the bounds above. */
void mrt_group_standby_config_default(mrt_group_standby_config *cfg);

/*
 * Create a standby group (control, after start): members spawned on
 * distinct shards, member 0 active, the standbys synced. Codes as
 * mrt_group_replica_create (MRT_GROUPS_ESPREAD with fewer eligible shards
 * than members); MRT_GROUPS_EINVAL for fewer than 2 members.
 */
int mrt_group_standby_create(mrt_groups *g, const mrt_group_standby_config *cfg,
                             mrt_group **out);

/*
 * Sync every healthy standby (control): snapshot the active, restore onto
 * each, record its sync point. Returns the number synced, or a negative
 * status: the active's snapshot failed, MRT_GROUPS_ESTATE when the active
 * is unhealthy (its shard failed: it is no source; promote first),
 * MRT_GROUPS_EKIND for another kind.
 */
int mrt_group_standby_sync(mrt_group *grp);

/*
 * Promote now (control; recovery does it when the active is unhealthy).
 * MRT_GROUPS_ENOSTANDBY (nothing changed), MRT_GROUPS_EKIND, or the
 * replay's error (the standby is then marked unhealthy).
 */
int mrt_group_standby_promote(mrt_group *grp);

typedef struct mrt_group_standby_info {
    unsigned active;            /* the active member's index */
    uint32_t term;              /* the group term */
    uint64_t promotions;
    uint64_t replayed;          /* events replayed by the last promotion */
    uint64_t suppressed;        /* outputs suppressed by the last promotion */
    uint64_t replayed_total, suppressed_total;
    uint64_t promote_ns;        /* the last promotion: call to routed, wall clock (control) */
    uint64_t syncs;             /* standby restores that succeeded */
    uint64_t buffered;          /* events in the replay buffer now */
    uint64_t buffered_bytes;
    uint64_t evicted, resyncs;  /* replay buffer: events dropped while needed; stale marks */
} mrt_group_standby_info;

/* The standby group's state (control). MRT_GROUPS_EINVAL, MRT_GROUPS_EKIND. */
int mrt_group_standby_info_get(mrt_group *grp, mrt_group_standby_info *out);

/*
 * Member idx's sync point (the ingress index it holds everything below)
 * into *sync_next: MRT_OK, MRT_DAEMON_ERESYNC (stale: needs a full sync),
 * MRT_GROUPS_ENOSTANDBY (never synced, or the active), MRT_GROUPS_EINVAL.
 */
int mrt_group_standby_sync_point(mrt_group *grp, unsigned idx, uint64_t *sync_next);

/*
 * Fork group: n divergent forks of a running daemon `parent` (control,
 * after start). The parent is snapshotted once; each fork gets a random
 * identity (its secret kept by the group: a re-spawn is the same fork), a
 * fork record naming the parent and the fork point (the parent's head
 * sequence), the parent's state and horizon, and a chain that starts at
 * its fork genesis. Events are routed to one fork by the strategy, as in a
 * replica group. The parent is not touched.
 */
typedef struct mrt_group_fork_config {
    uint16_t type;              /* a groups type: the parent's user type */
    uint32_t forks;             /* 1..MRT_GROUP_MAX_MEMBERS */
    mrt_compute_ref parent;     /* the running daemon forked (any compute daemon of that type) */
    mrt_group_strategy strategy;
    mrt_sched_spread spread;
    uint32_t max_conn;
    const void *arg;
    size_t arg_len;
} mrt_group_fork_config;

/* Defaults: 1 fork, round robin, best-effort spread, the coordinator's max_conn. */
void mrt_group_fork_config_default(mrt_group_fork_config *cfg);

/*
 * Create a fork group (control, after start). Codes as
 * mrt_group_replica_create, and the parent's: MRT_CP_ENODAEMON (no such
 * parent), its snapshot's codes (mrt_daemon.h); MRT_GROUPS_ETOOBIG when
 * arg_len exceeds MRT_GROUPS_MAX_ARG. On failure no
 * fork remains and the parent is untouched.
 */
int mrt_group_fork_create(mrt_groups *g, const mrt_group_fork_config *cfg, mrt_group **out);

/* The 65-byte-recordable fork records of the group's forks (control): *n in, written out. */
int mrt_group_fork_records(const mrt_group *grp, mrt_fork_record *out, unsigned *n);

/* mrt_fork_verify_lineage over the group's records and stored secrets: MRT_OK or MRT_GROUPS_ELINEAGE. */
int mrt_group_fork_verify_lineage(const mrt_group *grp);
/* ---- scenarios: `meshrt run --scenario NAME` (groups/scenario.c) ---- */

/*
 * The outcome of a scenario run, exact (counted by the polling thread and
 * the runtime after its drain).
 */
typedef struct mrt_scenario_result {
    const char *name;           /* "replica" or "scale" */
    unsigned shards;
    double elapsed_s;
    const char *why_stop;       /* "duration elapsed", "stopped" */
    uint64_t injected;          /* events the group accepted */
    uint64_t refused;           /* injections refused (backpressure, max conn), offered again */
    uint64_t received;          /* outputs egressed and validated */
    uint64_t lost;              /* injected events that never came out */
    uint64_t duplicated;        /* events that came out more than once */
    uint64_t links;             /* causal links validated */
    uint64_t chains;            /* member chains seen */
    uint64_t bad_links;         /* links a chain refused */
    uint64_t resumed;           /* chains continued by a new incarnation (re-spawn, re-grow) */
    uint64_t handed_back;       /* events compute handed back */
    uint64_t daemon_errors;
    uint64_t completed;         /* reservations released by completions */
    uint64_t outstanding;       /* reservations held at exit */
    uint32_t members;           /* at the end */
    uint32_t term;              /* the group term at the end */
    uint64_t respawns;
    int failed_shard;           /* replica: the shard failed mid-run (-1: none) */
    double failed_at_s;
    uint32_t on_failed_after;   /* members left on the failed shard at the end */
    uint32_t steps[8];          /* scale: the member counts it went through */
    unsigned nsteps;
    uint64_t per_member[MRT_GROUP_MAX_MEMBERS]; /* events per member index */
    /* standby and fork (groups/scenario_ha.c): */
    uint64_t promotions, replayed, suppressed;
    double promote_ms;
    unsigned forks;
    uint64_t fork_seq;
    bool lineage_ok;
    unsigned nproblems;
    char problems[1024];        /* "; "-separated */
} mrt_scenario_result;

/*
 * Run scenario cfg->scenario on a runtime made from cfg (the built-in
 * workload is not run). `stop` (may be NULL) is polled between steps: true
 * ends the run early (then drained and judged like a full one). Live lines
 * go to `progress` (NULL: none). MRT_OK with *out filled (its verdict in
 * nproblems), or the runtime's creation / start code with a message in err
 * (MRT_RT_EBIND: a refused binding; MRT_RT_ESHARDS: the scenario needs more
 * shards).
 *
 *   replica  a replica group of 2 x shards members (best-effort spread)
 *            under load from an ingress thread (mrt_group_inject, at most
 *            512 events in flight); at half time the last shard is failed
 *            (mrt_runtime_fail_shard), the recovery re-places its members
 *            (same identities, chains resumed, term + 1). Verdict: every
 *            event out exactly once, every chain verifies (the resumed ones
 *            included), no member left on the failed shard, reservations
 *            0 at exit.
 *   scale    a replica group scaled 1 -> 8 -> 2 -> 5 at quarters of the
 *            duration under the same load. Verdict: nothing lost or
 *            duplicated, every chain verifies (re-grown identities
 *            continue theirs), 5 members at the end, reservations 0.
 */
int mrt_scenario_run(const mrt_runtime_config *cfg, bool (*stop)(void *ctx), void *stop_ctx,
                     FILE *progress, mrt_scenario_result *out, char *err, size_t errlen);

/* Print a result: a table, or one JSON object (json true). */
void mrt_scenario_print(FILE *f, bool json, const mrt_scenario_result *r);

#ifdef __cplusplus
}
#endif
#endif
