/* Private layout of shards and the mesh (white-box tests include it). */
#ifndef MESHRT_SHARDS_SHARD_INTERNAL_H
#define MESHRT_SHARDS_SHARD_INTERNAL_H

#include "meshrt/mrt_perf.h"
#include "meshrt/mrt_shard.h"
#include "core/spin.h"
#include "shards/ring_count.h"
#include "shards/stall.h"

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MRT_CACHELINE 64
/* Data written by different threads is kept this far apart (adjacent-line prefetch pairs lines). */
#define MRT_NO_SHARE 128

/* Messages bound for one destination (defined beside the inline mrt_shard_send). */
typedef mrt_shard_lane_ mrt_outq;

/* Counters published once per iteration for other threads to read. */
typedef struct mrt_shard_pub {
    alignas(MRT_NO_SHARE) _Atomic uint64_t sent;
    _Atomic uint64_t handled;
    _Atomic uint64_t handed_back[MRT_HB_REASONS];
    _Atomic uint64_t control_handled;
    _Atomic uint64_t control_handed_back[MRT_HB_REASONS];
    _Atomic uint64_t ring_full;
    _Atomic uint64_t send_refused;
    _Atomic uint64_t injected;
    _Atomic uint64_t iterations;
    _Atomic uint64_t busy_cycles;
    _Atomic uint64_t idle_cycles;
    _Atomic uint64_t sleeps;
    _Atomic uint64_t wakeups;
    _Atomic int perf_set;
    _Atomic bool perf_user_only;
    _Atomic uint64_t perf[MRT_PERF_MAX_EVENTS];
    _Atomic uint64_t perf_interval_ns;
    _Atomic uint64_t pending;       /* mrt_shard_set_pending, stored before `handled` */
} mrt_shard_pub;

struct mrt_shard {
    /* First: the inline mrt_shard_send reads a shard through this member. */
    alignas(MRT_NO_SHARE) mrt_shard_tx_ tx;
    /* Read-mostly, set before the shard runs. */
    mrt_mesh *mesh;
    unsigned id;
    unsigned n;                     /* shards in the mesh */
    unsigned burst;
    bool idle_wake;                 /* mrt_mesh_config.idle_wake: producers wake it, it waits on a futex */
    unsigned budget;
    uint32_t outq_cap;              /* power of two */
    mrt_allocator alloc;            /* thread-bound handle on the shard's arena */
    unsigned arena;                 /* MRT_ARENA_DEFAULT before init and after fini */
    _Atomic bool ready;             /* set (release) once the inbound rings exist */
    bool finished;                  /* finalised: never initialised again */
    mrt_msg_handler handler[MRT_MSG_TYPES];
    void *handler_ctx[MRT_MSG_TYPES];
    mrt_burst_handler burst_handler[MRT_MSG_TYPES]; /* takes precedence over handler[] */
    mrt_tick_hook tick;
    void *tick_ctx;
    mrt_handback_hook handback;
    void *handback_ctx;
    /* Control: a type space, handlers and hand-back hook of its own. */
    mrt_msg_handler ctl_handler[MRT_CTL_TYPES];
    void *ctl_ctx[MRT_CTL_TYPES];
    mrt_handback_hook ctl_handback;
    void *ctl_handback_ctx;

    /* Owned rings: in[src] is ring[src -> self]. */
    struct rte_ring **in;
    struct rte_ring *ingress;
    struct rte_ring *control;
    size_t ring_bytes;
    size_t mp_ring_bytes;

    /* Outbound. */
    mrt_outq *out;
    unsigned *dirty;                /* destinations with pending messages */
    unsigned ndirty;

    /* Poll loop state. */
    unsigned rr_start;
    bool draining;
    bool stop_acked;
    uint64_t tsc0;
    double ns_per_cycle;
    uint64_t last_tsc;              /* start of the current iteration */
    bool last_busy;                 /* the previous iteration handled something */
    uint64_t next_stats_ns;
    uint64_t stats_interval_ns;
    mrt_perf_counters perf;
    mrt_perf_sample perf_prev;      /* the previous sample, to publish whole-interval increments */
    uint64_t perf_prev_ns;

    /* Counters: plain fields, owner only. */
    mrt_shard_stats st;
    uint64_t pending;               /* mrt_shard_set_pending: published with the counters */

    mrt_shard_pub pub;

    /*
     * Producers on ingress and control come from any thread: DPDK's
     * single-producer path under a lock each (ring_put_mp in drain.c,
     * core/spin.h says why not DPDK's MP modes). Written per injection.
     */
    alignas(MRT_NO_SHARE) mrt_spin ingress_put;
    alignas(MRT_NO_SHARE) mrt_spin control_put;

    /* The stall detector's view of this shard (shards/stall.h): blocks of its own. */
    mrt_stall_slot stall;

    /*
     * 1 while the shard waits in its idle back-off (a futex word: see
     * shard_wake). Written by the shard on each wait and by the producer
     * that ends it; read by every producer after each enqueue, so a line of
     * its own, quiet while the shard is busy.
     */
    alignas(MRT_NO_SHARE) _Atomic uint32_t sleeping;
    _Atomic int pinned_cpu;         /* the one CPU its thread may run on, -1 if not pinned */
};

/*
 * Each block below is written by a different set of threads, so each has
 * its own MRT_NO_SHARE bytes: the flags every shard reads every iteration
 * must not share a line pair with counters every injection writes.
 */
struct mrt_mesh {
    mrt_mesh_config cfg;
    mrt_shard **shards;
    uint64_t tsc0;              /* the shards' clocks count from here */
    double ns_per_cycle;
    /* Read by every shard every iteration; each written once. */
    alignas(MRT_NO_SHARE) _Atomic bool stop_requested;
    _Atomic bool drained;
    /* Ingress admission (see mrt_mesh_inject): written three times per injection. */
    alignas(MRT_NO_SHARE) _Atomic uint64_t inject_inflight;
    _Atomic uint64_t ext_accepted;
    /* Control admission (see mrt_mesh_control): written per control message. */
    alignas(MRT_NO_SHARE) _Atomic uint64_t ctl_inflight;
    _Atomic uint64_t ctl_accepted;
    _Atomic bool ctl_closed;    /* set by the drain once it found the mesh quiescent */
    /* Written once by each shard. */
    alignas(MRT_NO_SHARE) _Atomic unsigned stop_acks;
};

#define MRT_BLOCK_OF_(f) (offsetof(struct mrt_mesh, f) / MRT_NO_SHARE)
_Static_assert(MRT_BLOCK_OF_(stop_requested) != MRT_BLOCK_OF_(inject_inflight) &&
                   MRT_BLOCK_OF_(stop_requested) != MRT_BLOCK_OF_(ctl_inflight) &&
                   MRT_BLOCK_OF_(stop_requested) != MRT_BLOCK_OF_(stop_acks) &&
                   MRT_BLOCK_OF_(inject_inflight) != MRT_BLOCK_OF_(ctl_inflight),
               "mesh flags and admission counters live in separate MRT_NO_SHARE blocks");

/*
 * A 32-byte message travels as two 16-byte ring elements. DPDK copies
 * 16-byte elements with 32-byte memcpys but 32-byte elements one 32-bit
 * word at a time (it cannot prove the tables do not alias): measured with
 * meshrt-bench ring, the same 32 bytes move several times faster this way.
 * Producers enqueue whole messages only (bulk, even element counts) and
 * consumers dequeue even counts, so a message is never split.
 */
#define ELEM_SIZE 16u
#define ELEMS_PER_MSG (sizeof(mrt_msg) / ELEM_SIZE)
_Static_assert(sizeof(mrt_msg) == 2 * ELEM_SIZE, "a message is two ring elements");

/*
 * An idle shard waits on its `sleeping` word (a futex) for at most its
 * back-off, and a producer that has just filled one of its rings ends the
 * wait: one event at low load no longer waits out a sleep. Pairing, as in
 * Dekker's: the shard stores sleeping = 1, fences, then looks at its rings;
 * a producer enqueues, fences, then looks at sleeping; at least one sees
 * the other. A wake that is missed anyway costs what the sleep cost before
 * (the wait keeps the back-off as its timeout), never an event. Call after
 * the enqueue and a seq_cst fence (an atomic RMW is one).
 */

/* End d's wait, wherever it runs (stop: preempting this thread then costs nothing). */
static inline void shard_wake_now(mrt_shard *d)
{
    if (atomic_load_explicit(&d->sleeping, memory_order_relaxed) != 0 &&
        atomic_exchange_explicit(&d->sleeping, 0, memory_order_relaxed) != 0)
        (void)syscall(SYS_futex, (uint32_t *)&d->sleeping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static inline void shard_wake(mrt_shard *d)
{
    if (atomic_load_explicit(&d->sleeping, memory_order_relaxed) == 0)
        return;
    /*
     * A shard pinned to this producer's own CPU is left to its timeout:
     * waking it would preempt the producer after every enqueue (measured:
     * the ingress path at 0.43x with an injector sharing a shard's CPU). An
     * unpinned shard can be woken onto another CPU, so it is woken.
     */
    int cpu = atomic_load_explicit(&d->pinned_cpu, memory_order_relaxed);
    if (cpu >= 0 && cpu == sched_getcpu())
        return;
    shard_wake_now(d);
}

/* `us` microseconds as a relative timeout (nanosleep, futex). */
static inline struct timespec us_timespec(unsigned us)
{
    return (struct timespec){ .tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000 };
}

/* Sleep `us` microseconds: the idle back-off without idle_wake, and mrt_mesh_stop's wait. */
static inline void idle_sleep(unsigned us)
{
    struct timespec ts = us_timespec(us);
    nanosleep(&ts, NULL);
}


/* Whole messages waiting in a ring (each message is two 16-byte elements; see above). */
static inline unsigned mrt_ring_msgs(const struct rte_ring *r)
{
    return mrt_ring_entries(r) / ELEMS_PER_MSG;
}

#endif
