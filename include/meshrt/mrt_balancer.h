/*
 * mrt_balancer.h — the per-shard snapshot load balancer.
 *
 * Three objects, three owners:
 *
 *   registry  (control plane)  endpoints, their health/weight/metrics, zones,
 *                              tags and declared tag filters. Mutated off
 *                              the event path; every bad input is refused
 *                              with its own status and leaves it unchanged.
 *   snapshot  (immutable)      compiled from the registry: the available
 *                              endpoints and every precomputed structure a
 *                              strategy needs (per-zone / per-filter pools,
 *                              alias tables, the smooth-WRR period, the
 *                              sorted hash ring, the Maglev table, ...).
 *                              Shared read-only by every shard.
 *   shard     (one per shard)  plain per-shard fields: reservations,
 *                              latency EWMA, breakers, cursors, a PRNG.
 *
 * mrt_lb_select() reads a snapshot and writes only its shard's state: no
 * lock, no atomic, no allocation, no clock read (time is passed in), no walk
 * over the endpoints for round robin, smooth WRR, random, weighted random,
 * power of two, Maglev and consistent hash. Least connections, weighted
 * least connections, least latency and least load keep a per-shard
 * tournament tree per pool: O(1) to read, O(log n) to update on
 * select/complete.
 * When the picked endpoint cannot take the request on this shard (its
 * breaker is open or it reached max_connections) the select moves to the
 * next candidate; that walk is bounded by the pool size and is the only
 * place a select touches more than a handful of endpoints.
 *
 * Snapshots travel to shards through a publication domain (mrt_lb_domain):
 * quiescent-state reclamation, so a retired snapshot is freed only once
 * every shard has passed a poll-iteration boundary after the switch. The
 * protocol is described at mrt_lb_domain below and in balancer/README.md.
 *
 * Pure logic: no threads, no locks; allocation only through the
 * mrt_allocator handle passed in.
 */
#ifndef MESHRT_MRT_BALANCER_H
#define MESHRT_MRT_BALANCER_H

#include "meshrt/mrt_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-400 .. -499). */
enum mrt_lb_status {
    /* argument / registry errors */
    MRT_LB_EINVAL = -400,       /* NULL pointer or an argument outside its documented domain */
    MRT_LB_ENOMEM = -401,       /* the allocator refused */
    MRT_LB_EDUPLICATE = -402,   /* an endpoint with this node id is already registered */
    MRT_LB_ENOTFOUND = -403,    /* no endpoint with this node id (or a stale report) */
    MRT_LB_EWEIGHT = -404,      /* weight <= 0 or > MRT_LB_MAX_WEIGHT */
    MRT_LB_EMETRIC = -405,      /* a load metric is NaN, infinite or out of its range */
    MRT_LB_ETOOMANYTAGS = -406, /* more than 64 distinct tags in one registry */
    MRT_LB_ENAME = -407,        /* a tag or zone name is empty or longer than MRT_LB_NAME_MAX */
    MRT_LB_EHEALTH = -408,      /* not a mrt_lb_health value */
    MRT_LB_ETOOMANYZONES = -409, /* more than MRT_LB_MAX_ZONES zones */
    MRT_LB_ECAPACITY = -410,    /* MRT_LB_MAX_ENDPOINTS endpoints or MRT_LB_MAX_FILTERS filters */
    MRT_LB_ECONFIG = -411,      /* a mrt_lb_config field is out of range */
    /* select errors */
    MRT_LB_ENOENDPOINTS = -420, /* the registry had no endpoint at compile time */
    MRT_LB_EALLUNHEALTHY = -421, /* endpoints exist but none is available (health, disabled, tripped) */
    MRT_LB_ENOTAGMATCH = -422,  /* no available endpoint carries all the required tags */
    MRT_LB_ENOZONE = -423,      /* none available in the client's zone and zone fallback is off */
    MRT_LB_ECIRCUITOPEN = -424, /* every candidate's breaker is open on this shard */
    MRT_LB_EMAXCONN = -425,     /* every candidate is blocked, at least one by max_connections */
    MRT_LB_EFILTER = -426,      /* required_tags is not a mask declared with declare_filter */
    MRT_LB_ENOTADOPTED = -427,  /* the snapshot is not the one this shard state adopted */
    /* complete errors */
    MRT_LB_ECOMPLETED = -430,   /* this selection was already completed */
    MRT_LB_ESTALE = -431,       /* completion of a reclaimed probe or of a since-removed endpoint:
                                   accounted, not fed to the breaker */
};

/* Name of a balancer status code; NULL outside -400..-499. */
const char *mrt_lb_strerror(int status);

#define MRT_LB_NODE_ID_LEN 32
#define MRT_LB_NAME_MAX 63          /* bytes of a tag or zone name */
#define MRT_LB_MAX_TAGS 64          /* distinct tags per registry: one bit each */
#define MRT_LB_MAX_ZONES 256
#define MRT_LB_MAX_FILTERS 32       /* declared required-tag sets */
#define MRT_LB_MAX_ENDPOINTS (1u << 20)
#define MRT_LB_MAX_WEIGHT 1000000
#define MRT_LB_DEFAULT_WEIGHT 100
#define MRT_LB_ZONE_NONE 0xFFFFu    /* request without zone preference / endpoint without zone */

typedef enum mrt_lb_health {
    MRT_LB_HEALTHY = 0,   /* x1.0, takes traffic */
    MRT_LB_DEGRADED = 1,  /* x0.5, takes traffic */
    MRT_LB_UNHEALTHY = 2, /* x0, no traffic */
    MRT_LB_UNKNOWN = 3,   /* x0.25 nominal, but only healthy and degraded take traffic */
} mrt_lb_health;

typedef enum mrt_lb_strategy {
    MRT_LB_ROUND_ROBIN = 0,
    MRT_LB_WEIGHTED_ROUND_ROBIN,   /* nginx smooth WRR */
    MRT_LB_LEAST_CONNECTIONS,      /* fewest in-flight on this shard */
    MRT_LB_WEIGHTED_LEAST_CONN,    /* smallest (in-flight + 1) / weight */
    MRT_LB_RANDOM,
    MRT_LB_WEIGHTED_RANDOM,
    MRT_LB_CONSISTENT_HASH,        /* sorted ring, binary search */
    MRT_LB_MAGLEV,
    MRT_LB_LEAST_LATENCY,          /* smallest (latency EWMA + 1 us) x (in-flight + 1) */
    MRT_LB_LEAST_LOAD,             /* smallest (load_score + 0.01) x (in-flight + 1) */
    MRT_LB_POWER_OF_TWO,           /* two random picks, fewer in-flight wins */
    MRT_LB_ADAPTIVE,               /* mean load > 0.7: LC; else key: CH; else WRR */
    MRT_LB_STRATEGY_COUNT
} mrt_lb_strategy;

/* Short name of a strategy ("rr", "wrr", ...); NULL for an unknown value. */
const char *mrt_lb_strategy_name(mrt_lb_strategy s);

/*
 * Balancer configuration, held by the registry and copied into every
 * snapshot (so a change reaches shards with the next snapshot).
 */
typedef struct mrt_lb_config {
    mrt_lb_strategy strategy;
    uint32_t vnodes;             /* CH ring points per endpoint: 1..4096, default 150 */
    uint32_t maglev_size;        /* Maglev table size: a prime in 7..16777259, default 65537 */
    uint32_t max_connections;    /* in-flight cap per endpoint per shard; 0 = unlimited */
    uint32_t breaker_threshold;  /* consecutive failures that open a breaker; 0 = no breaker; default 5 */
    uint64_t recovery_ns;        /* open -> half-open delay, >= 1 ms, default 30 s */
    bool zone_fallback;          /* no endpoint in the client zone: use all zones (default) or fail */
    uint32_t wrr_max_period;     /* longest precomputed smooth-WRR period per pool; weights are
                                    scaled down to fit beyond it. 16..(1<<24), default 1<<18 */
    double latency_alpha;        /* EWMA weight of a new latency sample, (0, 1], default 0.2 */
} mrt_lb_config;

/* Fill `c` with the defaults above (round robin). */
void mrt_lb_config_default(mrt_lb_config *c);

/*
 * Load metrics reported for an endpoint. Fractions are in [0, 1]; the
 * others are >= 0 and finite. Anything else is MRT_LB_EMETRIC.
 */
typedef struct mrt_lb_metrics {
    double cpu;                  /* fraction of CPU busy, [0, 1] */
    double memory;               /* fraction of memory used, [0, 1] */
    double active_connections;   /* >= 0 */
    double requests_per_s;       /* >= 0 */
    double avg_response_ms;      /* >= 0 */
    double error_rate;           /* [0, 1] */
    double queue_depth;          /* >= 0 */
    double bandwidth;            /* bytes/s, >= 0 */
} mrt_lb_metrics;

/*
 * 0.3*cpu + 0.2*mem + 0.2*min(conns/10000, 1) + 0.15*min(rt_ms/1000, 1)
 * + 0.15*error_rate, in [0, 1] for valid metrics. Computed once per
 * metrics update, stored in snapshots; never on the select path.
 */
double mrt_lb_load_score(const mrt_lb_metrics *m);

/* Everything the registry keeps about an endpoint, as given to add/update. */
typedef struct mrt_lb_endpoint_spec {
    uint8_t node_id[MRT_LB_NODE_ID_LEN];
    int64_t weight;              /* 1..MRT_LB_MAX_WEIGHT */
    const char *zone;            /* NULL or "" = no zone */
    const char *const *tags;     /* ntags names; duplicates count once */
    size_t ntags;
    int32_t priority;            /* kept and reported; no strategy reads it */
    bool enabled;
    mrt_lb_health health;
    mrt_lb_metrics metrics;
    uint64_t user_data;          /* opaque, handed back in every selection (e.g. a daemon host id) */
} mrt_lb_endpoint_spec;

/* A spec with defaults: weight 100, healthy, enabled, no zone/tags, zero metrics. */
void mrt_lb_endpoint_spec_init(mrt_lb_endpoint_spec *s, const uint8_t node_id[MRT_LB_NODE_ID_LEN]);

/* ------------------------------------------------------------------ registry */

typedef struct mrt_lb_registry mrt_lb_registry;

/* Create an empty registry. `cfg` NULL means defaults. MRT_LB_ECONFIG for a bad config. */
int mrt_lb_registry_create(const mrt_allocator *a, const mrt_lb_config *cfg,
                           mrt_lb_registry **out);
/* Release a registry (NULL is a no-op). Snapshots compiled from it stay valid. */
void mrt_lb_registry_destroy(mrt_lb_registry *r);

/* Replace the configuration (reaches shards with the next snapshot). */
int mrt_lb_registry_set_config(mrt_lb_registry *r, const mrt_lb_config *cfg);
/* The current configuration. */
void mrt_lb_registry_config(const mrt_lb_registry *r, mrt_lb_config *out);

/*
 * Add an endpoint. *id_out (may be NULL) receives its stable id: dense,
 * reused after removal with a new generation. Errors: EDUPLICATE, EWEIGHT,
 * EMETRIC, EHEALTH, ENAME, ETOOMANYTAGS, ETOOMANYZONES, ECAPACITY, ENOMEM.
 */
int mrt_lb_registry_add(mrt_lb_registry *r, const mrt_lb_endpoint_spec *s, uint32_t *id_out);
/* Replace every attribute of the endpoint with s->node_id (same errors as add, ENOTFOUND). */
int mrt_lb_registry_update(mrt_lb_registry *r, const mrt_lb_endpoint_spec *s);
/* Remove an endpoint; its tags and id are released. ENOTFOUND if absent. */
int mrt_lb_registry_remove(mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN]);
/*
 * Change one attribute of an endpoint; the change reaches shards with the
 * next snapshot. Errors: ENOTFOUND, and EHEALTH / EWEIGHT / EMETRIC for a
 * bad value (the registry is then unchanged).
 */
int mrt_lb_registry_set_health(mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                               mrt_lb_health h);
int mrt_lb_registry_set_weight(mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                               int64_t weight);
int mrt_lb_registry_set_enabled(mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                                bool enabled);
int mrt_lb_registry_update_metrics(mrt_lb_registry *r,
                                   const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                                   const mrt_lb_metrics *m);

/* What the registry holds about one endpoint (for operators and tests). */
typedef struct mrt_lb_endpoint_info {
    uint32_t id;
    uint32_t generation;
    int64_t weight;
    int32_t priority;
    uint16_t zone;               /* zone id or MRT_LB_ZONE_NONE */
    bool enabled;
    mrt_lb_health health;
    uint64_t tags;               /* tag bit mask */
    mrt_lb_metrics metrics;
    double load_score;
    uint64_t tripped_until_ns;   /* excluded from snapshots compiled before this time */
    uint64_t user_data;
} mrt_lb_endpoint_info;

/* Copy what the registry holds about one endpoint. MRT_LB_ENOTFOUND, MRT_LB_EINVAL. */
int mrt_lb_registry_get(const mrt_lb_registry *r, const uint8_t node_id[MRT_LB_NODE_ID_LEN],
                        mrt_lb_endpoint_info *out);
/* Number of registered endpoints. */
uint32_t mrt_lb_registry_count(const mrt_lb_registry *r);

/*
 * The id of zone `name`, interning it if new (a client zone may have no
 * endpoint). Zone ids are permanent for the registry's lifetime.
 */
int mrt_lb_registry_zone(mrt_lb_registry *r, const char *name, uint16_t *zone_out);

/*
 * Declare a set of required tags that requests will use; snapshots
 * precompute the pool of endpoints carrying all of them (per zone too), so
 * a filtered select costs the same as an unfiltered one. *mask_out is the
 * value for mrt_lb_request.required_tags, valid while the filter stays
 * declared. Declaring the same set twice counts twice. Tags no endpoint
 * carries yet take a bit (ETOOMANYTAGS past 64). Errors: EINVAL (n == 0),
 * ENAME, ETOOMANYTAGS, ECAPACITY.
 */
int mrt_lb_registry_declare_filter(mrt_lb_registry *r, const char *const *tags, size_t n,
                                   uint64_t *mask_out);
/* Drop one declaration of `mask`. ENOTFOUND if it is not declared. */
int mrt_lb_registry_undeclare_filter(mrt_lb_registry *r, uint64_t mask);
/* The bit of tag `name`; ENOTFOUND if no endpoint or filter uses it. */
int mrt_lb_registry_tag_bit(const mrt_lb_registry *r, const char *name, uint64_t *bit_out);

/*
 * A breaker opened on some shard (drained with mrt_lb_shard_drain_reports).
 * The control plane feeds it to the registry, which keeps the endpoint out
 * of snapshots compiled before opened_at + recovery, so every shard stops
 * sending to it with the next snapshot.
 */
typedef struct mrt_lb_breaker_report {
    uint32_t endpoint_id;
    uint32_t generation;
    uint64_t opened_at_ns;
} mrt_lb_breaker_report;

/* Apply a report. ENOTFOUND when the endpoint was removed (id/generation mismatch). */
int mrt_lb_registry_apply_report(mrt_lb_registry *r, const mrt_lb_breaker_report *rep);
/*
 * Earliest tripped_until after now_ns over all endpoints, or UINT64_MAX:
 * when the control plane should compile again to bring endpoints back.
 */
uint64_t mrt_lb_registry_next_change_ns(const mrt_lb_registry *r, uint64_t now_ns);

/* ------------------------------------------------------------------ snapshot */

typedef struct mrt_lb_snapshot mrt_lb_snapshot;

/*
 * Compile an immutable snapshot of the registry as of now_ns (endpoints
 * tripped until later are left out). Allocated from `a` (NULL = default
 * arena) in one block; cost grows with N x vnodes for consistent
 * hash, W for smooth WRR, and the Maglev table size (see the benchmark).
 */
int mrt_lb_registry_compile(mrt_lb_registry *r, uint64_t now_ns, const mrt_allocator *a,
                            mrt_lb_snapshot **out);
/* Free a snapshot that was never published (a domain frees published ones). */
void mrt_lb_snapshot_free(mrt_lb_snapshot *s);

/* Available endpoints in the snapshot (the slots), in node-id order. */
uint32_t mrt_lb_snapshot_size(const mrt_lb_snapshot *s);
/* Registry compile counter: strictly increasing per registry. */
uint64_t mrt_lb_snapshot_version(const mrt_lb_snapshot *s);
/* Bytes held by the snapshot. */
size_t mrt_lb_snapshot_bytes(const mrt_lb_snapshot *s);
/* Its configuration. */
const mrt_lb_config *mrt_lb_snapshot_config(const mrt_lb_snapshot *s);

typedef struct mrt_lb_slot_info {
    const uint8_t *node_id;      /* 32 bytes inside the snapshot */
    uint32_t endpoint_id;
    uint32_t generation;
    uint32_t weight;             /* effective: weight x health factor, in half units (x2) */
    uint16_t zone;
    uint64_t tags;
    double load_score;
    uint64_t user_data;
} mrt_lb_slot_info;

/* Describe slot `slot` (< size). MRT_LB_EINVAL out of range. */
int mrt_lb_snapshot_slot(const mrt_lb_snapshot *s, uint32_t slot, mrt_lb_slot_info *out);
/* The slot of a stable endpoint id, or -1 if it is not in this snapshot. */
int64_t mrt_lb_snapshot_slot_of(const mrt_lb_snapshot *s, uint32_t endpoint_id);
/* True when smooth-WRR weights of some pool were scaled down to fit wrr_max_period. */
bool mrt_lb_snapshot_wrr_quantized(const mrt_lb_snapshot *s);

/* ------------------------------------------------------------------ shard state */

typedef struct mrt_lb_shard mrt_lb_shard;

/*
 * Per-shard state. `seed` seeds the shard's PRNG once (give each shard a
 * different one). Owned and used by one thread.
 */
int mrt_lb_shard_create(const mrt_allocator *a, uint64_t seed, mrt_lb_shard **out);
void mrt_lb_shard_destroy(mrt_lb_shard *sh);

/*
 * Switch this shard to snapshot `s` (call at a poll-iteration boundary,
 * never inside a select). Per-endpoint state (reservations, EWMA, breaker)
 * is keyed by stable endpoint id and survives the switch; an id reused by a
 * new endpoint (new generation) starts fresh. Per-pool cursors restart at a
 * random offset and least-* trees are rebuilt: O(N) and it may allocate.
 * Nothing changes on error.
 */
int mrt_lb_shard_adopt(mrt_lb_shard *sh, const mrt_lb_snapshot *s);

/* The snapshot this shard adopted last (NULL before the first adopt). */
const mrt_lb_snapshot *mrt_lb_shard_snapshot(const mrt_lb_shard *sh);

/* What a request offers to the balancer. Zero-initialise, then set what applies. */
typedef struct mrt_lb_request {
    const void *routing_key;     /* hash key precedence: routing key, session id, request id */
    size_t routing_key_len;
    const void *session_id;
    size_t session_id_len;
    const void *request_id;
    size_t request_id_len;
    uint64_t required_tags;      /* 0, or a mask from mrt_lb_registry_declare_filter */
    uint16_t zone;               /* client zone id, or MRT_LB_ZONE_NONE (set it: 0 is a zone) */
} mrt_lb_request;

/* Initialise a request with no key, no tags and no zone preference. */
void mrt_lb_request_init(mrt_lb_request *rq);

#define MRT_LB_SEL_PROBE 0x1u     /* this selection is a half-open breaker's single probe */
#define MRT_LB_SEL_DONE 0x2u      /* completed */
#define MRT_LB_SEL_FALLBACK 0x4u  /* zone preference could not be met: picked from all zones */

/* The outcome of a select: hand it back to mrt_lb_complete exactly once. */
typedef struct mrt_lb_selection {
    const uint8_t *node_id;      /* inside the snapshot: valid until this shard adopts another */
    uint64_t user_data;
    uint32_t endpoint_id;        /* stable registry id */
    uint32_t generation;
    uint32_t slot;               /* slot in the snapshot it came from */
    uint32_t probe_epoch;
    uint8_t flags;               /* MRT_LB_SEL_* */
    uint8_t strategy;            /* strategy that picked (differs from config for adaptive
                                    and for keyless CH/Maglev, which use round robin) */
} mrt_lb_selection;

/*
 * Pick an endpoint for one request and reserve one in-flight slot on it.
 * `s` must be the snapshot this shard adopted (MRT_LB_ENOTADOPTED). `rq`
 * NULL = no key/zone/tags. Errors: ENOENDPOINTS, EALLUNHEALTHY, EFILTER,
 * ENOTAGMATCH, ENOZONE, ECIRCUITOPEN, EMAXCONN. No allocation, no lock,
 * no atomic, no clock read.
 */
int mrt_lb_select(const mrt_lb_snapshot *s, mrt_lb_shard *sh, const mrt_lb_request *rq,
                  uint64_t now_ns, mrt_lb_selection *out);

/*
 * Select for a burst of n requests (rq[i] -> out[i], status in rc[i]);
 * returns how many succeeded. Same results, in the same order, as n calls
 * of mrt_lb_select with the same now_ns. For consistent hash, Maglev and
 * adaptive it first hashes the keys and prefetches what each pick will
 * read, so the cache misses of a burst overlap instead of queueing (the
 * ring of 10,000 endpoints is 12 MB). `rq` NULL = n requests without
 * key/zone/tags. Same errors as mrt_lb_select; no allocation.
 */
size_t mrt_lb_select_burst(const mrt_lb_snapshot *s, mrt_lb_shard *sh, const mrt_lb_request *rq,
                           size_t n, uint64_t now_ns, mrt_lb_selection *out, int *rc);

/*
 * Report the outcome of a selection: releases its reservation, feeds the
 * latency EWMA and the breaker (now_ns stamps a breaker that opens). Marks
 * *sel done; a second call returns MRT_LB_ECOMPLETED and changes nothing.
 * MRT_LB_ESTALE when the probe was already reclaimed or the endpoint's id
 * now belongs to another endpoint (the reservation is still accounted).
 */
int mrt_lb_complete(mrt_lb_shard *sh, mrt_lb_selection *sel, bool ok, uint64_t latency_ns,
                    uint64_t now_ns);

/*
 * Release a selection that never reached its endpoint (the caller's own
 * backpressure, e.g. a full ring): its reservation goes, like a complete,
 * but no outcome is recorded — the latency EWMA and the breaker are left as
 * they were (a probe released this way leaves the endpoint half-open, to be
 * probed by the next select). Marks *sel done; ECOMPLETED / ESTALE as for
 * mrt_lb_complete.
 */
int mrt_lb_release(mrt_lb_shard *sh, mrt_lb_selection *sel);

/*
 * Move up to `max` breaker-open reports (oldest first) into out; returns
 * how many. The buffer holds 64; older reports are dropped (counted in
 * stats) when the shard does not drain.
 */
size_t mrt_lb_shard_drain_reports(mrt_lb_shard *sh, mrt_lb_breaker_report *out, size_t max);

typedef struct mrt_lb_shard_stats {
    uint64_t selects;            /* successful selects */
    uint64_t select_errors;
    uint64_t completes;          /* accepted completes, stale included */
    uint64_t stale_completes;
    uint64_t outstanding;        /* selections not yet completed (reclaimed probes excluded) */
    uint64_t breaker_opens;
    uint64_t probes;             /* half-open probes admitted */
    uint64_t probes_reclaimed;   /* probes never completed within a recovery window */
    uint64_t reports_dropped;
    uint64_t zone_fallbacks;     /* selects that fell back from the client zone to all zones */
    uint64_t skipped_candidates; /* candidates passed over (breaker open / at max) */
    uint64_t adopts;
} mrt_lb_shard_stats;

/* Copy this shard's counters (owner thread). */
void mrt_lb_shard_stats_get(const mrt_lb_shard *sh, mrt_lb_shard_stats *out);
/* In-flight reservations of endpoint `endpoint_id` on this shard. */
uint32_t mrt_lb_shard_inflight(const mrt_lb_shard *sh, uint32_t endpoint_id);

typedef enum mrt_lb_breaker_state {
    MRT_LB_BREAKER_CLOSED = 0,
    MRT_LB_BREAKER_HALF_OPEN = 1,     /* recovery elapsed: the next select is the probe */
    MRT_LB_BREAKER_OPEN = 2,
    MRT_LB_BREAKER_PROBING = 3,       /* half-open, its single probe in flight */
} mrt_lb_breaker_state;

typedef struct mrt_lb_endpoint_shard_info {
    mrt_lb_breaker_state breaker;
    uint32_t consecutive_failures;
    uint32_t inflight;
    uint64_t opened_at_ns;
    double latency_ewma_ns;
} mrt_lb_endpoint_shard_info;

/*
 * This shard's view of one endpoint. Breaker transitions that are due by
 * now_ns (open -> half-open, abandoned probe reclaimed) are applied first,
 * exactly as the next select would. MRT_LB_EINVAL for an unknown id.
 */
int mrt_lb_shard_endpoint(mrt_lb_shard *sh, uint32_t endpoint_id, uint64_t now_ns,
                          mrt_lb_endpoint_shard_info *out);

/* ------------------------------------------------------------------ publication */

/*
 * Publication domain: how snapshots reach shards and when old ones die.
 * Quiescent-state based reclamation over C11 atomics, no locks:
 *
 *   writer (the control plane, one thread):
 *     publish(s):  current := s (seq_cst exchange); epoch += 1 (seq_cst);
 *                  the previous snapshot is retired with the new epoch.
 *     reclaim():   min_seen := min over online readers of seen[i] (seq_cst
 *                  loads); every retired snapshot whose retire epoch is
 *                  <= min_seen is freed.
 *   reader i (a shard, at its poll-iteration boundary, never inside select):
 *     sync(i, shard): e := epoch; if unchanged since its last sync, done
 *                  (one load, no store). Else load current (still covered
 *                  by the reader's previous announcement), switch the
 *                  shard state to it, and only then seen[i] := e
 *                  (seq_cst). A failed switch announces nothing, so the
 *                  snapshot the shard keeps stays alive.
 *     offline(i):  the reader holds no snapshot (idle or exiting): the
 *                  shard it synced is detached (no snapshot pointer kept);
 *                  the next sync announces first, then loads current.
 *
 * Whether a shard already holds the current snapshot is decided by the
 * snapshot's publish id (process-unique, never reused), not its address:
 * a snapshot freed while its reader was offline may have given its address
 * to the one published next.
 *
 * Why it is safe: a snapshot S retired by the publish that bumped the
 * epoch to r is freed only once every online reader announced seen >= r.
 * A reader announces e only after switching to a snapshot it loaded after
 * reading e; that load came after the exchange of the publish that made e
 * (fetch_add follows the exchange), so S is no longer its snapshot, and
 * its every use of S happened before the seq_cst store the writer's load
 * synchronises with. Conversely the snapshot it loaded is retired, if
 * ever, by a bump to more than e, so its announcement protects it. Select
 * itself touches no atomic: it uses the shard's plain pointer. Cost per
 * poll iteration: one load of a line that changes once per publish.
 */
typedef struct mrt_lb_domain mrt_lb_domain;

/* A domain for `nreaders` readers (1..1024), all initially offline, with no snapshot. */
int mrt_lb_domain_create(const mrt_allocator *a, uint32_t nreaders, mrt_lb_domain **out);
/*
 * Free the domain, its current snapshot and every retired one. Every
 * reader must have stopped using the domain (e.g. its thread joined).
 */
void mrt_lb_domain_destroy(mrt_lb_domain *d);
/*
 * Writer: make `s` current (the domain owns it from now on) and retire the
 * previous one; runs reclaim. Returns the new epoch (> 0) or MRT_LB_EINVAL
 * (also when `s` was published before, here or in another domain).
 */
int64_t mrt_lb_domain_publish(mrt_lb_domain *d, mrt_lb_snapshot *s);
/* Writer: free retired snapshots every online reader has moved past; returns how many. */
size_t mrt_lb_domain_reclaim(mrt_lb_domain *d);
/*
 * Reader `reader`, at a quiescent point: bring shard state `sh` to the
 * current snapshot. Returns 1 when it switched, 0 when it was current (or
 * nothing is published yet), or an error from mrt_lb_shard_adopt, in which
 * case the shard keeps its snapshot and that snapshot stays alive (unless
 * the reader was offline: then it has none until a sync succeeds). After
 * it, mrt_lb_shard_snapshot(sh) is the snapshot to select from, valid
 * until this reader's next sync or offline.
 */
int mrt_lb_domain_sync(mrt_lb_domain *d, uint32_t reader, mrt_lb_shard *sh);
/*
 * Lower-level reader quiescent point for readers without shard state:
 * announce, then return the current snapshot (NULL if none yet), valid
 * until this reader's next adopt/sync/offline. The reader must not touch
 * the snapshot it held before this call.
 */
const mrt_lb_snapshot *mrt_lb_domain_adopt(mrt_lb_domain *d, uint32_t reader);
/*
 * Reader: hold nothing until the next sync/adopt, so reclamation need not
 * wait for it. The shard last synced through this reader is detached:
 * mrt_lb_shard_snapshot() is NULL and selects fail (MRT_LB_ENOTADOPTED)
 * until it syncs again; completes still release reservations and feed the
 * breakers. Call it before destroying that shard.
 */
void mrt_lb_domain_offline(mrt_lb_domain *d, uint32_t reader);

typedef struct mrt_lb_domain_stats {
    uint64_t epoch;
    uint64_t published;
    uint64_t retired;
    uint64_t freed;
    uint64_t pending;            /* retired, not yet freed */
} mrt_lb_domain_stats;

/* Writer-side counters. */
void mrt_lb_domain_stats_get(const mrt_lb_domain *d, mrt_lb_domain_stats *out);

#ifdef __cplusplus
}
#endif
#endif
