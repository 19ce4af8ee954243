/*
 * mrt_runtime.h — the process: configuration, shard threads pinned by
 * topology, start / stop (drain) / destroy, the built-in default workload,
 * and the error-code names of every module.
 */
#ifndef MESHRT_MRT_RUNTIME_H
#define MESHRT_MRT_RUNTIME_H

#include "meshrt/mrt_balancer.h"
#include "meshrt/mrt_compute.h"
#include "meshrt/mrt_core.h"
#include "meshrt/mrt_daemon.h"
#include "meshrt/mrt_perf.h"
#include "meshrt/mrt_sched.h"
#include "meshrt/mrt_services.h"
#include "meshrt/mrt_shard.h"
#include "meshrt/mrt_topo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of this module (-300 .. -399). */
enum mrt_runtime_status {
    MRT_RT_EFLAG = -300,        /* unknown command-line flag */
    MRT_RT_EVALUE = -301,       /* a flag's value is missing or not a valid number */
    MRT_RT_ESHARDS = -302,      /* the selection yields 0 shards (or more than supported) */
    MRT_RT_ERINGPOW2 = -303,    /* ring size is not a power of two */
    MRT_RT_ERINGBURST = -304,   /* ring size is not larger than the burst size */
    MRT_RT_EBURST = -305,       /* burst size outside 1..256 */
    MRT_RT_ECONFLICT = -306,    /* --numa-node and --cpuset both given */
    MRT_RT_EBIND = -307,        /* a shard could not be bound (and --allow-unbound was not given) */
    MRT_RT_ETHREAD = -308,      /* a shard thread could not be created or initialised */
    MRT_RT_EDURATION = -309,    /* duration negative or not finite */
    MRT_RT_EREPEAT = -310,      /* a flag was given more than once */
    MRT_RT_ECMDFLAG = -311,     /* a flag that does not apply to this command (`meshrt topo --burst`) */
};

/*
 * Name of any meshrt status code (every module's range); "unknown status"
 * for codes no module owns. Never NULL.
 */
const char *mrt_strerror(int status);

typedef struct mrt_runtime_config {
    int numa_node;              /* NUMA node to take one shard per core from; -1 = the node we start on */
    const char *cpuset;         /* explicit PU list ("0-3,8"); overrides numa_node; NULL = unset */
    bool allow_unbound;         /* run even when the OS refuses a CPU or memory binding */
    unsigned burst;             /* default 32 */
    unsigned ring_size;         /* default 1024 */
    unsigned overflow;          /* per-destination pending queue; 0 = ring_size */
    unsigned idle_spin;         /* default 1024 */
    unsigned idle_sleep_max_us; /* default 100 */
    bool idle_wake;             /* a producer wakes an idle shard (mrt_mesh_config.idle_wake; default false) */
    unsigned stats_interval_ms; /* `meshrt run` live-line and perf-sampling interval (default 1000) */
    double duration_s;          /* `meshrt run` duration; 0 = until SIGINT/SIGTERM (default 5) */
    bool json;                  /* `meshrt run` writes its summary as JSON */
    bool workload;              /* `meshrt run` runs the built-in workload (default true); the
                                   runtime hosts compute either way (mrt_runtime_compute) */
    /*
     * Number of shards; 0 = one per CPU of the selection (default). Fewer
     * takes the first CPUs; more needs allow_unbound and runs the shards
     * beyond the selection unpinned (counted in mrt_runtime_unbound) — so a
     * test gets 2 shards on a 1-CPU machine. At most MRT_MAX_SHARDS.
     */
    unsigned shards;
    mrt_lb_strategy lb_strategy; /* how the balancer spreads over compute's set (default rr) */
    /*
     * Stall detector: a poll iteration running this long is reported while
     * it still runs (mrt_runtime_set_stall_handler); default 10, 0 = off.
     */
    unsigned stall_ms;
    /*
     * User tags of the shards for the scheduler (mrt_runtime_sched): NULL or
     * "SHARD=TAG,TAG;SHARD=TAG..." (`--tags "0=gpu,ssd;1=ssd"`): each shard
     * index once, each tag a valid mrt_sched user tag. Checked by
     * mrt_runtime_check (MRT_RT_EVALUE, or MRT_RT_ESHARDS for an index past
     * the shards).
     */
    const char *tags;
    /* `meshrt run --scenario NAME` (groups/scenario.c); NULL: the default workload. */
    const char *scenario;
    const char *metrics;        /* `meshrt run --metrics ADDR:PORT` (mrt_metrics.h); NULL = off */
    bool metrics_remote;        /* --metrics-remote: the endpoint may be a non-loopback address */
} mrt_runtime_config;

/* Fill *cfg with the defaults above. */
void mrt_runtime_config_default(mrt_runtime_config *cfg);

/* The command whose flags are parsed. */
typedef enum mrt_runtime_command {
    MRT_RT_CMD_RUN,   /* every flag below */
    MRT_RT_CMD_TOPO,  /* --numa-node and --cpuset only */
} mrt_runtime_command;

/*
 * Parse the flags of `meshrt run` or `meshrt topo` (argv[0] is the first
 * flag, not the program) into *cfg, which holds the defaults (or the
 * caller's values) on entry: --numa-node N, --cpuset LIST, --allow-unbound,
 * --duration S, --burst B, --ring-size R, --overflow N, --idle-spin K,
 * --idle-sleep-us U, --stats-ms M (1..3600000), --lb STRATEGY (a
 * mrt_lb_strategy_name), --tags SPEC, --scenario NAME (replica, scale, standby,
 * fork), --json, --stall-ms N (0..3600000, 0 = off),
 * --metrics ADDR:PORT, --metrics-remote. String values point into argv. On error
 * returns MRT_RT_EFLAG (unknown flag), MRT_RT_EVALUE, MRT_RT_EDURATION,
 * MRT_RT_EMETRICS_ADDR (--metrics not ADDR:PORT, mrt_metrics.h),
 * MRT_RT_EREPEAT (a flag given twice), MRT_RT_ECMDFLAG (a run-only flag
 * given to topo) or MRT_RT_ECONFLICT, and writes a message naming the flag
 * into err (when non-NULL).
 */
int mrt_runtime_parse_command_args(mrt_runtime_command cmd, int argc, char **argv,
                                   mrt_runtime_config *cfg, char *err, size_t errlen);

/* mrt_runtime_parse_command_args(MRT_RT_CMD_RUN, ...). */
int mrt_runtime_parse_args(int argc, char **argv, mrt_runtime_config *cfg, char *err,
                           size_t errlen);

/*
 * The names --lb accepts (every mrt_lb_strategy_name, in enum order),
 * separated by sep, into buf (truncated, always terminated when len > 0).
 * Returns the length the whole list needs, like snprintf.
 */
size_t mrt_runtime_lb_choices(char *buf, size_t len, const char *sep);

/*
 * Validate cfg against the machine and resolve the shard selection, without
 * starting anything. Returns MRT_OK or a specific code (MRT_RT_* or
 * MRT_TOPO_*) with a message in err.
 */
int mrt_runtime_check(const mrt_runtime_config *cfg, const mrt_topo *topo,
                      mrt_topo_selection *sel, char *err, size_t errlen);

typedef struct mrt_runtime mrt_runtime;

/* Validate, load the topology, create the mesh. No thread is started. */
int mrt_runtime_create(const mrt_runtime_config *cfg, mrt_runtime **out, char *err,
                       size_t errlen);

/*
 * Start one thread per shard: each binds itself to its PU and NUMA node,
 * creates its arena and inbound rings, then all start polling together.
 * On a refused binding (without allow_unbound) or a failed initialisation
 * every thread is stopped again and MRT_RT_EBIND / MRT_RT_ETHREAD returned.
 */
int mrt_runtime_start(mrt_runtime *rt, char *err, size_t errlen);

/*
 * Graceful stop: producers stop, every in-flight message is delivered or
 * handed back, then the shard threads exit and are joined. Idempotent.
 * With compute, every deferred send goes out and every buffer comes home
 * first; outputs still in egress are drained on the calling thread into
 * the function set with mrt_compute_set_egress_drain (counted when there is
 * none), so no other thread may poll egress while it runs. Afterwards each
 * shard's selections are all completed (mrt_compute_stats.inflight 0).
 */
int mrt_runtime_stop(mrt_runtime *rt);

/* Stop if needed and free everything (NULL is a no-op). */
void mrt_runtime_destroy(mrt_runtime *rt);

/* The shard mesh (for stats, injection, control). */
mrt_mesh *mrt_runtime_mesh(mrt_runtime *rt);

/*
 * The compute object (mrt_compute.h) the embedder registers daemon types
 * on (before mrt_runtime_start) and spawns, subscribes, injects and polls
 * egress through (after). Created by mrt_runtime_create.
 */
mrt_compute *mrt_runtime_compute(mrt_runtime *rt);
/* The resolved shard selection. */
const mrt_topo_selection *mrt_runtime_selection(const mrt_runtime *rt);
/* How many shards were left unbound (allowed with allow_unbound). */
unsigned mrt_runtime_unbound(const mrt_runtime *rt);

/*
 * CPU time shard i's thread has consumed so far, in ns (its
 * CLOCK_THREAD_CPUTIME_ID, read from any thread through
 * pthread_getcpuclockid), into *ns. Only while the runtime is started and
 * not stopped; MRT_ESTATE otherwise, MRT_EINVAL for a bad index. Against
 * wall time it gives the share of time the shard was actually on a CPU
 * (neither sleeping in its idle backoff nor descheduled).
 */
int mrt_runtime_shard_cpu_ns(const mrt_runtime *rt, unsigned i, uint64_t *ns);

/*
 * The built-in default workload (runtime/workload.c): a pipeline of daemons
 * built on the public API only (this header and mrt_compute.h), a user of
 * the runtime like any other. `meshrt run` runs it; an embedder can too,
 * on a runtime of its own.
 *
 *   ingress thread --inject--> producer (one per shard)
 *     --balancer-routed set--> workers (MRT_WORKLOAD_WORKERS_PER_SHARD on
 *         every shard; the producer's shard's balancer selects each
 *         destination with the runtime's strategy, completions come back)
 *     --subscription--> the aggregator on the worker's shard
 *     --egress--> the thread that calls mrt_workload_poll
 *
 * Each daemon emits one output per event: the causal link of the event it
 * got followed by that event's payload, so every output egressed carries
 * the whole path — the injected event, then the producer's, the worker's
 * and the aggregator's links. The polling thread validates every causal
 * chain it receives, per emitting daemon, with mrt_causal_chain_accept:
 * each aggregator's (in egress order), each worker's (its outputs reach
 * one aggregator in order) and each producer's (its outputs cross
 * different workers, so they are put back in sequence order first); and it
 * checks that every injected event comes out exactly once, through the
 * producer it was injected to and a worker on the aggregator's shard.
 *
 * The ingress thread keeps at most MRT_WORKLOAD_WINDOW events between
 * injection and the polling thread (flow control: the work in flight and
 * the polling thread's lag stay bounded whatever its speed, and egress
 * never fills), and offers an event refused for backpressure again.
 *
 * Life cycle, every call from one application thread (the one that polls):
 *   mrt_workload_create (before mrt_runtime_start) -> mrt_runtime_start ->
 *   mrt_workload_start -> mrt_workload_poll, repeatedly ->
 *   mrt_workload_stop (stops the ingress thread, then the runtime: the
 *   outputs still in egress are validated on this thread) ->
 *   mrt_workload_verdict -> mrt_workload_destroy (before mrt_runtime_destroy).
 */
#define MRT_WORKLOAD_WORKERS_PER_SHARD 2u
#define MRT_WORKLOAD_WINDOW 512u

typedef struct mrt_workload mrt_workload;

/* The pipeline's stages. */
typedef enum mrt_workload_stage {
    MRT_WL_PRODUCER = 0,
    MRT_WL_WORKER = 1,
    MRT_WL_AGGREGATOR = 2,
    MRT_WL_STAGES
} mrt_workload_stage;

/*
 * Counters of the workload, over all shards or of one shard. Daemon
 * counters are the daemons' own (published by their shards as they go);
 * compute's are mrt_compute_stats'; the polling thread's are exact.
 */
typedef struct mrt_workload_stats {
    uint64_t injected;          /* events the ingress thread had accepted (per shard: compute's) */
    uint64_t inject_refused;    /* injections refused for backpressure, offered again (total) */
    uint64_t delivered[MRT_WL_STAGES]; /* events each stage's daemons processed */
    uint64_t emitted;           /* outputs stamped (compute) */
    uint64_t routed_set;        /* producer outputs sent to the set (compute) */
    uint64_t routed_daemon;     /* worker outputs sent to their aggregator (compute) */
    uint64_t egressed;          /* aggregator outputs handed to egress (compute) */
    uint64_t drained;           /* outputs the polling thread received */
    uint64_t links_validated;   /* causal links that passed mrt_causal_chain_accept */
    uint64_t chains;            /* daemons whose every output so far validated in its chain */
    uint64_t handed_back;       /* events or outputs handed back, all reasons (compute) */
    uint64_t daemon_errors;     /* deliveries a daemon or host refused (compute) */
    uint64_t deferred;          /* sends deferred for backpressure (compute) */
    uint64_t pushed_back;       /* deliveries retried because deferral was full (compute) */
    uint64_t completions;       /* routed selections completed (compute) */
    uint64_t inflight;          /* reservations outstanding: selections awaiting completion */
    uint64_t buffers_out;       /* pool buffers held away from their shard (compute) */
    uint64_t problems;          /* inconsistencies the polling thread found */
} mrt_workload_stats;

/*
 * Set up the workload on rt (before mrt_runtime_start; rt must host
 * compute, mrt_runtime_compute): registers its daemon types, its hand-back
 * counter and its egress drain. MRT_EINVAL, MRT_ENOMEM, compute's codes;
 * a message in err.
 */
int mrt_workload_create(mrt_runtime *rt, mrt_workload **out, char *err, size_t errlen);

/*
 * After mrt_runtime_start: spawn the daemons (producer i and aggregator i on
 * shard i, the workers over every shard), add the workers to the set and
 * wait until every shard has adopted the snapshot with them, subscribe,
 * start the ingress thread. MRT_ESTATE when called twice; compute's codes.
 */
int mrt_workload_start(mrt_workload *w, char *err, size_t errlen);

/* Take and validate up to `max` egressed outputs. Returns how many. */
size_t mrt_workload_poll(mrt_workload *w, size_t max);

/*
 * Stop: the ingress thread, then the runtime (mrt_runtime_stop: every
 * event in flight is delivered or handed back; outputs still in egress are
 * validated here), then the final accounting. Idempotent.
 */
int mrt_workload_stop(mrt_workload *w);

/* Counters over all shards (shard < 0) or of shard `shard`. */
void mrt_workload_stats_get(const mrt_workload *w, int shard, mrt_workload_stats *out);

/*
 * Events handed back by reason, after stop: up to max (status, count)
 * pairs into why[] and count[], for each status that occurred. Returns how
 * many statuses occurred (may exceed max).
 */
size_t mrt_workload_handbacks(const mrt_workload *w, int *why, uint64_t *count, size_t max);

/*
 * The verdict, after mrt_workload_stop: 0 when every count balances exactly
 * and every chain validated, else the number of problems, described
 * ("; "-separated) in buf.
 */
unsigned mrt_workload_verdict(const mrt_workload *w, char *buf, size_t len);

/* Free the workload (after mrt_workload_stop; NULL is a no-op). */
void mrt_workload_destroy(mrt_workload *w);

/*
 * Balancer control plane, from one thread (the control plane; `meshrt run`
 * calls it once per stats line): feed the breaker reports the shards sent up
 * to the registry, compile and publish a new snapshot when the registry
 * changed, an endpoint's trip expired, or `republish` is set, then free the
 * retired snapshots every shard has moved past. Shards switch at their next
 * poll-iteration boundary; no select ever waits. The registry is the
 * workload's (one endpoint per shard) or, with compute, the
 * balancer-routed set's (mrt_compute_set_add; a member added is routed to
 * once this has published it). Returns 1 when it published, 0 when not,
 * or a status.
 */
int mrt_runtime_control_tick(mrt_runtime *rt, bool republish);

typedef struct mrt_balancer_counters {
    uint64_t published;         /* snapshots published */
    uint64_t retired;           /* snapshots replaced */
    uint64_t freed;             /* retired snapshots freed (every shard had moved on) */
    uint64_t breaker_reports;   /* breaker openings reported by shards and applied */
} mrt_balancer_counters;

/*
 * Control-plane counters as of the last mrt_runtime_control_tick (or create);
 * any thread. All zero for rt == NULL.
 */
void mrt_runtime_balancer_stats(const mrt_runtime *rt, mrt_balancer_counters *out);

/* ---- the scheduler and shard state (runtime/sched.c; control thread) ---- */

/*
 * The runtime's shard scheduler (mrt_sched.h): one shard per scheduler
 * shard, built-in tags numa:N / core:N from the selection, user tags from
 * mrt_runtime_config.tags. mrt_runtime_control_tick refreshes every
 * shard's load (busy share of the last interval from its busy/idle cycles,
 * daemons hosted, messages waiting in its inbound rings). Compute's
 * default placement (mrt_compute_set_placement with NULL) goes through it:
 * the eligible shard hosting the fewest daemons, then the scheduler's
 * ranking (latency, free capacity, id). Like every mrt_sched object it is
 * used by one thread: the control thread (the one calling spawn,
 * mrt_runtime_control_tick and the groups' control functions).
 */
mrt_sched *mrt_runtime_sched(mrt_runtime *rt);

/*
 * Drain shard i (drained true) or undrain it: it gets no new placements;
 * what it hosts stays (evacuation comes with migration). MRT_EINVAL.
 */
int mrt_runtime_drain_shard(mrt_runtime *rt, unsigned i, bool drained);

/*
 * Take shard i out as if its core were lost (for tests, scenarios and
 * operators): no new placements from now on, and the daemon groups
 * (mrt_groups.h) re-place the members it hosts at their next recovery
 * tick. Its thread keeps running what it hosts until the groups retire
 * it. Idempotent. MRT_EINVAL for a bad index.
 */
int mrt_runtime_fail_shard(mrt_runtime *rt, unsigned i);

/* Whether shard i was failed with mrt_runtime_fail_shard (false for a bad index). */
bool mrt_runtime_shard_failed(const mrt_runtime *rt, unsigned i);

/*
 * Run fn(rt, ctx) at the end of every mrt_runtime_control_tick, in
 * registration order, on the control thread (the daemon groups' recovery
 * registry runs there). At most MRT_RUNTIME_MAX_TICK_HOOKS. MRT_EINVAL,
 * MRT_RT_EVALUE when full.
 */
#define MRT_RUNTIME_MAX_TICK_HOOKS 8u
typedef void (*mrt_runtime_tick_fn)(mrt_runtime *rt, void *ctx);
int mrt_runtime_add_tick_hook(mrt_runtime *rt, mrt_runtime_tick_fn fn, void *ctx);

/* The services layer under compute (mrt_services.h), for modules built on the runtime. */
mrt_svc *mrt_runtime_services(mrt_runtime *rt);

/* ---- observation: per-shard stats and histograms (any thread) ---- */

/* Message kinds of mrt_runtime_shard_stats.msgs_in / msgs_out (32-byte messages). */
typedef enum mrt_runtime_msg_kind {
    MRT_RT_MSG_EVENT = 0,       /* in: event messages received, ingress included; out: events sent */
    MRT_RT_MSG_RETURN,          /* buffer returns (up to 3 handles each) */
    MRT_RT_MSG_COMPLETION,      /* completions that did not ride a buffer home (3 each) */
    MRT_RT_MSG_USER,            /* messages of types registered with mrt_svc_register_type */
    MRT_RT_MSG_CONTROL,         /* in: control messages handled; out: 0 (the control plane sends) */
    MRT_RT_MSG_EGRESS,          /* out: outputs pushed to egress; in: 0 */
    MRT_RT_MSG_KINDS
} mrt_runtime_msg_kind;

/* Name of a message kind ("event", ...); NULL out of range. */
const char *mrt_runtime_msg_kind_name(mrt_runtime_msg_kind kind);

/* Hand-back statuses kept apart per shard (the rest are summed in handback_other). */
#define MRT_RT_HB_SLOTS 8u

/*
 * Everything one shard publishes, as one consistent block: every field of
 * one read comes from the same publication (the shard writes the block
 * under a sequence lock after every poll iteration that did work and the
 * one after it, and at least every ms while idle — idle iterations
 * change only idle_cycles and iterations; a reader never sees a
 * half-written block, it retries). The block is composed on the shard thread
 * in its per-iteration hook, after compute's: svc, compute, lb, hosts and
 * the fields below `stall_max_ns` are as of that moment; `shard` is the
 * shard's own publication, as of the end of the previous iteration.
 * Fields are only ever added (at the end), never renamed.
 */
typedef struct mrt_runtime_shard_stats {
    uint64_t version;           /* publications of this block so far (0: never published) */
    mrt_shard_stats shard;      /* rings, dispatch, busy/idle cycles, perf counters */
    mrt_svc_stats svc;          /* events, pool buffers, returns, completions */
    mrt_compute_stats compute;  /* daemons hosted, delivered, emitted, routed, deferred */
    mrt_lb_shard_stats lb;      /* this shard's balancer: selections, errors, breaker */
    mrt_host_stats hosts;       /* summed over the daemons this shard hosts and hosted */
    uint64_t stalls;            /* poll iterations the stall detector reported (0 without one) */
    uint64_t stall_max_ns;      /* the longest of them so far */
    /* ---- consistent block (runtime/publish.c) ---- */
    uint64_t published_ns;      /* the shard's coarse clock (mrt_shard_now) at this publication */
    uint64_t tsc_hz;            /* ticks per second of shard.busy_cycles / idle_cycles */
    uint64_t msgs_in[MRT_RT_MSG_KINDS];
    uint64_t msgs_out[MRT_RT_MSG_KINDS];
    /*
     * Messages waiting in the inbound rings and ingress, sampled after the
     * drain of the last iteration that handled something (idle iterations
     * find them empty and are not sampled; see MRT_RT_HIST_RING_OCCUPANCY).
     */
    uint64_t ring_occupancy;
    uint64_t hosts_live;        /* hosts whose counters are summed in `hosts` live (the rest retired) */
    /*
     * Events and outputs compute handed back (compute.handed_back) by
     * status: handback_count[k] with status handback_why[k], for the first
     * MRT_RT_HB_SLOTS distinct statuses; the others summed in handback_other.
     */
    int64_t handback_why[MRT_RT_HB_SLOTS];
    uint64_t handback_count[MRT_RT_HB_SLOTS];
    uint64_t handback_other;
    uint64_t completion_rtt_sum_ns; /* sum over svc.completions of selection -> completion ns */
} mrt_runtime_shard_stats;

/*
 * Published stats of shard i (any thread; lock-free: retries while the
 * shard is writing). Before the shard's first publication: zeros, version
 * 0. After the runtime stopped: the shard's last block, settled after the
 * drain. MRT_EINVAL for a NULL argument or i out of range.
 */
int mrt_runtime_stats_read(const mrt_runtime *rt, unsigned i, mrt_runtime_shard_stats *out);

/* Number of shards (the same as mrt_mesh_size of the runtime's mesh). */
unsigned mrt_runtime_shards(const mrt_runtime *rt);

/* The histograms each shard records. */
typedef enum mrt_runtime_hist_kind {
    MRT_RT_HIST_ROUTE_DELIVER,  /* ns from a routed send to its delivery (recorded by the receiver) */
    MRT_RT_HIST_COMPLETION_RTT, /* ns from a selection to its completion applied (by the selector) */
    MRT_RT_HIST_ITER_BUSY,      /* ns of each poll iteration that did work */
    MRT_RT_HIST_RING_OCCUPANCY, /* messages waiting in the shard's inbound rings, once per iteration */
    MRT_RT_HIST_KINDS
} mrt_runtime_hist_kind;

/* Name of a histogram kind ("route_deliver_ns", ...); NULL out of range. */
const char *mrt_runtime_hist_name(mrt_runtime_hist_kind kind);

/*
 * Copy histogram `kind` of shard i, or of all shards merged for i = -1
 * (any thread; each shard's copy is the one published with its latest
 * block, so count equals the sum of the buckets). Recorded on the shard
 * with plain stores, no allocation, lock or clock read: route -> deliver
 * and completion round trip on the shards' coarse clocks (resolution: one
 * poll iteration), busy time per busy iteration from the TSC the poll loop
 * reads anyway, ring occupancy once per busy iteration.
 * MRT_EINVAL for a NULL argument, a kind or shard out of range.
 */
int mrt_runtime_hist_read(const mrt_runtime *rt, int i, mrt_runtime_hist_kind kind, mrt_hist *out);

/* ---- stall detector (issue 10) ---- */

/*
 * A watcher thread (started with the runtime when cfg.stall_ms > 0) looks
 * at every shard each stall_ms / 4: a poll iteration that has run stall_ms
 * or longer is reported while it still runs, again at twice and four times
 * ... that length, and once more when it ends. At most 5 stalls per shard
 * are reported in a burst, then 5 a minute (the rest are counted only: a
 * preempted machine gets counts, not a flood). Each report of a running
 * stall carries a backtrace of the shard's thread taken on that thread: the
 * watcher sends it a signal (SIGRTMIN + 6, unblocked on the shard threads
 * only while a detector runs) whose handler records the frames; the watcher
 * waits for them at most 100 ms and symbolises them (function names need
 * the executable linked with -rdynamic, CMake ENABLE_EXPORTS). The shards
 * never wait for the watcher: marking an iteration costs them three plain
 * stores and no clock read beyond the one each iteration makes anyway.
 */

/* Where the stalled iteration was. */
typedef enum mrt_runtime_stall_phase {
    MRT_RT_STALL_POLL = 0,      /* the poll loop's own bookkeeping */
    MRT_RT_STALL_CONTROL = 1,   /* a control message's handler (msg_type) */
    MRT_RT_STALL_DATA = 2,      /* a data message's handler (msg_type; daemon_id when a daemon's
                                   process runs) */
    MRT_RT_STALL_TICK = 3,      /* the per-iteration tick (services, compute) */
    MRT_RT_STALL_FLUSH = 4,     /* pushing bursts to the rings */
} mrt_runtime_stall_phase;

/* Name of a phase ("data", ...); "?" out of range. */
const char *mrt_runtime_stall_phase_name(mrt_runtime_stall_phase p);

typedef struct mrt_runtime_stall_report {
    unsigned shard;
    bool ended;                 /* false: still running (nth report); true: it ended */
    unsigned nth;               /* reports of this stall so far (1 the first) */
    uint64_t stalled_ns;        /* how long it has run so far; ended: its whole length (to the
                                   start of the next iteration) */
    uint64_t threshold_ns;
    uint64_t iteration;         /* the shard's iteration number (iterations completed before it) */
    mrt_runtime_stall_phase phase;
    int msg_type;               /* the shard message type being handled, -1 none */
    bool control;               /* msg_type is a control message type */
    uint64_t daemon_id;         /* the daemon whose process runs, 0 none */
    char thread_state;          /* the thread's state in /proc: 'R' on a CPU or waiting for one,
                                   'S' sleeping (a blocking call), 'D' uninterruptible, '?' */
    unsigned frames;            /* backtrace depth, 0 when none (see note) */
    void *const *addrs;         /* the frames' return addresses, innermost first */
    char *const *symbols;       /* backtrace_symbols of them ("file(function+off) [addr]") */
    const char *note;           /* why there is no backtrace, or NULL */
    uint64_t suppressed;        /* first report: this shard's stalls since the previous report
                                   that the rate limit left unreported (still counted) */
} mrt_runtime_stall_report;

/* Called on the watcher thread, one report at a time; the report lives for the call only. */
typedef void (*mrt_runtime_stall_fn)(const mrt_runtime_stall_report *r, void *ctx);

/*
 * Where reports go (before mrt_runtime_start; MRT_ESTATE after): fn(r,
 * ctx), or with fn NULL the default, which writes mrt_runtime_stall_format
 * to stderr. MRT_EINVAL for a NULL runtime.
 */
int mrt_runtime_set_stall_handler(mrt_runtime *rt, mrt_runtime_stall_fn fn, void *ctx);

/*
 * A report as text ("meshrt: stall on shard 0: ..." then one line per
 * frame), into buf (truncated, always terminated when len > 0). Returns the
 * length the whole text needs, like snprintf.
 */
size_t mrt_runtime_stall_format(const mrt_runtime_stall_report *r, char *buf, size_t len);

/*
 * Stalls detected on shard i so far (each stalled iteration counts once,
 * however many reports it had), and the longest one's length in ns
 * (max_ns may be NULL). 0 for a shard out of range or without a detector.
 * Also in mrt_runtime_shard_stats (stalls, stall_max_ns).
 */
uint64_t mrt_runtime_stall_count(const mrt_runtime *rt, unsigned i, uint64_t *max_ns);

#ifdef __cplusplus
}
#endif
#endif
