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
    unsigned stats_interval_ms; /* `meshrt run` live-line and perf-sampling interval (default 1000) */
    double duration_s;          /* `meshrt run` duration; 0 = until SIGINT/SIGTERM (default 5) */
    bool json;                  /* `meshrt run` writes its summary as JSON */
    bool workload;              /* run the built-in default workload (default true); false:
                                   the shards run services and compute (mrt_runtime_compute) */
    /*
     * Number of shards; 0 = one per CPU of the selection (default). Fewer
     * takes the first CPUs; more needs allow_unbound and runs the shards
     * beyond the selection unpinned (counted in mrt_runtime_unbound) — so a
     * test gets 2 shards on a 1-CPU machine. At most MRT_MAX_SHARDS.
     */
    unsigned shards;
    mrt_lb_strategy lb_strategy; /* the workload's per-burst pick, or compute's set (default rr) */
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
 * mrt_lb_strategy_name), --json. String values point into argv. On error
 * returns MRT_RT_EFLAG (unknown flag), MRT_RT_EVALUE, MRT_RT_EDURATION,
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
 * egress through (after). Created by mrt_runtime_create when the built-in
 * workload is off; NULL when it is on (the workload owns the shards' tick).
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
 * Built-in default workload: every shard sends sequenced events, one burst
 * per destination per iteration, to destinations its balancer picks from
 * the current snapshot of the shard registry (round robin by default: every
 * shard, itself included); every receiver checks per-sender ordering and
 * delivers each in-order event to the daemon host it owns (a sampler daemon
 * emitting one causally stamped output per 64 events).
 * Counters of one shard, published once per poll iteration.
 */
typedef struct mrt_workload_stats {
    uint64_t sent;          /* events accepted by the mesh */
    uint64_t received;      /* events received */
    uint64_t handed_back;   /* events handed back to this shard */
    uint64_t violations;    /* out-of-order or duplicated events */
    uint64_t refused;       /* sends refused for backpressure (retried later, not lost) */
    uint64_t delivered;     /* events the shard's daemon host processed */
    uint64_t emitted;       /* outputs its daemon emitted (stamped with causal links) */
    uint64_t daemon_errors; /* events the host refused (counted, never silent) */
    uint64_t lb_errors;     /* bursts not placed: the balancer had no destination, or gave
                               one the mesh refused as invalid (not backpressure) */
    uint64_t lb_adopts;     /* snapshots this shard switched to */
} mrt_workload_stats;

/* Workload counters of shard i (any thread); zeros when the workload is off. */
void mrt_runtime_workload_stats(const mrt_runtime *rt, unsigned i, mrt_workload_stats *out);

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

/* Control-plane counters (control thread). */
void mrt_runtime_balancer_stats(const mrt_runtime *rt, mrt_balancer_counters *out);

#ifdef __cplusplus
}
#endif
#endif
