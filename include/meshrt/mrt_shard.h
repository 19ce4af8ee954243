/*
 * mrt_shard.h — shards and the shard mesh.
 *
 * A shard is one pinned thread that owns everything it touches: its jemalloc
 * arena, its inbound rings, its outbound bursts, its handlers, its counters.
 * Shards talk only through DPDK rte_rings carrying 32-byte messages by value:
 *   - one SPSC ring per directed shard pair (N x N, the diagonal included),
 *   - one multi-producer ingress ring per shard for threads that are not shards,
 *   - one multi-producer control ring per shard for the control plane.
 *
 * Data and control are separate spaces: data messages (MRT_MSG_TYPES types,
 * mrt_shard_set_handler) travel between shards and from ingress; control
 * messages (MRT_CTL_TYPES types, mrt_shard_set_control_handler) come only
 * from mrt_mesh_control and have their own handlers, hand-back hook and
 * counters. A control message never counts in the data counters.
 *
 * The mesh and its shards are thread-agnostic data structures: the runtime
 * runs mrt_shard_run() on one pinned thread per shard; tests and benchmarks
 * may also drive mrt_shard_poll_once() by hand. Everything here except the
 * functions marked "any thread" must be called by the shard's own thread.
 */
#ifndef MESHRT_MRT_SHARD_H
#define MESHRT_MRT_SHARD_H

#include "meshrt/mrt_core.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-200 .. -299). */
enum mrt_shard_status {
    MRT_SHARD_EFULL = -200,      /* destination ring and overflow both full: message not accepted */
    MRT_SHARD_EDEST = -201,      /* no such destination shard */
    MRT_SHARD_ETYPE = -202,      /* message type out of range */
    MRT_SHARD_ECONFIG = -203,    /* mesh configuration refused (see mrt_mesh_config_check) */
    MRT_SHARD_ERING = -204,      /* rte_ring_init refused the ring */
    MRT_SHARD_ESTOPPED = -205,   /* the shard no longer accepts messages (draining or stopped) */
    MRT_SHARD_ENOTREADY = -206,  /* the shard's local state has not been initialised yet */
};

/* Name of a shard status code; NULL outside -200..-299. */
const char *mrt_shard_strerror(int status);

/*
 * A message: 32 bytes, moved by value through the rings. Measured against
 * 8-byte pointers (meshrt-bench ring): by-value descriptors cost a few % of
 * ring throughput but need no allocation per message and never free memory
 * across arenas, so a sender can never leak or double-free a receiver's memory.
 */
typedef struct mrt_msg {
    uint16_t type;      /* handler index: < MRT_MSG_TYPES (data) or < MRT_CTL_TYPES (control) */
    uint16_t src;       /* set on receipt: sending shard id, MRT_SRC_EXTERNAL for ingress and control */
    uint32_t aux;       /* free for the handler: length, flags, ... */
    uint64_t w[3];      /* payload words */
} mrt_msg;

#define MRT_MSG_TYPES 64u
/* Control message types: a space of their own, independent of the data types. */
#define MRT_CTL_TYPES 32u
#define MRT_SRC_EXTERNAL 0xffffu
#define MRT_MAX_SHARDS 256u
#define MRT_MAX_BURST 256u

/* Why a message was handed back instead of delivered. */
typedef enum mrt_handback_reason {
    MRT_HB_NO_HANDLER = 0,   /* no handler registered for its type at the destination */
    MRT_HB_REASONS
} mrt_handback_reason;

typedef struct mrt_shard mrt_shard;
typedef struct mrt_mesh mrt_mesh;

/* Message handler, called on the destination shard's thread. */
typedef void (*mrt_msg_handler)(mrt_shard *s, const mrt_msg *m, void *ctx);
/* Burst handler: n consecutive messages of one type from one ring, in order. */
typedef void (*mrt_burst_handler)(mrt_shard *s, const mrt_msg *msgs, unsigned n, void *ctx);
/*
 * Per-iteration hook, called once per poll iteration before the flush
 * (producers live here). `draining` is true once a stop was requested: the
 * hook must then produce nothing new.
 */
typedef void (*mrt_tick_hook)(mrt_shard *s, bool draining, void *ctx);
/*
 * Called for each message handed back (on the shard that held it): data
 * messages through mrt_shard_set_handback, control messages through
 * mrt_shard_set_control_handback.
 */
typedef void (*mrt_handback_hook)(mrt_shard *s, const mrt_msg *m, mrt_handback_reason why,
                                  void *ctx);

typedef struct mrt_mesh_config {
    unsigned shards;            /* number of shards, 1..MRT_MAX_SHARDS */
    unsigned ring_size;         /* slots per ring, power of two, > burst; capacity is ring_size - 1 */
    unsigned burst;             /* messages per burst, 1..MRT_MAX_BURST (default 32) */
    unsigned overflow;          /* per-destination pending capacity beyond one burst (default ring_size) */
    unsigned budget;            /* max messages handled per poll iteration (default 4 * burst * shards) */
    unsigned idle_spin;         /* idle iterations spent busy-polling before backing off (default 1024) */
    unsigned idle_sleep_max_us; /* back-off ceiling in microseconds; 0 = never sleep (default 100) */
    /*
     * An idle shard waits on a futex and a producer's enqueue ends the wait
     * (default false: the back-off sleeps its length); a shard pinned to the
     * producer's own CPU is left to its timeout (waking it would preempt the
     * producer). Each producer fences after each ring enqueue and wakes a
     * waiting shard with a syscall. Measured on a 2-CPU VM (perf/README,
     * "Idle wake"): one event through ingress p50 60 -> 43 us, `meshrt run`
     * 0.945x, the ingress path 0.83-0.97x; with cores to spare, more.
     */
    bool idle_wake;
    unsigned stats_interval_ms; /* perf counters are read this often (default 1000) */
} mrt_mesh_config;

/* Fill *cfg with defaults for `shards` shards. */
void mrt_mesh_config_default(mrt_mesh_config *cfg, unsigned shards);

/*
 * Validate a configuration without allocating. Returns MRT_OK or
 * MRT_SHARD_ECONFIG and, when `why` is non-NULL, a static string naming
 * the offending field.
 */
int mrt_mesh_config_check(const mrt_mesh_config *cfg, const char **why);

/*
 * Create a mesh (any thread): validates cfg, allocates the shard table.
 * Rings are not allocated here: each shard allocates its inbound rings in
 * mrt_shard_init_local(), on its own (pinned, memory-bound) thread, so
 * they are placed on its NUMA node and in its arena.
 */
int mrt_mesh_create(const mrt_mesh_config *cfg, mrt_mesh **out);

/*
 * Destroy a mesh (any thread, after every shard thread has returned or
 * stopped driving its shard). A shard not finalised with
 * mrt_shard_fini_local() has its rings and queues freed here, into its arena
 * directly (correct from any thread); its arena is then given back for reuse
 * unless a live thread is still bound to it (the calling thread is unbound
 * first), in which case the arena stays that thread's.
 */
void mrt_mesh_destroy(mrt_mesh *m);

/* Number of shards (any thread). */
unsigned mrt_mesh_size(const mrt_mesh *m);
/* Shard i (any thread); NULL when out of range. */
mrt_shard *mrt_mesh_shard(mrt_mesh *m, unsigned i);

/*
 * Initialise shard `s` on the calling thread: create its jemalloc arena,
 * bind the thread to it, allocate its inbound rings (N SPSC + ingress +
 * control) and outbound pending queues. Every shard must be initialised
 * before any shard sends (the runtime uses a start barrier).
 */
int mrt_shard_init_local(mrt_shard *s);

/*
 * Finalise shard `s` on the thread that initialised it (the owner), once no
 * thread uses its rings any more — after the mesh drained, or when nothing
 * was ever sent to it: free its rings and queues through its thread-bound
 * handle, flush the thread cache, return the thread to the arena it used
 * before, and give the shard's arena back for reuse. Objects the owner
 * allocated with mrt_shard_allocator() must be freed before. The shard
 * cannot be initialised again. MRT_ESTATE when it was never initialised or
 * is already finalised; MRT_EINVAL for NULL.
 */
int mrt_shard_fini_local(mrt_shard *s);

/* Register the handler for data message type `type` (before the shard runs). */
int mrt_shard_set_handler(mrt_shard *s, uint16_t type, mrt_msg_handler fn, void *ctx);
/*
 * Register a burst handler for `type` instead of a per-message one (before
 * the shard runs): consecutive messages of that type dequeued together are
 * handed over in one call, one indirect call per run instead of per message.
 */
int mrt_shard_set_burst_handler(mrt_shard *s, uint16_t type, mrt_burst_handler fn, void *ctx);
/*
 * Register the per-iteration hook (before the shard runs). A shard has one:
 * MRT_ESTATE when one is already set (fn == NULL clears it and always
 * succeeds); MRT_EINVAL for NULL s. A shard with services
 * (mrt_services.h) has services' tick: add per-iteration work with
 * mrt_svc_add_hook instead.
 */
int mrt_shard_set_tick(mrt_shard *s, mrt_tick_hook fn, void *ctx);

/*
 * Work the drain must wait for that is not a message yet (shard thread):
 * items a layer above holds to send later (returns, completions, deferred
 * sends) or has lent out (egress buffers). Set it from the tick whenever it
 * changes; it is published once per iteration with the counters, and
 * mrt_mesh_try_drain declares the mesh drained only when every shard's
 * published pending count is 0 (see shards/README.md, Stop and drain).
 */
void mrt_shard_set_pending(mrt_shard *s, uint64_t n);

/*
 * Whether shard `s` was initialised (mrt_shard_init_local ran, its rings
 * exist) and not finalised (any thread; acquire: what the owner set up
 * before is visible after it returns true).
 */
bool mrt_shard_ready(const mrt_shard *s);
/* Register the hand-back hook for data messages (before the shard runs). */
void mrt_shard_set_handback(mrt_shard *s, mrt_handback_hook fn, void *ctx);

/*
 * Register the handler for control message type `ctype` (< MRT_CTL_TYPES;
 * before the shard runs): called on the shard's thread for each message
 * mrt_mesh_control sent with that type, before the iteration's data.
 * MRT_SHARD_ETYPE for a type out of range, MRT_EINVAL for NULL s.
 */
int mrt_shard_set_control_handler(mrt_shard *s, uint16_t ctype, mrt_msg_handler fn, void *ctx);
/*
 * Register the hand-back hook for control messages (before the shard runs):
 * a control message whose type has no control handler is counted in
 * control_handed_back and passed to this hook, never to the data one.
 */
void mrt_shard_set_control_handback(mrt_shard *s, mrt_handback_hook fn, void *ctx);

/* This shard's index in the mesh. */
unsigned mrt_shard_id(const mrt_shard *s);
/*
 * The shard's allocator: the thread-bound handle on its arena (between
 * mrt_shard_init_local and mrt_shard_fini_local). On the shard's thread it
 * allocates through the fast thread cache; on any other thread the same
 * handle allocates from and frees to the shard's arena directly, never the
 * caller's (see the ownership rule in mrt_core.h). What it allocates
 * belongs to the shard: free it before mrt_shard_fini_local (on the shard's
 * thread) or before mrt_mesh_destroy (any thread). After fini: the default
 * handle.
 */
const mrt_allocator *mrt_shard_allocator(const mrt_shard *s);

/*
 * The shard's coarse clock: nanoseconds since the mesh was created, updated
 * once per poll iteration from the TSC. Everything on the event path that
 * needs time reads this instead of a clock. Inline (defined below): every
 * routed send and every burst of deliveries reads it.
 */
static inline uint64_t mrt_shard_now(const mrt_shard *s);

/*
 * Send a message to shard `dst` (shard thread only). The message is
 * buffered for `dst` and goes out as part of a burst: when the burst fills,
 * or at the end of the poll iteration. When the ring is full, messages wait
 * in a bounded per-destination queue; when that is full too the message is
 * not accepted: MRT_SHARD_EFULL is returned and counted, and the caller
 * still owns it. The receiver sees `src` set to this shard's id (whatever
 * the sender put there). Never allocates, never locks, never reads a clock.
 *
 * Inline: while the burst being filled for `dst` has room, a send is a
 * 32-byte copy and four counter bumps; the out-of-line part runs once per
 * burst (the first send to a destination in a poll iteration and the one
 * that completes the burst and flushes it), and for every refusal.
 */
static inline int mrt_shard_send(mrt_shard *s, unsigned dst, const mrt_msg *m);

/* ---- internal to the inline send: layout owned by shards/, do not use ---- */
struct rte_ring;
/* Messages bound for one destination: a FIFO whose tail is the burst being filled. */
typedef struct mrt_shard_lane_ {
    struct rte_ring *ring;  /* ring[self -> dst], cached on first use */
    mrt_msg *buf;           /* cap slots */
    uint32_t head;          /* index of the oldest pending message */
    uint32_t count;         /* pending messages */
    uint32_t fresh;         /* messages added since the last flush attempt */
    /*
     * Appends the inline path may make without looking further: 0 unless
     * the lane is connected and dirty; never enough to fill the FIFO or to
     * complete a burst (the send that does goes out of line and flushes).
     */
    uint32_t fast;
    uint8_t dirty;          /* listed in the shard's dirty list */
} mrt_shard_lane_;
/* The first member of every shard. */
typedef struct mrt_shard_tx_ {
    mrt_shard_lane_ *lane;  /* the shard's lanes; set by the first out-of-line send */
    uint32_t n;             /* destinations the inline path may take (0 until then) */
    uint32_t mask;          /* lane capacity - 1 */
    uint64_t sent;          /* inline sends not yet folded into the shard's `sent` */
    uint64_t now;           /* the coarse clock (mrt_shard_now), set by the poll loop */
} mrt_shard_tx_;
static inline uint64_t mrt_shard_now(const mrt_shard *s)
{
    return ((const mrt_shard_tx_ *)(const void *)s)->now;
}
int mrt_shard_send_slow_(mrt_shard *s, unsigned dst, const mrt_msg *m);

/*
 * A message copied through general registers, each load inside one of the
 * sender's stores (store-to-load forwarding fails for a load that spans
 * two stores, ~15 cycles): the words in 8-byte moves (a 16-byte load would
 * span two 8-byte stores), the header field by field (a sender building the
 * message on its stack stores type, src and aux separately; one 8-byte load
 * of them stalled 41-47 % of mrt_svc_send's samples). The empty asm keeps
 * the compiler from merging the loads again.
 */
static inline void mrt_msg_copy_(mrt_msg *d, const mrt_msg *m)
{
    uint64_t a, b, c, e, t = m->type, src = m->src, aux = m->aux;
    __asm__("" : "+r"(t), "+r"(src), "+r"(aux));
    a = t | src << 16 | aux << 32;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    memcpy(&a, (const unsigned char *)m, 8);
#endif
    memcpy(&b, (const unsigned char *)m + 8, 8);
    memcpy(&c, (const unsigned char *)m + 16, 8);
    memcpy(&e, (const unsigned char *)m + 24, 8);
    __asm__("" : "+r"(a), "+r"(b), "+r"(c), "+r"(e));
    memcpy((unsigned char *)d, &a, 8);
    memcpy((unsigned char *)d + 8, &b, 8);
    memcpy((unsigned char *)d + 16, &c, 8);
    memcpy((unsigned char *)d + 24, &e, 8);
}

static inline int mrt_shard_send(mrt_shard *s, unsigned dst, const mrt_msg *m)
{
    mrt_shard_tx_ *tx = (mrt_shard_tx_ *)(void *)s;
    if (__builtin_expect(dst < tx->n, 1)) {
        mrt_shard_lane_ *l = &tx->lane[dst];
        if (__builtin_expect(l->fast != 0, 1)) {
            mrt_msg_copy_(&l->buf[(l->head + l->count) & tx->mask], m);
            l->count++;
            l->fresh++;
            l->fast--;
            tx->sent++;
            return MRT_OK;
        }
    }
    return mrt_shard_send_slow_(s, dst, m);
}

/*
 * Send n messages to `dst` in order, as one copy: the cheaper form for
 * producers that build bursts. Returns MRT_OK when all were accepted, else
 * the error of the first refused one (MRT_SHARD_EFULL, MRT_SHARD_EDEST,
 * MRT_SHARD_ENOTREADY); *accepted (when non-NULL) receives how many of the
 * first messages were accepted — the rest are still the caller's.
 */
int mrt_shard_send_burst(mrt_shard *s, unsigned dst, const mrt_msg *msgs, unsigned n,
                         unsigned *accepted);

/* Push every pending burst to its ring now (the poll loop does this each iteration). */
void mrt_shard_flush(mrt_shard *s);

/*
 * Outbound backlog (shard thread): *used receives the most messages waiting
 * in one destination's outbound FIFO, *cap that FIFO's capacity (the same
 * for every destination). A FIFO keeps more than a burst only while its
 * destination's ring is full, so used/cap says how far past a full ring the
 * most congested outgoing channel is. Reads only this shard's own state
 * (the destinations with pending messages): no atomics, no other core's
 * cache lines, cheap enough for once per iteration.
 */
void mrt_shard_outbound_backlog(const mrt_shard *s, uint32_t *used, uint32_t *cap);

/*
 * Run one poll iteration: update the clock, drain the control ring (one
 * burst), drain the inbound rings and the ingress ring in bursts within the
 * budget — one burst per source per pass, ingress being one of the sources,
 * from a rotating start, so neither a busy peer nor shard-to-shard load can
 * starve the others or ingress — call the tick hook, flush. With the
 * default budget the first pass reaches every source: ingress gets up to a
 * burst every iteration; a budget below (shards + 1) bursts still reaches it
 * at least every shards + 1 iterations. Returns the number of messages
 * handled, control messages included, plus the messages sent: 0 means the
 * iteration was idle.
 */
unsigned mrt_shard_poll_once(mrt_shard *s);

/*
 * The shard's loop: poll until the mesh's drain completes (mrt_mesh_stop),
 * with the idle policy: busy-poll with rte_pause, then exponential sleep up
 * to idle_sleep_max_us after idle_spin empty iterations.
 */
void mrt_shard_run(mrt_shard *s);

/*
 * Enqueue a message from a thread that is not a shard (any thread) to
 * shard `dst`'s multi-producer ingress ring. MRT_SHARD_EFULL when the ring
 * is full, MRT_SHARD_ESTOPPED once the mesh stopped accepting; the message
 * is then still the caller's.
 */
int mrt_mesh_inject(mrt_mesh *m, unsigned dst, const mrt_msg *msg);

/*
 * Control-plane command to shard `dst` (any thread), handled on the shard
 * thread by the control handler registered for `msg->type` (< MRT_CTL_TYPES)
 * before the iteration's data messages, or handed back to the control
 * hand-back hook. Accepted control messages count in the drain: each is
 * handled or handed back before the mesh reports drained, and control is
 * accepted while the mesh drains. MRT_SHARD_ETYPE for a type out of range,
 * MRT_SHARD_EFULL when the control ring is full, MRT_SHARD_ESTOPPED once the
 * drain has closed control (right before it completes, and from then on);
 * the message is then still the caller's.
 */
int mrt_mesh_control(mrt_mesh *m, unsigned dst, const mrt_msg *msg);

/*
 * Stop the mesh (any thread, once): shards stop producing (tick hooks see
 * draining = true), ingress refuses new messages, and every accepted
 * message — data and control — is delivered or handed back. Returns once
 * the mesh is quiescent; the shards' mrt_shard_run() then return. The shard
 * threads must be running (or be driven by hand by the caller) for the
 * drain to progress. Shard-to-shard sends stay accepted while the mesh
 * drains (handlers, and ticks settling what they owe, may still send), and
 * the drain waits for every shard's pending count to reach 0.
 */
void mrt_mesh_stop(mrt_mesh *m);

/*
 * Non-blocking parts of mrt_mesh_stop, for callers that drive shards by hand:
 * request the stop, then call mrt_mesh_try_drain() until it returns true.
 */
void mrt_mesh_request_stop(mrt_mesh *m);
/*
 * True once the mesh is quiescent (and from then on): a stop was requested,
 * every shard acknowledged it, every accepted data and control message
 * was handled or handed back, and every shard's pending count
 * (mrt_shard_set_pending) is 0. The check that finds it quiescent closes
 * control (mrt_mesh_control then refuses) and confirms nothing slipped in.
 */
bool mrt_mesh_try_drain(mrt_mesh *m);
/*
 * The shards' time base read now (any thread; reads the TSC): for the
 * control plane, whose timestamps must compare with the shards' coarse
 * clocks (breaker reports, snapshot compiles). Never on the event path.
 */
uint64_t mrt_mesh_clock(const mrt_mesh *m);

/* True once the drain has completed (any thread). */
bool mrt_mesh_drained(const mrt_mesh *m);

/*
 * Counters of one shard. The owner keeps them in plain fields and publishes
 * a copy once per poll iteration (not per message); any thread may read
 * the published copy with mrt_shard_stats().
 */
typedef struct mrt_shard_stats {
    uint64_t sent;              /* data messages accepted by mrt_shard_send */
    uint64_t handled;           /* data messages dequeued and dispatched (or handed back) */
    uint64_t handed_back[MRT_HB_REASONS]; /* data messages handed back, by reason */
    uint64_t control_handled;   /* control messages dequeued and dispatched (or handed back) */
    uint64_t control_handed_back[MRT_HB_REASONS]; /* control messages handed back, by reason */
    uint64_t ring_full;         /* flushes that found the destination ring full */
    uint64_t send_refused;      /* sends refused with MRT_SHARD_EFULL */
    uint64_t injected;          /* data messages handled from this shard's ingress ring */
    uint64_t iterations;
    uint64_t busy_cycles;       /* TSC cycles in iterations that handled or sent something */
    uint64_t idle_cycles;       /* TSC cycles in empty iterations (sleeps included) */
    uint64_t sleeps;            /* idle back-off waits entered (nothing in any inbound ring) */
    uint64_t wakeups;           /* of those, ended early by a producer's enqueue (or a stop) */
    int perf_set;               /* mrt_perf_set of the live counters (see mrt_perf.h) */
    bool perf_user_only;        /* counters exclude kernel time (perf_event_paranoid) */
    uint64_t perf[4];           /* counter increments over the last complete stats interval */
    uint64_t perf_interval_ns;  /* length of that interval (0 before the first one completed) */
    uint64_t pending;           /* the last mrt_shard_set_pending value published */
} mrt_shard_stats;

/* Published counters of shard `i` (any thread). */
void mrt_shard_stats_read(const mrt_mesh *m, unsigned i, mrt_shard_stats *out);

/*
 * Messages waiting now in shard `s`'s inbound data rings and its ingress
 * ring (not control). Reads each ring's head and tail once: O(shards), for
 * a once-per-iteration sample, never per message. Any thread, a moment's
 * value while producers run; 0 before init or after fini.
 */
unsigned mrt_shard_backlog(const mrt_shard *s);

#ifdef __cplusplus
}
#endif
#endif
