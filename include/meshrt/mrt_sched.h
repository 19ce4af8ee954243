/*
 * mrt_sched.h — the shard scheduler: where a daemon (a group member, a
 * migrating daemon) should run.
 *
 * One scheduler object describes the runtime's shards: each shard's
 * capability set (built-in tags numa:N, core:N, shard:N plus user tags from
 * configuration), its measured load (busy share, hosted daemons, ring
 * occupancy, latency) and its state (drained, failed). A placement request
 * combines
 *
 *   - a capability filter (mrt_sched_filter): required tags, all of which a
 *     shard must carry, and optional tags, each one present raising its
 *     score;
 *   - a placement filter (mrt_sched_score_fn): a score in [0, 1] per shard,
 *     or a veto; NULL scores every shard 1.0;
 *   - an exclusion set (shards of healthy members, failed shards): never
 *     chosen, never fallen back to;
 *   - a spread mode for groups: strict (distinct shards, or an error) or
 *     best-effort (distinct while possible, then least loaded).
 *
 * A shard is eligible when it is neither drained nor failed nor excluded,
 * carries every required tag and gets a finite, non-negative score. Among
 * the eligible shards the highest score wins, found in one pass (O(N), no
 * sort); equal scores go to the lower measured latency, then to the more
 * free capacity (mrt_sched_free_capacity), then to the lower shard id.
 *
 * Tags are interned once (configuration time) to bits, so the placement
 * path compares no strings. Placement allocates nothing: results go to
 * caller arrays and the scratch space lives in the scheduler object, which
 * is why one scheduler object must be used by one thread at a time (the
 * control plane's). Pure logic: no threads, no locks, no clock reads.
 */
#ifndef MESHRT_MRT_SCHED_H
#define MESHRT_MRT_SCHED_H

#include "meshrt/mrt_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-900 .. -999). */
enum mrt_sched_status {
    /* configuration / argument errors */
    MRT_SCHED_EINVAL = -900,       /* NULL pointer or an argument outside its documented domain */
    MRT_SCHED_ENOMEM = -901,       /* the allocator refused */
    MRT_SCHED_ESHARD = -902,       /* a shard index >= the scheduler's shard count */
    MRT_SCHED_ENAME = -903,        /* a tag is empty, too long, not printable ASCII, or a
                                      malformed built-in (numa:/core:/shard: without a number) */
    MRT_SCHED_ERESERVED = -904,    /* a user tag uses a built-in prefix (numa:, core:, shard:) */
    MRT_SCHED_ETOOMANYTAGS = -905, /* more than MRT_SCHED_MAX_TAGS distinct user tags */
    MRT_SCHED_ELOAD = -906,        /* a load field is NaN, infinite or outside its range */
    MRT_SCHED_EFILTERFULL = -907,  /* more than MRT_SCHED_MAX_OPT_BUILTIN optional built-in tags */
    /* placement errors (nothing chosen, nothing written) */
    MRT_SCHED_ENOCANDIDATE = -920, /* no shard is eligible (filter, veto, drain, failure) */
    MRT_SCHED_EEXCLUDED = -921,    /* shards pass the filter (not drained/failed), but all are excluded */
    MRT_SCHED_ESPREAD = -922,      /* strict spread: more members than eligible distinct shards */
};

/* Name of a scheduler status code; NULL outside -900..-999. */
const char *mrt_sched_strerror(int status);

#define MRT_SCHED_MAX_SHARDS (1u << 16)
#define MRT_SCHED_MAX_TAGS 64       /* distinct user tags per scheduler: one bit each */
#define MRT_SCHED_TAG_MAX 63        /* bytes of a tag name */
#define MRT_SCHED_MAX_OPT_BUILTIN 8 /* optional built-in tags (numa:N ...) per filter */
#define MRT_SCHED_NONE UINT32_MAX   /* "no shard" / "no NUMA node or core known" */
#define MRT_SCHED_VETO (-1.0)       /* a score function's veto (any negative value vetoes) */
#define MRT_SCHED_HOSTED_REF 8.0    /* default hosted-daemon reference of the capacity formula */

typedef struct mrt_sched mrt_sched;

/*
 * Create a scheduler for `nshards` shards (1 .. MRT_SCHED_MAX_SHARDS),
 * allocating through `a` (NULL: the calling thread's default arena). Each
 * shard starts with built-in tags shard:<index> only (NUMA node and core
 * unknown, see mrt_sched_shard_set_topology), no user tags, zero load, free
 * capacity 1, latency unmeasured, not drained, not failed.
 * MRT_SCHED_EINVAL (bad count or NULL out) or MRT_SCHED_ENOMEM.
 */
int mrt_sched_create(const mrt_allocator *a, uint32_t nshards, mrt_sched **out);

/* Free a scheduler (NULL is a no-op). */
void mrt_sched_destroy(mrt_sched *s);

/* Number of shards the scheduler was created for (0 for NULL). */
uint32_t mrt_sched_shard_count(const mrt_sched *s);

/*
 * Set the built-in tags numa:<numa> and core:<core> of `shard`;
 * MRT_SCHED_NONE leaves that tag absent. MRT_SCHED_EINVAL / ESHARD.
 */
int mrt_sched_shard_set_topology(mrt_sched *s, uint32_t shard, uint32_t numa, uint32_t core);

/*
 * Intern user tag `name` (configuration time; idempotent) and return its bit
 * in *bit (0 .. 63) when bit is not NULL. Names: 1..MRT_SCHED_TAG_MAX bytes
 * of printable ASCII without spaces (MRT_SCHED_ENAME), not starting with a
 * built-in prefix (MRT_SCHED_ERESERVED). MRT_SCHED_ETOOMANYTAGS past 64.
 */
int mrt_sched_tag_intern(mrt_sched *s, const char *name, unsigned *bit);

/* Give user tag `name` to `shard` (interning it). Errors as mrt_sched_tag_intern, plus ESHARD. */
int mrt_sched_shard_add_tag(mrt_sched *s, uint32_t shard, const char *name);

/*
 * Take user tag `name` from `shard` (absent or never interned: no-op,
 * MRT_OK). Name errors as mrt_sched_tag_intern, plus EINVAL / ESHARD.
 */
int mrt_sched_shard_remove_tag(mrt_sched *s, uint32_t shard, const char *name);

/*
 * Whether `shard` carries tag `name`, built-in or user, in *has.
 * MRT_SCHED_EINVAL / ESHARD / ENAME.
 */
int mrt_sched_shard_has_tag(const mrt_sched *s, uint32_t shard, const char *name, bool *has);

/*
 * A shard's load, filled by the caller from live state (the runtime's shard
 * statistics) and given with mrt_sched_shard_set_load().
 */
typedef struct mrt_sched_load {
    double busy;        /* share of the last interval's cycles spent working, [0, 1] */
    uint32_t hosted;    /* daemons hosted on the shard */
    uint32_t ring_used; /* messages waiting in its inbound ring(s), <= ring_size */
    uint32_t ring_size; /* capacity of those rings; 0 = unknown (no ring term) */
    double latency_ns;  /* measured latency to the shard (EWMA); 0 = not measured; >= 0 */
} mrt_sched_load;

/*
 * Free capacity of a load, in [0, 1]:
 *
 *   free = (1 - busy) x (1 - ring_used / ring_size) x H / (H + hosted)
 *
 * with H = hosted_ref (> 0; MRT_SCHED_HOSTED_REF is the default). A product,
 * because a shard saturated on any one resource — every cycle busy, or a
 * full inbound ring — can take nothing more however idle the others are;
 * the hosted term halves the capacity at H daemons and never reaches 0.
 * MRT_SCHED_EINVAL (NULL, bad hosted_ref) or MRT_SCHED_ELOAD (busy outside
 * [0, 1] or not finite, ring_used > ring_size with ring_size > 0, latency
 * negative or not finite).
 */
int mrt_sched_free_capacity(const mrt_sched_load *load, double hosted_ref, double *out);

/*
 * Set the hosted-daemon reference H of the capacity formula (> 0, finite;
 * default MRT_SCHED_HOSTED_REF). The stored capacities are recomputed from
 * the shards' last loads (configuration time: O(N)).
 */
int mrt_sched_set_hosted_ref(mrt_sched *s, double hosted_ref);

/*
 * Record `shard`'s load (validated as in mrt_sched_free_capacity; on error
 * the shard keeps its previous load). Drain and failure are not part of the
 * load: a load refresh never undoes an operator's drain.
 */
int mrt_sched_shard_set_load(mrt_sched *s, uint32_t shard, const mrt_sched_load *load);

/* `shard`'s current free capacity in *out (mrt_sched_free_capacity of its last load). */
int mrt_sched_shard_capacity(const mrt_sched *s, uint32_t shard, double *out);

/* Drain (true) or undrain `shard`: a drained shard gets no new placements. */
int mrt_sched_shard_set_drained(mrt_sched *s, uint32_t shard, bool drained);

/* Mark `shard` failed (true) or recovered: a failed shard gets no new placements. */
int mrt_sched_shard_set_failed(mrt_sched *s, uint32_t shard, bool failed);

/*
 * A capability filter, in caller storage, compiled against one scheduler's
 * tag table (it holds tag bits, not names). mrt_sched_filter_init gives the
 * empty filter, which every shard passes.
 */
typedef struct mrt_sched_filter {
    uint64_t required;        /* user tag bits that must all be present */
    uint64_t optional;        /* user tag bits that each raise the score */
    uint32_t req_numa;        /* required numa:N, MRT_SCHED_NONE = any */
    uint32_t req_core;        /* required core:N, MRT_SCHED_NONE = any */
    uint32_t req_shard;       /* required shard:N, MRT_SCHED_NONE = any */
    bool never;               /* two different values of one required built-in: nothing matches */
    uint8_t n_opt_builtin;    /* optional built-in tags used in opt_builtin[] */
    struct {
        uint8_t kind;         /* 0 numa, 1 core, 2 shard */
        uint32_t value;
    } opt_builtin[MRT_SCHED_MAX_OPT_BUILTIN];
} mrt_sched_filter;

/* The empty filter (no tag required or optional). EINVAL for NULL. */
int mrt_sched_filter_init(mrt_sched_filter *f);

/*
 * Require tag `name` (built-in numa:N / core:N / shard:N, or a user tag,
 * interned if new so a tag given to shards later still counts). Errors as
 * mrt_sched_tag_intern; the filter is unchanged on error.
 */
int mrt_sched_filter_require(mrt_sched *s, mrt_sched_filter *f, const char *name);

/*
 * Make tag `name` optional: a shard carrying it scores higher (see
 * mrt_sched_request). Errors as mrt_sched_filter_require, plus
 * MRT_SCHED_EFILTERFULL past MRT_SCHED_MAX_OPT_BUILTIN built-in ones.
 */
int mrt_sched_filter_prefer(mrt_sched *s, mrt_sched_filter *f, const char *name);

/* Whether `shard` passes filter `f` (required tags only) in *pass. */
int mrt_sched_filter_matches(const mrt_sched *s, const mrt_sched_filter *f, uint32_t shard,
                             bool *pass);

/*
 * A placement filter: the score of `shard` for this request, called once per
 * shard per placement call (the local shard of a migration that misses the
 * fast path: twice), only for shards that passed the
 * capability filter and are not drained, failed or excluded. `free_capacity`
 * is the shard's current free capacity. Return a score in [0, 1] (higher is
 * better; above 1 counts as 1), or a negative value (MRT_SCHED_VETO) to
 * veto. NaN and infinite scores are dropped like vetoes. Must not call back
 * into the same scheduler.
 */
typedef double (*mrt_sched_score_fn)(void *ctx, uint32_t shard, double free_capacity);

typedef enum mrt_sched_spread {
    MRT_SCHED_SPREAD_STRICT = 0,      /* k distinct shards, or MRT_SCHED_ESPREAD */
    MRT_SCHED_SPREAD_BEST_EFFORT = 1, /* distinct while possible, then the least loaded */
} mrt_sched_spread;

/*
 * One placement request. The score a shard competes with is
 *
 *   score = placement x (1 + optional tags present) / (1 + optional tags asked)
 *
 * where placement is the score function's value (1.0 without one), so with
 * no optional tags the score is the placement score itself.
 */
typedef struct mrt_sched_request {
    const mrt_sched_filter *filter; /* NULL: no capability constraint */
    mrt_sched_score_fn score;       /* NULL: every shard scores 1.0 */
    void *score_ctx;
    const uint32_t *exclude;        /* shards never chosen (may repeat); NULL when nexclude = 0 */
    uint32_t nexclude;
    mrt_sched_spread spread;        /* for k > 1 */
} mrt_sched_request;

/* A request with no filter, no score function, no exclusion, strict spread. */
void mrt_sched_request_init(mrt_sched_request *rq);

/*
 * Place `k` (>= 1) members: out[0..k) receives k shard indices, in the
 * order they were chosen (best first), or nothing is written and an error
 * is returned:
 *   MRT_SCHED_ENOCANDIDATE  no eligible shard at all;
 *   MRT_SCHED_EEXCLUDED     every shard that passes the filter and is neither drained
 *                           nor failed is excluded (scores are not consulted);
 *   MRT_SCHED_ESPREAD       strict spread and k > the eligible shards;
 *   MRT_SCHED_EINVAL / ESHARD  bad arguments (an excluded index out of range).
 * Strict: k distinct shards, each the best of those not yet chosen.
 * Best-effort: distinct while eligible unchosen shards remain; after that
 * each member goes to the eligible shard with the most free capacity,
 * counting the members this call already put there as hosted daemons (ties:
 * score, latency, id). Excluded shards are never chosen in either mode.
 * One scoring pass, then one pass keeping the k best in out[] (O(N) plus
 * the insertions); each overflow member of best-effort is one more O(N)
 * pass. No allocation.
 */
int mrt_sched_place(mrt_sched *s, const mrt_sched_request *rq, uint32_t k, uint32_t *out);

/*
 * The best eligible shard among `cands[0..n)` (e.g. the shards of equally
 * fresh standbys), ranked as in mrt_sched_place; the request's exclusion
 * set still applies. Errors as mrt_sched_place (n = 0: ENOCANDIDATE).
 */
int mrt_sched_pick_from(mrt_sched *s, const mrt_sched_request *rq, const uint32_t *cands,
                        uint32_t n, uint32_t *out);

typedef enum mrt_sched_reason {
    MRT_SCHED_REASON_LOCAL = 0, /* the local fast path */
    MRT_SCHED_REASON_BEST = 1,  /* the best-ranked eligible shard */
} mrt_sched_reason;

/*
 * Where to migrate a daemon from shard `source` (notes §7.3, corrected):
 * the candidates are the eligible shards (as for mrt_sched_place) other than
 * `source`. If `local` (the deciding shard; MRT_SCHED_NONE for none) is not
 * the source and is a candidate whose score is finite and > 0, it is chosen
 * at once (reason LOCAL) — a 0, vetoed or non-finite local score never takes
 * the fast path. Otherwise the best-ranked candidate (reason BEST).
 * Errors as mrt_sched_place; `source` must be a valid shard; `reason` may be
 * NULL.
 */
int mrt_sched_migration_target(mrt_sched *s, const mrt_sched_request *rq, uint32_t source,
                               uint32_t local, uint32_t *out, mrt_sched_reason *reason);

#ifdef __cplusplus
}
#endif
#endif
