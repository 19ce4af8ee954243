/*
 * mrt_services.h — the per-shard services layer: what a shard offers the
 * code that runs on it, between shards/ and runtime/.
 *
 * One mesh-wide mrt_svc, created before the shards start, and one
 * mrt_svc_shard per shard, created on that shard's thread from its arena:
 *
 *   - subsystems: per-shard init/fini callbacks that run on the shard thread
 *     (so their state lives in the shard's arena), and composable
 *     per-iteration hooks (services owns the shard's single tick hook);
 *   - registered message types: a name and a handler give a type id;
 *     services maps ids onto the shard layer's type numbers;
 *   - events with their 32-byte causal link and a payload of up to
 *     max_payload bytes across shards: the payload travels in a buffer of
 *     the sending shard's pool, the 32-byte message carries a handle
 *     (owner, class, offset — not a pointer), and the receiver returns the
 *     buffer to its owner in bursts, so memory is always freed by its owner;
 *   - a host table per shard (daemon id -> mrt_host, O(1), keyed hash) and
 *     delivery with mrt_host_deliver; an unknown daemon is handed back with
 *     a reason, counted;
 *   - completions: an event routed by a balancer selection completes on the
 *     selecting shard (mrt_lb_complete) when it was delivered or failed on
 *     the owner, with the latency on the shards' coarse clocks.
 *
 *   - ingress (mrt_svc_inject_event): events with payload from any thread,
 *     in buffers of the destination shard's ingress pool;
 *   - egress (mrt_svc_egress_push / mrt_svc_egress_poll): outputs with their
 *     link to one application thread, buffers returned to their owner.
 *
 * Every per-event path (send, routed send, inject, delivery, return,
 * completion, egress) allocates nothing, takes no lock and reads no clock. Everything marked
 * "shard thread" must be called on the shard's own thread; "before start"
 * means before the first mrt_svc_shard_init.
 */
#ifndef MESHRT_MRT_SERVICES_H
#define MESHRT_MRT_SERVICES_H

#include "meshrt/mrt_balancer.h"
#include "meshrt/mrt_core.h"
#include "meshrt/mrt_daemon.h"
#include "meshrt/mrt_perf.h"
#include "meshrt/mrt_shard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-700 .. -799, MRT_ERANGE_SVC_MIN in mrt_core.h). */
enum mrt_svc_status {
    MRT_SVC_ETOOBIG = -700,    /* payload longer than max_payload: refused, never truncated */
    MRT_SVC_EPOOL = -701,      /* no free buffer of the payload's size class: backpressure */
    MRT_SVC_EINFLIGHT = -702,  /* the in-flight completion table is full: backpressure */
    MRT_SVC_ENOHOST = -703,    /* no host with this daemon id on this shard */
    MRT_SVC_EEXIST = -704,     /* the daemon id / type name / subsystem name is taken */
    MRT_SVC_ELIMIT = -705,     /* a fixed-capacity table is full (hosts, types, hooks, subsystems) */
    MRT_SVC_ENOBALANCER = -706, /* routed send without a balancer domain or adopted snapshot */
    MRT_SVC_ECONFIG = -707,    /* a mrt_svc_config field is out of range */
    MRT_SVC_ENOTYPE = -708,    /* no registered message type with this id or name */
};

/* Name of a services status code; NULL outside -700..-799. */
const char *mrt_svc_strerror(int status);

typedef struct mrt_svc mrt_svc;
typedef struct mrt_svc_shard mrt_svc_shard;

#define MRT_SVC_NAME_MAX 31          /* bytes of a type or subsystem name */
#define MRT_SVC_MAX_TYPES 61         /* registered message types */
#define MRT_SVC_MAX_SUBSYSTEMS 16
#define MRT_SVC_MAX_HOOKS 16         /* per-iteration hooks per shard */
#define MRT_SVC_LB_ERR_SLOTS 9u      /* select errors -420..-427, then "other" */
#define MRT_SVC_DEFAULT_MAX_PAYLOAD (64u * 1024u)
#define MRT_SVC_MAX_PAYLOAD_LIMIT (16u * 1024u * 1024u)

typedef struct mrt_svc_config {
    uint32_t max_payload;       /* largest event payload, 0..MRT_SVC_MAX_PAYLOAD_LIMIT (64 KiB) */
    uint32_t pool_buffers;      /* buffers per size class at most (1024) */
    uint32_t pool_class_bytes;  /* bytes per size class at most, which caps big classes (1 MiB) */
    uint32_t pool_min_buffers;  /* buffers per size class at least (16) */
    uint32_t host_capacity;     /* hosts per shard, 1..2^24 (1024) */
    uint32_t inflight;          /* pending routed selections per shard, 1..65536 (4096) */
    mrt_lb_domain *domain;      /* snapshot publication (borrowed); NULL: no routed sends */
    uint64_t lb_seed;           /* per-shard PRNG seeds derive from it (0: a fixed default) */
    uint16_t shard_type_base;   /* first shard message type services may use (32) */
    uint16_t shard_type_count;  /* how many, from the base; 3 are services' own (32) */
    /*
     * Ingress pool (mrt_svc_inject_event): per shard, the pool's size
     * classes again, each with min(ingress_buffers, ingress_class_bytes /
     * size) buffers, at least 1. 0 buffers: no ingress pool (inject refuses
     * with MRT_SVC_EPOOL). Defaults 256 and 256 KiB: about 1.8 MiB per shard.
     */
    uint32_t ingress_buffers;
    uint32_t ingress_class_bytes;
    uint32_t egress_ring;       /* egress ring capacity per shard, 1..2^24 (1024) */
} mrt_svc_config;

/* Fill *cfg with the defaults above. */
void mrt_svc_config_default(mrt_svc_config *cfg);

/*
 * Create the services of mesh `m` (any thread, before the shards start).
 * Allocates only the mesh-wide tables (default arena). MRT_EINVAL,
 * MRT_SVC_ECONFIG, MRT_ENOMEM.
 */
int mrt_svc_create(mrt_mesh *m, const mrt_svc_config *cfg, mrt_svc **out);

/*
 * Free the mesh-wide part (any thread), once every shard's part was
 * finished with mrt_svc_shard_fini. NULL is a no-op.
 */
void mrt_svc_destroy(mrt_svc *svc);

/* ---- registration (before start, one thread) ---------------------------- */

/* Handler of a registered type, on the receiving shard's thread. */
typedef void (*mrt_svc_handler)(mrt_svc_shard *ss, const mrt_msg *m, void *ctx);
/* Burst form: n consecutive messages of the type from one source, in order. */
typedef void (*mrt_svc_burst_handler)(mrt_svc_shard *ss, const mrt_msg *m, unsigned n,
                                      void *ctx);

/*
 * Register message type `name` with a handler (`burst` preferred when both
 * are given; at least one). *id receives its type id, 0..MRT_SVC_MAX_TYPES-1,
 * the same on every shard. MRT_EINVAL, MRT_SVC_EEXIST (name taken),
 * MRT_SVC_ELIMIT (no shard type left in the configured range), MRT_ESTATE
 * (after start).
 */
int mrt_svc_register_type(mrt_svc *svc, const char *name, mrt_svc_handler fn,
                          mrt_svc_burst_handler burst, void *ctx, uint16_t *id);

/* The id of registered type `name`. MRT_SVC_ENOTYPE, MRT_EINVAL. */
int mrt_svc_type_find(const mrt_svc *svc, const char *name, uint16_t *id);

/*
 * Per-shard subsystem callbacks, run on the shard thread: init at the end
 * of mrt_svc_shard_init in registration order (*state receives the
 * subsystem's per-shard state, typically allocated from
 * mrt_svc_allocator(ss)); fini in reverse order by mrt_svc_shard_fini.
 * An init error undoes the inits that ran and fails mrt_svc_shard_init.
 */
typedef int (*mrt_svc_init_fn)(mrt_svc_shard *ss, void *ctx, void **state);
typedef void (*mrt_svc_fini_fn)(mrt_svc_shard *ss, void *ctx, void *state);

/*
 * Register a subsystem (before start). `init` and `fini` may be NULL.
 * *id (may be NULL) receives the index for mrt_svc_state. MRT_EINVAL,
 * MRT_SVC_EEXIST, MRT_SVC_ELIMIT, MRT_ESTATE.
 */
int mrt_svc_register_subsystem(mrt_svc *svc, const char *name, mrt_svc_init_fn init,
                               mrt_svc_fini_fn fini, void *ctx, uint16_t *id);

/* A delivery that did not reach a daemon, and why. */
typedef enum mrt_svc_handback_reason {
    MRT_SVC_HB_NO_HOST = 0,    /* no host with the event's daemon id on the receiving shard */
    MRT_SVC_HB_BAD_HANDLE = 1, /* the buffer handle names no buffer (payload unavailable) */
    MRT_SVC_HB_EXTERNAL = 2,   /* a malformed event message from ingress: no ingress buffer of
                                  this shard (only mrt_svc_inject_event makes valid ones) */
    MRT_SVC_HB_REASONS
} mrt_svc_handback_reason;

/* An event as the receiving shard saw it (valid during the callback only). */
typedef struct mrt_svc_event {
    uint64_t daemon_id;
    uint16_t src;              /* sending shard, MRT_SRC_EXTERNAL for ingress */
    mrt_event ev;              /* link and payload; payload NULL for MRT_SVC_HB_BAD_HANDLE */
} mrt_svc_event;

/* Called on the receiving shard for each event handed back (counted per reason either way). */
typedef void (*mrt_svc_handback_fn)(mrt_svc_shard *ss, const mrt_svc_event *e,
                                    mrt_svc_handback_reason why, void *ctx);
/* Register the hand-back callback (before start). */
int mrt_svc_set_handback(mrt_svc *svc, mrt_svc_handback_fn fn, void *ctx);

/*
 * Called on the owner shard after a delivery produced outputs, before they
 * are released: route them onward here (mrt_svc_send copies what it keeps).
 * Without it, outputs are released and counted in outputs_unrouted.
 */
typedef void (*mrt_svc_output_fn)(mrt_svc_shard *ss, mrt_host *host, const mrt_event *outs,
                                  size_t n, void *ctx);
/* Register the output callback (before start). */
int mrt_svc_set_output(mrt_svc *svc, mrt_svc_output_fn fn, void *ctx);

/*
 * Admission before each delivery, for push-back (register before start):
 * called on the owner shard with the host an event is for, before its
 * daemon runs. false holds the event with its buffer, and every event
 * after it waits behind it, in order: the senders' buffers stay out, so
 * they run out of buffers (MRT_SVC_EPOOL) and the push-back reaches them
 * as backpressure — while the shard keeps reading returns and completions
 * (holding the rings instead would starve it of its own buffers and
 * deadlock). That also bounds the held events: at most every shard's pool
 * plus this shard's ingress pool (a ring of that size, allocated at init
 * only with an admission: 32 bytes per buffer). Services' tick retries the
 * held events after the hooks (which may have made room), admission first.
 * Held events count in the shard's pending work (the drain waits for
 * them). The test costs one host lookup per event.
 */
typedef bool (*mrt_svc_admit_fn)(mrt_svc_shard *ss, mrt_host *host, void *ctx);
int mrt_svc_set_admit(mrt_svc *svc, mrt_svc_admit_fn fn, void *ctx);

/* ---- per shard ----------------------------------------------------------- */

/*
 * Create shard `s`'s services on its own thread, after mrt_shard_init_local
 * and before the shard runs: pools, host table, in-flight table, balancer
 * state (when the config has a domain) from the shard's arena; installs the
 * shard's handlers for services' types and its tick hook; then runs the
 * subsystems' init callbacks. Closes registration. MRT_EINVAL, MRT_ESTATE
 * (shard not initialised, already has services, or another tick hook is
 * set: services owns the shard's tick), MRT_ENOMEM, or the
 * error of a subsystem init (everything is then undone).
 */
int mrt_svc_shard_init(mrt_svc *svc, mrt_shard *s, mrt_svc_shard **out);

/*
 * Tear down shard services on the shard thread once the mesh has drained
 * (no shard may hold one of its buffers any more): subsystem finis in
 * reverse order, the balancer reader goes offline, everything is freed.
 * Hosts in the table are the caller's and are not destroyed. NULL: no-op.
 */
void mrt_svc_shard_fini(mrt_svc_shard *ss);

/* The services of shard i (any thread; NULL before its init or out of range). */
mrt_svc_shard *mrt_svc_shard_of(const mrt_svc *svc, unsigned i);
/* The shard under these services. */
mrt_shard *mrt_svc_shard_get(const mrt_svc_shard *ss);
/* The shard's allocator (its arena): what subsystem state is allocated from. */
const mrt_allocator *mrt_svc_allocator(const mrt_svc_shard *ss);
/* Subsystem `id`'s per-shard state (what its init returned); NULL for a bad id. */
void *mrt_svc_state(const mrt_svc_shard *ss, uint16_t id);
/* This shard's balancer state (NULL without a domain); shard thread. */
mrt_lb_shard *mrt_svc_lb(mrt_svc_shard *ss);

/*
 * Per-iteration hook: called once per poll iteration on the shard thread,
 * in registration order, after the balancer snapshot sync and the returns,
 * before the shard flushes. `draining`: a stop was requested, produce
 * nothing new.
 */
typedef void (*mrt_svc_hook)(mrt_svc_shard *ss, bool draining, void *ctx);
/* Add a hook on this shard (before it runs). MRT_EINVAL, MRT_SVC_ELIMIT. */
int mrt_svc_add_hook(mrt_svc_shard *ss, mrt_svc_hook fn, void *ctx);

/* ---- host table (shard thread) ------------------------------------------- */

/*
 * Make `host` (created by the caller from this shard's arena; borrowed until
 * removed) receive the events for daemon id mrt_host_origin(host).
 * MRT_EINVAL, MRT_SVC_EEXIST (id present), MRT_SVC_ELIMIT (host_capacity).
 */
int mrt_svc_host_add(mrt_svc_shard *ss, mrt_host *host);
/* Remove daemon `id`; *host (may be NULL) receives it. MRT_SVC_ENOHOST. */
int mrt_svc_host_remove(mrt_svc_shard *ss, uint64_t id, mrt_host **host);
/* The host of daemon `id` on this shard, NULL when absent. O(1). */
mrt_host *mrt_svc_host_find(const mrt_svc_shard *ss, uint64_t id);
/* Hosts in the table. */
uint32_t mrt_svc_host_count(const mrt_svc_shard *ss);

/* ---- sending (shard thread) ---------------------------------------------- */

/*
 * Send an event for daemon `daemon_id` on shard `dst`: the link and the
 * payload are copied into a buffer of this shard's pool and the 32-byte
 * message carries its handle. Delivered in order per (sender, destination),
 * the diagonal included. MRT_OK or, with nothing sent and the caller still
 * owning its data: MRT_EINVAL (NULL link, or NULL payload with len > 0),
 * MRT_SVC_ETOOBIG, MRT_SVC_EPOOL, MRT_SHARD_EFULL (ring and queue full:
 * backpressure), MRT_SHARD_EDEST, MRT_SHARD_ENOTREADY.
 */
int mrt_svc_send(mrt_svc_shard *ss, unsigned dst, uint64_t daemon_id,
                 const mrt_causal_link *link, const void *payload, size_t len);

/*
 * As mrt_svc_send, with the destination shard picked by this shard's
 * balancer from its adopted snapshot (the selection's user_data is the
 * destination shard index, as the runtime registers shards). `daemon_id`
 * 0 means "the daemon the selection names": its id is read from the
 * selected endpoint's node_id bytes 0..7, little endian (register each
 * daemon as an endpoint with node_id = its id LE, zero-padded, and
 * user_data = its shard); a non-zero daemon_id is used as given. The selection
 * is kept in the in-flight table until the owner's completion returns:
 * delivered = success, any failure (no host, daemon error, bad handle) =
 * failure, latency = delivery time - send time on the shards' coarse
 * clocks. A full forward ring is backpressure, not the endpoint's failure:
 * the reservation is released with no outcome (mrt_lb_release: the breaker
 * and latency are not fed) and MRT_SHARD_EFULL is returned, for the caller
 * to retry or defer. *dst_out (may be NULL) receives the shard.
 * Errors as mrt_svc_send, plus MRT_SVC_EINFLIGHT, MRT_SVC_ENOBALANCER, the
 * balancer's select errors, and MRT_SHARD_EDEST for a user_data that is not
 * a shard (the reservation is then released as a failure).
 */
int mrt_svc_send_routed(mrt_svc_shard *ss, const mrt_lb_request *rq, uint64_t daemon_id,
                        const mrt_causal_link *link, const void *payload, size_t len,
                        unsigned *dst_out);

/*
 * The daemon id a selected endpoint names: node_id bytes 0..7, little
 * endian (what mrt_svc_send_routed reads for daemon_id 0). One load on a
 * little-endian machine; a byte loop cost 27 instructions per routed event.
 */
static inline uint64_t mrt_svc_node_daemon(const uint8_t node_id[MRT_LB_NODE_ID_LEN])
{
    uint64_t id;
    memcpy(&id, node_id, sizeof id);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    id = __builtin_bswap64(id);
#endif
    return id;
}

/*
 * Send a message of registered type `type` to shard `dst`: *m is copied
 * with its type replaced by the type's shard number. Codes of
 * mrt_shard_send, MRT_SVC_ENOTYPE.
 */
int mrt_svc_send_msg(mrt_svc_shard *ss, unsigned dst, uint16_t type, const mrt_msg *m);

/*
 * The same from a thread that is not a shard (any thread), through dst's
 * ingress ring. Codes of mrt_mesh_inject, MRT_SVC_ENOTYPE.
 */
int mrt_svc_inject_msg(mrt_svc *svc, unsigned dst, uint16_t type, const mrt_msg *m);

/* ---- ingress: events from threads that are not shards ------------------- */

/*
 * Send an event for daemon `daemon_id` on shard `dst` from a thread that is
 * not a shard (any number of threads at once). The link and payload are
 * copied into a buffer of dst's ingress pool (allocated by dst at its init,
 * its free list a multi-producer/multi-consumer rte_ring of buffer indices)
 * and the 32-byte message goes through dst's ingress ring; dst delivers it
 * like a shard's event (src = MRT_SRC_EXTERNAL; never a completion) and puts
 * the buffer back on its free list. Per calling thread, events to one shard
 * arrive in call order. MRT_OK or, with nothing sent, the caller keeping
 * its data and any buffer taken put back: MRT_EINVAL (NULL svc or link, NULL
 * payload with len > 0), MRT_SVC_ETOOBIG, MRT_SHARD_EDEST, MRT_SHARD_ENOTREADY
 * (dst has no services yet), MRT_SVC_EPOOL (no free ingress buffer of the
 * payload's class: backpressure, retry), MRT_SHARD_EFULL (ingress ring full:
 * backpressure), MRT_SHARD_ESTOPPED (the mesh is stopping). Not once dst's
 * mrt_svc_shard_fini may have started (the caller stops injecting before).
 * No allocation, no lock (the rings' atomics), no clock read.
 */
int mrt_svc_inject_event(mrt_svc *svc, unsigned dst, uint64_t daemon_id,
                         const mrt_causal_link *link, const void *payload, size_t len);

/* Free ingress buffers of class `c` on shard `i` now (any thread; 0 when out of range). */
uint32_t mrt_svc_ingress_free(const mrt_svc *svc, unsigned i, unsigned c);
/* Ingress buffers of class `c` per shard (0 when out of range or without an ingress pool). */
uint32_t mrt_svc_ingress_class(const mrt_svc *svc, unsigned c);

/* ---- egress: outputs to the application's thread ------------------------- */

/*
 * Hand an output to the application (shard thread): link and payload are
 * copied into a buffer of this shard's pool whose handle goes on this
 * shard's egress ring (single producer: this shard; single consumer: the
 * thread calling mrt_svc_egress_poll). MRT_OK, or with nothing queued and
 * the caller keeping its output (hand it back, counted): MRT_EINVAL,
 * MRT_SVC_ETOOBIG, MRT_SVC_EPOOL (no free buffer), MRT_SHARD_EFULL (egress
 * ring full: the application is not polling fast enough).
 */
int mrt_svc_egress_push(mrt_svc_shard *ss, uint64_t from_id, const mrt_causal_link *link,
                        const void *payload, size_t len);

/* One egressed output; link and payload are valid during the call only. */
typedef void (*mrt_svc_egress_fn)(void *ctx, unsigned shard, uint64_t from_id,
                                  const mrt_causal_link *link, const void *payload, size_t len);

/*
 * Take up to `max` outputs from the shards' egress rings (one non-shard
 * thread at a time), a burst per shard in turn from a rotating start,
 * calling fn for each: in push order per shard. The buffers then go back
 * to their owner through its egress-return ring (single producer: this
 * thread; single consumer: the owner, which frees them in its next
 * iteration). Returns how many were taken.
 *
 * Drain: a shard's buffers out in egress count in its pending work
 * (mrt_shard_set_pending), so the mesh does not report drained while
 * outputs wait for the application or their buffers have not come home.
 * Whoever stops the mesh polls egress until the drain completes —
 * mrt_mesh_request_stop, then `egress_poll; mrt_mesh_try_drain` in a loop
 * on the egress thread (mrt_mesh_stop on that thread would wait forever
 * once an egress ring holds something). Never after the drain completed:
 * the shards then tear down their rings.
 */
size_t mrt_svc_egress_poll(mrt_svc *svc, mrt_svc_egress_fn fn, void *ctx, size_t max);

/*
 * Outputs pushed to egress and not yet taken by mrt_svc_egress_poll, over
 * all shards (any thread; a snapshot, exact once the shards are quiet).
 */
uint64_t mrt_svc_egress_pending(const mrt_svc *svc);

/*
 * Subsystem `id`'s pending work on this shard (shard thread): what it holds
 * to send later (e.g. deferred sends). Services adds it to its own (returns
 * and completions staged, egress buffers out) and publishes the sum once
 * per iteration with mrt_shard_set_pending, so the mesh's drain waits for
 * it. Set it whenever it changes (a hook, a handler); 0 when settled.
 * MRT_EINVAL for a bad id.
 */
int mrt_svc_set_pending(mrt_svc_shard *ss, uint16_t id, uint64_t n);

/* ---- observation (shard thread, or any thread once the shard thread was joined) */

typedef struct mrt_svc_stats {
    uint64_t sent;               /* events accepted by send / send_routed */
    uint64_t routed;             /* of which routed by a selection */
    uint64_t refused_toobig;
    uint64_t refused_pool;
    uint64_t refused_full;       /* forward ring and queue full */
    uint64_t refused_inflight;
    uint64_t lb_errors;          /* selects that failed */
    uint64_t received;           /* event messages received */
    uint64_t delivered;          /* mrt_host_deliver returned MRT_OK */
    uint64_t deliver_errors;     /* mrt_host_deliver failed (the daemon's status) */
    uint64_t handed_back[MRT_SVC_HB_REASONS];
    uint64_t outputs_unrouted;   /* outputs released without an output callback */
    uint64_t returns_local;      /* own buffers freed on this shard without a message */
    uint64_t returns_sent;       /* handles sent back to their owners */
    uint64_t returns_received;   /* own handles back from other shards */
    uint64_t returns_invalid;    /* returned handles that were not out: ignored */
    uint64_t return_msgs;        /* return + completion messages sent */
    uint64_t backlog_retries;    /* ticks that left returns/completions for the next one */
    uint64_t completions;        /* selections completed here (mrt_lb_complete called) */
    uint64_t completions_stale;  /* completion tokens matching no pending selection */
    uint64_t inflight;           /* selections now pending on this shard */
    uint64_t pool_out;           /* buffers of this shard's pool now held elsewhere */
    uint64_t backlog;            /* returns + completions waiting to be sent now */
    uint64_t ingress;            /* events delivered from ingress buffers (see received) */
    uint64_t egressed;           /* outputs pushed to egress */
    uint64_t egress_refused;     /* egress pushes refused (EPOOL, EFULL) */
    uint64_t egress_out;         /* of this shard's buffers, now in egress or its return ring */
    uint64_t pending;            /* the last pending count published to the shard */
    /* Messages per kind (32-byte messages, not the items they pack). */
    uint64_t ret_msgs_received;  /* return messages received (returns_received: handles) */
    uint64_t done_msgs_received; /* completion messages received */
    uint64_t done_msgs_sent;     /* of return_msgs, the completion messages */
    uint64_t user_msgs_received; /* messages of registered types (mrt_svc_register_type) */
    uint64_t user_msgs_sent;     /* mrt_svc_send_msg accepted */
    /*
     * Failed selects (lb_errors) by code: [k] counts MRT_LB_ENOENDPOINTS - k
     * (-420 .. -427, the select errors), the last slot any other code.
     */
    uint64_t lb_error_code[MRT_SVC_LB_ERR_SLOTS];
} mrt_svc_stats;

/* Slot of a select error in mrt_svc_stats.lb_error_code. */
static inline unsigned mrt_svc_lb_err_slot(int code)
{
    int k = MRT_LB_ENOENDPOINTS - code;
    return k >= 0 && k < (int)MRT_SVC_LB_ERR_SLOTS - 1 ? (unsigned)k : MRT_SVC_LB_ERR_SLOTS - 1;
}

/*
 * Histograms services records on the shard, plain stores on the event path
 * (no allocation, no lock, no clock read: the coarse clock of the burst).
 */
typedef enum mrt_svc_hist_kind {
    /* ns from a send (the sender's coarse clock, in the buffer header) to its delivery */
    MRT_SVC_HIST_DELIVER = 0,
    /* ns from a routed selection to its completion applied on the selecting shard */
    MRT_SVC_HIST_COMPLETION_RTT = 1,
    MRT_SVC_HISTS
} mrt_svc_hist_kind;

/* This shard's histogram `kind` (shard thread: the owner's live copy); NULL out of range. */
const mrt_hist *mrt_svc_hist(const mrt_svc_shard *ss, mrt_svc_hist_kind kind);

/* Copy this shard's counters. */
void mrt_svc_stats_get(const mrt_svc_shard *ss, mrt_svc_stats *out);

/* Number of size classes (the same on every shard). */
unsigned mrt_svc_pool_classes(const mrt_svc *svc);
/*
 * Size class `c`: *payload_cap receives the largest payload it holds,
 * *buffers its buffer count. MRT_EINVAL for c out of range.
 */
int mrt_svc_pool_class(const mrt_svc *svc, unsigned c, uint32_t *payload_cap, uint32_t *buffers);
/* Free buffers of class `c` in this shard's pool (0 for c out of range). */
uint32_t mrt_svc_pool_free(const mrt_svc_shard *ss, unsigned c);

#ifdef __cplusplus
}
#endif
#endif
