/*
 * Observation: per-shard stats and histograms for any thread.
 * First cut: shard and compute counters as their modules publish them
 * (field by field); the consistent block and the histograms replace it.
 */
#include "runtime/runtime_internal.h"

#include <string.h>

unsigned mrt_runtime_shards(const mrt_runtime *rt)
{
    return rt && rt->mesh ? mrt_mesh_size(rt->mesh) : 0;
}

int mrt_runtime_stats_read(const mrt_runtime *rt, unsigned i, mrt_runtime_shard_stats *out)
{
    if (rt == NULL || out == NULL || i >= mrt_runtime_shards(rt))
        return MRT_EINVAL;
    memset(out, 0, sizeof(*out));
    mrt_shard_stats_read(rt->mesh, i, &out->shard);
    if (rt->compute)
        (void)mrt_compute_stats_get(rt->compute, i, &out->compute);
    out->version = out->shard.iterations;
    out->stalls = mrt_runtime_stall_count(rt, i, &out->stall_max_ns);
    return MRT_OK;
}

static const char *const hist_names[MRT_RT_HIST_KINDS] = {
    [MRT_RT_HIST_ROUTE_DELIVER] = "route_deliver_ns",
    [MRT_RT_HIST_COMPLETION_RTT] = "completion_rtt_ns",
    [MRT_RT_HIST_ITER_BUSY] = "iteration_busy_ns",
    [MRT_RT_HIST_RING_OCCUPANCY] = "ring_occupancy",
};

const char *mrt_runtime_hist_name(mrt_runtime_hist_kind kind)
{
    return (unsigned)kind < MRT_RT_HIST_KINDS ? hist_names[kind] : NULL;
}

int mrt_runtime_hist_read(const mrt_runtime *rt, int i, mrt_runtime_hist_kind kind, mrt_hist *out)
{
    if (rt == NULL || out == NULL || (unsigned)kind >= MRT_RT_HIST_KINDS || i < -1 ||
        (i >= 0 && (unsigned)i >= mrt_runtime_shards(rt)))
        return MRT_EINVAL;
    memset(out, 0, sizeof(*out));
    return MRT_OK;
}
