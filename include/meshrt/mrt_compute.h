/*
 * mrt_compute.h — an embedder's daemons on the shards.
 *
 * An application registers daemon types, spawns daemons on shards (a given
 * shard, or one a placement function picks), sends them events from any
 * thread, subscribes daemons to each other's outputs, and drains the
 * outputs addressed to it (egress) from its own thread, each with its
 * causal link so it can validate chains.
 *
 * Layering: compute sits on services (mrt_services.h: buffer pools,
 * handles, host tables, completions) and is composed by the runtime, which
 * creates it before the shards start (mrt_runtime_compute()) and runs its
 * per-shard part on every shard thread.
 *
 * Threads:
 *  - "control" functions (registration, spawn, stop, subscribe) are called
 *    from one application thread at a time, never from a shard; those
 *    marked "after start" post a command to the owning shard's control ring
 *    and wait for its answer (the shard does the work in its own arena).
 *  - mrt_compute_inject and mrt_compute_egress_poll: any one non-shard
 *    thread each (injection: any number of threads).
 *  - mrt_compute_send: on a shard thread, from a handler or a hook.
 * Nothing on the event path allocates, locks or reads a clock.
 *
 * Event flow for one event:
 *   inject/send -> the daemon's shard (ring) -> host deliver -> outputs ->
 *   each subscription of that daemon: a daemon (ring), the balancer-routed
 *   set (select on the sending shard; completion back), or egress.
 * Every event is delivered or handed back with a reason (never dropped):
 * see mrt_compute_stats.
 */
#ifndef MESHRT_MRT_COMPUTE_H
#define MESHRT_MRT_COMPUTE_H

#include "meshrt/mrt_balancer.h"
#include "meshrt/mrt_core.h"
#include "meshrt/mrt_daemon.h"
#include "meshrt/mrt_services.h"
#include "meshrt/mrt_shard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-800 .. -899, MRT_ERANGE_COMPUTE_MIN in mrt_core.h). */
enum mrt_compute_status {
    MRT_CP_ENOTYPE = -800,      /* no daemon type with this id */
    MRT_CP_ENODAEMON = -801,    /* no daemon with this id on the named shard */
    MRT_CP_ENOPLACE = -802,     /* the placement function found no eligible shard */
    MRT_CP_ESTOPPED = -803,     /* the runtime is draining or stopped: nothing new accepted */
    MRT_CP_ECREATE = -804,      /* the type's create callback failed (its status is logged in stats) */
    MRT_CP_ELIMIT = -805,       /* a fixed table is full (types, subscriptions per daemon) */
    MRT_CP_EEGRESS = -806,      /* egress and its deferral queue full: the output was handed back */
    MRT_CP_ESTARTED = -807,     /* only before the runtime starts */
    MRT_CP_ENOTSTARTED = -808,  /* only after the runtime started */
};

/* Name of a compute status code; NULL outside -800..-899. */
const char *mrt_compute_strerror(int status);

typedef struct mrt_compute mrt_compute;

/* A daemon's address: its id (the host's origin hash) and the shard that hosts it. */
typedef struct mrt_compute_ref {
    uint64_t id;
    uint16_t shard;
} mrt_compute_ref;

#define MRT_COMPUTE_ANY_SHARD 0xffffu   /* spawn: let the placement function pick */
#define MRT_COMPUTE_MAX_TYPES 64u
#define MRT_COMPUTE_MAX_SUBS 8u         /* subscriptions per daemon */

/*
 * A daemon type. `vt` is the daemon's vtable (mrt_daemon.h). `create` runs
 * on the owning shard's thread for each spawn and returns the instance's
 * state, allocated from `a` (the shard's arena); `destroy` runs on the same
 * shard at stop or runtime teardown. `arg`/`arg_len` are the spawn's bytes
 * (at most MRT_COMPUTE_MAX_ARG; the caller's memory, valid during create
 * only: keep a copy in the state). A type whose state is a plain struct
 * may leave `create` NULL and set `state_size`: each instance then gets
 * state_size zeroed bytes from the shard's arena (state NULL when 0: a
 * stateless daemon), freed after `destroy` (which may also be NULL).
 * Host sizing: 0 takes the host defaults (mrt_host_config); max_outputs
 * and payload_bytes also size the deferral room each delivery reserves
 * per subscription (mrt_compute_subscribe).
 */
#define MRT_COMPUTE_MAX_ARG 256u
typedef struct mrt_compute_type {
    const char *name;
    const mrt_daemon_vtable *vt;
    int (*create)(void *type_ctx, const mrt_allocator *a, const void *arg, size_t arg_len,
                  void **state);
    void (*destroy)(void *type_ctx, const mrt_allocator *a, void *state);
    void *ctx;
    uint32_t max_outputs;
    size_t payload_bytes;
    uint32_t max_origins;
    size_t state_size;            /* with create NULL: zeroed state per instance (added last) */
} mrt_compute_type;

/*
 * Register a daemon type (control, before start). *id receives its index.
 * MRT_EINVAL (NULL name/vt, vt->process NULL, create set together with
 * state_size), MRT_SVC_EEXIST (name taken), MRT_CP_ELIMIT, MRT_CP_ESTARTED.
 */
int mrt_compute_register_type(mrt_compute *c, const mrt_compute_type *t, uint16_t *id);

/*
 * One instance's state as a spawn makes it, for types that wrap another
 * (the groups do): t->create, or t->state_size zeroed bytes from `a`
 * (*state NULL when 0). MRT_OK, the create's status, MRT_ENOMEM, or
 * MRT_EINVAL (t or state NULL, arg NULL with arg_len > 0).
 */
int mrt_compute_state_create(const mrt_compute_type *t, const mrt_allocator *a, const void *arg,
                             size_t arg_len, void **state);
/*
 * Release what mrt_compute_state_create made: t->destroy if set, then the
 * zeroed block if any. t NULL: nothing.
 */
void mrt_compute_state_destroy(const mrt_compute_type *t, const mrt_allocator *a, void *state);

/*
 * Placement: given the shards' loads, the shard to host a new daemon of
 * type `type`, or a negative status (MRT_CP_ENOPLACE). The default picks
 * the shard hosting the fewest daemons, lowest index on ties; in a runtime
 * it goes through the scheduler (mrt_runtime_sched: drained and failed
 * shards excluded, ties to its ranking).
 */
typedef int (*mrt_compute_place_fn)(void *ctx, uint16_t type, const uint32_t *hosted,
                                    unsigned nshards);
/* Replace the placement function (control, before start); NULL restores the default. */
int mrt_compute_set_placement(mrt_compute *c, mrt_compute_place_fn fn, void *ctx);

/*
 * Spawn a daemon of type `type` on `shard` (or MRT_COMPUTE_ANY_SHARD)
 * (control, after start). Its identity is derived from `key` (32 bytes,
 * see mrt_host_origin_from_key) or, when key is NULL, from the type's name
 * and a per-runtime spawn counter. *out receives its address. Returns when
 * the daemon is hosted and can receive events. MRT_CP_ENOTYPE,
 * MRT_SHARD_EDEST, MRT_CP_ENOPLACE, MRT_SVC_EEXIST (id already hosted),
 * MRT_CP_ECREATE, MRT_ENOMEM, MRT_CP_ESTOPPED, MRT_CP_ENOTSTARTED.
 */
int mrt_compute_spawn(mrt_compute *c, uint16_t type, uint16_t shard, const uint8_t *key,
                      const void *arg, size_t arg_len, mrt_compute_ref *out);

/*
 * mrt_compute_spawn continuing a chain: the daemon's host resumes after
 * resume->head (its next link carries resume->next_parent) instead of
 * starting at genesis — a daemon re-created under the same identity (key)
 * as a stopped one, whose chain mrt_compute_stop_chain returned. resume
 * NULL or without a head: genesis, as mrt_compute_spawn. Codes of
 * mrt_compute_spawn, plus MRT_DAEMON_EORIGIN (the chain is another
 * origin's than the key's).
 */
int mrt_compute_spawn_resume(mrt_compute *c, uint16_t type, uint16_t shard, const uint8_t *key,
                             const void *arg, size_t arg_len, const mrt_causal_chain *resume,
                             mrt_compute_ref *out);

/*
 * mrt_compute_stop that also returns the stopped host's chain (its head is
 * the last output the daemon emitted) into *chain (may be NULL), for a
 * later mrt_compute_spawn_resume. Codes of mrt_compute_stop.
 */
int mrt_compute_stop_chain(mrt_compute *c, mrt_compute_ref d, mrt_causal_chain *chain);

/*
 * Run fn(ctx, host, state) on daemon d's shard, between two deliveries (no
 * outputs pending), and return its status (control, after start; blocks
 * until it ran). For operations on a hosted daemon that the API has no call
 * for: snapshot, restore, replay (the daemon groups' standby sync and
 * promotion). fn must not block. MRT_CP_ENODAEMON, MRT_CP_ESTOPPED,
 * MRT_CP_ENOTSTARTED, MRT_EINVAL.
 */
typedef int (*mrt_compute_host_fn)(void *ctx, mrt_host *host, void *state);
int mrt_compute_call(mrt_compute *c, mrt_compute_ref d, mrt_compute_host_fn fn, void *ctx);

/*
 * Stop a daemon (control, after start): it receives nothing more (events
 * still arriving are handed back MRT_SVC_HB_NO_HOST), its host and state
 * are destroyed on its shard. MRT_CP_ENODAEMON, MRT_CP_ESTOPPED.
 */
int mrt_compute_stop(mrt_compute *c, mrt_compute_ref d);

/* Where a daemon's outputs go: each subscription gets every output. */
typedef enum mrt_compute_sink_kind {
    MRT_COMPUTE_TO_DAEMON = 0,  /* to one daemon (target) */
    MRT_COMPUTE_TO_SET = 1,     /* to the balancer-routed set: the sending shard selects */
    MRT_COMPUTE_TO_EGRESS = 2,  /* to the application (mrt_compute_egress_poll) */
} mrt_compute_sink_kind;

/*
 * Subscribe: route every output of `from` to `kind` (`target` is read for
 * MRT_COMPUTE_TO_DAEMON only; it is not checked to exist: outputs for a
 * daemon that is not there are handed back at its shard) (control, after
 * start). MRT_CP_ENODAEMON (no `from`), MRT_CP_ELIMIT (MRT_COMPUTE_MAX_SUBS,
 * or one delivery's outputs times the subscriptions to one deferral queue
 * would not fit it: it could never be admitted), MRT_SHARD_EDEST (target
 * shard), MRT_EINVAL (kind; TO_SET without a set), MRT_CP_ESTOPPED,
 * MRT_CP_ENOTSTARTED.
 */
int mrt_compute_subscribe(mrt_compute *c, mrt_compute_ref from, mrt_compute_sink_kind kind,
                          mrt_compute_ref target);

/*
 * The balancer-routed set: daemons that MRT_COMPUTE_TO_SET outputs are
 * spread over by each shard's balancer (on the emitting shard), with the
 * runtime's strategy; completions flow back to the selecting shard and
 * feed least-connections, latency and the breaker. Add a member (control,
 * after start; weight 0: the default): routed to once the next
 * mrt_runtime_control_tick has published it. MRT_CP_ENODAEMON, MRT_ESTATE
 * (the runtime has no set), MRT_LB_EDUPLICATE (already a member), the
 * registry's other codes, MRT_CP_ESTOPPED, MRT_CP_ENOTSTARTED.
 */
int mrt_compute_set_add(mrt_compute *c, mrt_compute_ref d, uint32_t weight);

/*
 * Inject an event for daemon `d` from a thread that is not a shard (any
 * thread). The payload (at most the configured max) is copied into a
 * buffer of d's shard; the event's link is {origin = this runtime's
 * ingress origin, sequence = a per-runtime counter}. MRT_OK, or with
 * nothing accepted: MRT_SVC_ETOOBIG, MRT_SHARD_EFULL / MRT_SVC_EPOOL
 * (backpressure: retry), MRT_CP_ESTOPPED, MRT_SHARD_EDEST, MRT_EINVAL.
 */
int mrt_compute_inject(mrt_compute *c, mrt_compute_ref d, const void *payload, size_t len);

/*
 * Send an event for daemon `d` from shard code (a handler or a hook on the
 * shard of `ss`): codes of mrt_svc_send, MRT_SHARD_EFULL also while sends
 * deferred to d's shard wait (they go first), MRT_SHARD_EDEST, MRT_EINVAL
 * (no compute on this shard). When refused with backpressure,
 * mrt_compute_defer keeps it for the next iteration instead.
 */
int mrt_compute_send(mrt_svc_shard *ss, mrt_compute_ref d, const mrt_causal_link *link,
                     const void *payload, size_t len);

/*
 * Defer a send refused with backpressure: queued on this shard (bounded,
 * per destination shard; the payload is copied) and sent first in the next
 * iteration, in order. MRT_SHARD_EFULL when the deferral queue is full too:
 * the caller must push back its own input (a daemon's delivery is then
 * retried, never lost). MRT_SVC_ETOOBIG, MRT_SHARD_EDEST, MRT_EINVAL.
 */
int mrt_compute_defer(mrt_svc_shard *ss, mrt_compute_ref d, const mrt_causal_link *link,
                      const void *payload, size_t len);

/* One egressed output, valid during the callback only. */
typedef struct mrt_compute_output {
    mrt_compute_ref from;       /* the daemon that emitted it */
    mrt_causal_link link;       /* its causal link, as stamped by from's host */
    const void *payload;
    size_t len;
} mrt_compute_output;

typedef void (*mrt_compute_egress_fn)(void *ctx, const mrt_compute_output *o);

/*
 * Drain up to `max` egressed outputs (one application thread), calling fn
 * for each, in order per emitting daemon on one shard (each shard has its
 * own egress: a daemon re-created on another shard under the same identity,
 * e.g. a re-spawned group member, may have its new outputs drained before
 * its old incarnation's last ones — a receiver that validates its chain
 * puts it back in sequence order); the buffers go back to their shards
 * afterwards. Returns how many were drained. Keep polling while
 * injecting (a full egress pushes back on every daemon subscribed to it),
 * and not during mrt_runtime_stop, which drains egress on its own thread.
 */
size_t mrt_compute_egress_poll(mrt_compute *c, mrt_compute_egress_fn fn, void *ctx, size_t max);

/*
 * Where outputs still in egress go when the runtime stops (control, before
 * start): mrt_runtime_stop drains egress on its own thread so that every
 * buffer comes home, calling fn for each (NULL: none; they are then only
 * counted in mrt_compute_egress_unclaimed). MRT_CP_ESTARTED after start.
 */
int mrt_compute_set_egress_drain(mrt_compute *c, mrt_compute_egress_fn fn, void *ctx);
/* Outputs the stop drained from egress with no drain function set (any thread). */
uint64_t mrt_compute_egress_unclaimed(const mrt_compute *c);

/*
 * Called on the shard where an event or output could not be delivered or
 * routed (no such daemon, egress full, a refused route), with the reason's
 * status, before the event is released. `to` is the daemon it was for, the
 * emitter for egress, or {0, MRT_COMPUTE_ANY_SHARD} for the set. Counted in
 * handed_back either way.
 */
typedef void (*mrt_compute_handback_fn)(void *ctx, mrt_compute_ref to, const mrt_event *ev,
                                        int why);
/* Set the hand-back callback (control, before start; NULL: count only). MRT_CP_ESTARTED. */
int mrt_compute_set_handback(mrt_compute *c, mrt_compute_handback_fn fn, void *ctx);

/* Counters of one shard's compute part (any thread; published once per iteration). */
typedef struct mrt_compute_stats {
    uint64_t hosted;            /* daemons hosted now */
    uint64_t injected;          /* events accepted from ingress for this shard */
    uint64_t delivered;         /* events a daemon processed */
    uint64_t emitted;           /* outputs stamped */
    uint64_t routed_daemon;     /* outputs sent to a subscribed daemon */
    uint64_t routed_set;        /* outputs sent to the balancer-routed set */
    uint64_t egressed;          /* outputs handed to egress */
    uint64_t deferred;          /* sends deferred for backpressure */
    uint64_t pushed_back;       /* admissions refused (deferral room short): the event waited */
    uint64_t handed_back;       /* events or outputs handed back (all reasons) */
    uint64_t daemon_errors;     /* deliveries the daemon or host refused */
    uint64_t completions;       /* completions applied on this shard */
    uint64_t inflight;          /* selections awaiting their completion */
    uint64_t buffers_out;       /* this shard's pool buffers held elsewhere (0 after the drain) */
    uint64_t unsubscribed;      /* outputs of a daemon with no subscription (nowhere to go) */
    /* Control signals delivered to daemons (one per daemon told; see "Control signals"). */
    uint64_t bp_on;             /* MRT_DAEMON_CTL_BACKPRESSURE_ON (each level change counts) */
    uint64_t bp_off;            /* MRT_DAEMON_CTL_BACKPRESSURE_OFF */
    uint64_t drain_start;       /* MRT_DAEMON_CTL_DRAIN_START */
    uint64_t drain_finish;      /* MRT_DAEMON_CTL_DRAIN_FINISH */
} mrt_compute_stats;

/* Counters of shard `i`. MRT_EINVAL for i out of range. */
int mrt_compute_stats_get(const mrt_compute *c, unsigned i, mrt_compute_stats *out);

/*
 * Control signals: each shard tells its daemons (through their vtable's
 * on_control, on the shard thread) about its own state.
 *
 * Backpressure, computed once per poll iteration (no clock read, no
 * allocation): the fill of the shard's fullest deferral queue (entries or
 * payload bytes, mrt_compute_defer) or outbound FIFO
 * (mrt_shard_outbound_backlog), whichever is higher, in eighths. At 6/8 or
 * more every daemon of the shard gets BACKPRESSURE_ON with level 1 (6/8),
 * 2 (7/8) or 3 (full), again whenever the level changes; once the fill is
 * below 2/8, BACKPRESSURE_OFF. In between nothing changes (hysteresis: a
 * fill hovering at a threshold does not flap). A daemon spawned while its
 * shard is under backpressure gets ON with the current level.
 *
 * Drain: each daemon gets DRAIN_START and then DRAIN_FINISH, each at most
 * once: START when the runtime starts its stop (the first iteration that
 * drains) and FINISH after the drain, before it is destroyed; START then
 * FINISH when it is stopped (mrt_compute_stop); or when asked
 * (mrt_compute_drain_daemons). Compute keeps delivering events to a
 * draining daemon: the signals are advice to the daemon.
 */

/*
 * Deliver `kind` (MRT_DAEMON_CTL_DRAIN_START or _FINISH) to every daemon on
 * `shard` that has not received it yet (FINISH to one not yet started:
 * START first) (control, after start). Returns how many daemons received
 * `kind`, or MRT_EINVAL (another kind), MRT_SHARD_EDEST, MRT_CP_ESTOPPED,
 * MRT_CP_ENOTSTARTED.
 */
int mrt_compute_drain_daemons(mrt_compute *c, uint16_t shard, mrt_daemon_control kind);

#ifdef __cplusplus
}
#endif
#endif
