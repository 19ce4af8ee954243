/*
 * The pipeline suite's runs (pipeline_run.c), for its driver
 * (bench_pipeline.c, which describes every variant).
 */
#ifndef MRT_BENCH_PIPELINE_H
#define MRT_BENCH_PIPELINE_H

#include "meshrt/mrt_topo.h"

#include <stdbool.h>
#include <stdint.h>

#define NSH 2 /* shards in every run */

typedef enum pl_mode { PL_ONE, PL_SHARD, PL_INGRESS } pl_mode;

/*
 * How a producer sends: routed (mrt_svc_send_routed: select, in-flight slot,
 * completion back), unrouted (mrt_svc_send to alternating shards: nothing of
 * the balancer) or local (the routed send's selection, completed at once on
 * this shard, then mrt_svc_send: everything but the completion path).
 */
typedef enum pl_route { RT_ROUTED, RT_UNROUTED, RT_LOCAL } pl_route;

/* What one run measured. */
typedef struct pl_result {
    uint64_t ns;           /* timed part */
    double oncpu;          /* shard_: the lower of the two threads' CPU time / wall time */
    uint64_t events, lost, refused;
    uint64_t allocs;       /* from the phase mark to the end of the timed part */
    bool ok;
} pl_result;

/*
 * One whole run: set up, warm up, time `events`, drain, tear down. `lat`
 * (ingress mode, or NULL): one delivery latency per timed event, ns.
 */
pl_result pl_pipeline_once(pl_mode mode, const mrt_topo *topo, const mrt_cpu *cpu, bool pinned,
                           bool idle_wake, pl_route route, uint32_t len, uint64_t events,
                           uint64_t *lat);

#endif
