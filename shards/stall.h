/*
 * The shard's stall slot: what a watcher on another thread needs to see a
 * poll iteration that runs too long, and to take a backtrace of it on the
 * shard (runtime/stall.c is the watcher).
 *
 * The shard writes it with relaxed (plain on x86) stores: when an iteration
 * begins and ends (with the clock value the iteration reads anyway, never a
 * clock read of its own), which phase it is in, which message type is
 * dispatched (once per run of one type, not per message) and which daemon's
 * process runs (services/route.c, around the call). The watcher only reads,
 * then asks for a backtrace with a signal the shard answers in its handler
 * (stall.c): the shard never waits for the watcher.
 *
 * Small and self-contained so that services/ can include it.
 */
#ifndef MESHRT_SHARDS_STALL_H
#define MESHRT_SHARDS_STALL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Frames a backtrace keeps (the handler writes into the slot, no allocation). */
#define MRT_STALL_FRAMES 48u
/* msg_type when no message is being dispatched; the control space sets this bit. */
#define MRT_STALL_NO_TYPE 0xffffffffu
#define MRT_STALL_CONTROL 0x10000u

/* Where the iteration is (the values of mrt_runtime_stall_phase, mrt_runtime.h). */
enum {
    MRT_STALL_PH_POLL = 0,     /* bookkeeping (unused by the poll loop: a step's own phase) */
    MRT_STALL_PH_CONTROL = 1,  /* a control message's handler */
    MRT_STALL_PH_DATA = 2,     /* a data message's handler (msg_type says which) */
    MRT_STALL_PH_TICK = 3,     /* the tick hook (services' and compute's per-iteration work) */
    MRT_STALL_PH_FLUSH = 4,    /* pushing bursts to the rings, publishing counters */
};

typedef struct mrt_stall_slot {
    /*
     * Shard-written, read by the watcher. `running` is the iteration's start
     * on the mesh clock with bit 0 set while it runs, 0 between iterations:
     * one word, so the watcher never pairs a start with the wrong iteration.
     */
    alignas(128) _Atomic uint64_t running;
    _Atomic uint32_t phase;
    _Atomic uint32_t msg_type;
    _Atomic uint64_t daemon_id;         /* 0: no daemon's process is running */
    /* The last iteration that ran `threshold_ns` or longer, measured at the next one's start. */
    _Atomic uint64_t long_start;        /* its `running` word (start | 1) */
    _Atomic uint64_t long_ns;
    uint64_t prev_running;              /* shard only: the previous iteration's word */
    uint64_t threshold_ns;              /* set before the shard runs; 0 = no detector */
    /* Set by mrt_shard_run on its thread before the first iteration. */
    _Atomic bool armed;
    pthread_t tid;
    pid_t ktid;                         /* the kernel's id of the thread (/proc/self/task) */
    /* The backtrace: asked by the watcher, written by the signal handler on the shard. */
    alignas(128) _Atomic uint64_t bt_asked;
    _Atomic uint64_t bt_answered;       /* the request the frames below answer */
    _Atomic int bt_depth;
    void *bt_pc;                        /* where the signal interrupted the thread (NULL: unknown) */
    void *bt[MRT_STALL_FRAMES];
    sem_t bt_sem;                       /* posted by the handler (async-signal-safe) */
    bool sem_ok;
} mrt_stall_slot;

/* ---- shard side: inline, on the poll loop and around daemon calls ---- */

static inline void mrt_stall_phase(mrt_stall_slot *z, uint32_t phase)
{
    atomic_store_explicit(&z->phase, phase, memory_order_relaxed);
}

static inline void mrt_stall_type(mrt_stall_slot *z, uint32_t type)
{
    atomic_store_explicit(&z->msg_type, type, memory_order_relaxed);
}

/* services/route.c: a daemon's process starts (id) and ends (0). */
static inline void mrt_stall_daemon(mrt_stall_slot *z, uint64_t id)
{
    atomic_store_explicit(&z->daemon_id, id, memory_order_relaxed);
}

/* An iteration begins at `now_ns` (the shard's coarse clock, already read). */
static inline void mrt_stall_begin(mrt_stall_slot *z, uint64_t now_ns)
{
    uint64_t w = now_ns | 1u;
    uint64_t p = z->prev_running;
    /* The previous iteration ran from its start to now (rare branch: a long one). */
    if (__builtin_expect(z->threshold_ns != 0 && p != 0 && now_ns - (p & ~1ull) >=
                                                                z->threshold_ns, 0)) {
        atomic_store_explicit(&z->long_ns, now_ns - (p & ~1ull), memory_order_relaxed);
        atomic_store_explicit(&z->long_start, p, memory_order_release);
    }
    z->prev_running = w;
    /* The control drain marks itself when it finds something: data is the common case. */
    atomic_store_explicit(&z->phase, MRT_STALL_PH_DATA, memory_order_relaxed);
    atomic_store_explicit(&z->msg_type, MRT_STALL_NO_TYPE, memory_order_relaxed);
    atomic_store_explicit(&z->running, w, memory_order_release);
}

static inline void mrt_stall_end(mrt_stall_slot *z)
{
    atomic_store_explicit(&z->running, 0, memory_order_release);
}

/* ---- watcher side (shards/stall.c) ---- */

/*
 * Install the process-wide handler of the stall signal (SIGRTMIN +
 * MRT_STALL_SIGNAL_OFFSET) once, and load what backtrace() loads lazily, so
 * that the handler never does. MRT_OK, or MRT_ESTATE when sigaction refused.
 */
#define MRT_STALL_SIGNAL_OFFSET 6
int mrt_stall_signal_init(void);

/* The signal's number (SIGRTMIN + MRT_STALL_SIGNAL_OFFSET). */
int mrt_stall_signal(void);

/*
 * Take a backtrace of the shard's thread: signal it, wait at most
 * `timeout_ms` for its handler, copy up to `max` frames into `frames`.
 * The handler's own frames are left out: the first frame is where the
 * signal interrupted the thread (when the platform says where that was).
 * Returns the depth (0 with *timed_out set when the handler did not answer
 * in time: the signal blocked, or the thread cannot take it now), or
 * MRT_ESTATE when the thread is not in mrt_shard_run or the signal could
 * not be sent. One caller at a time per slot.
 */
int mrt_stall_backtrace(mrt_stall_slot *z, void **frames, unsigned max, unsigned timeout_ms,
                        bool *timed_out);

/* Shard side, once on the thread that runs the shard: arm the slot (thread ids, signal unblocked). */
void mrt_stall_arm(mrt_stall_slot *z);
void mrt_stall_disarm(mrt_stall_slot *z);

/* The slot of shard s (any thread; the slot lives as long as the mesh). */
struct mrt_shard;
mrt_stall_slot *mrt_shard_stall_slot(struct mrt_shard *s);

/* Create / destroy the slot's semaphore (mesh create / destroy). */
void mrt_stall_slot_init(mrt_stall_slot *z);
void mrt_stall_slot_fini(mrt_stall_slot *z);

#endif
