/*
 * Observation: per-shard stats and histograms for any thread, read from
 * the blocks the shards publish (runtime/publish.c): each read is one
 * publication, whole.
 */
#include "runtime/rt_internal.h"

#include <string.h>

unsigned mrt_runtime_shards(const mrt_runtime *rt)
{
    return rt && rt->mesh ? mrt_mesh_size(rt->mesh) : 0;
}

int mrt_runtime_stats_read(const mrt_runtime *rt, unsigned i, mrt_runtime_shard_stats *out)
{
    if (rt == NULL || out == NULL || i >= mrt_runtime_shards(rt) || rt->pub == NULL)
        return MRT_EINVAL;
    mrt_publish_read(rt, i, out);
    out->stalls = mrt_runtime_stall_count(rt, i, &out->stall_max_ns);
    return MRT_OK;
}

static const char *const msg_kind_names[MRT_RT_MSG_KINDS] = {
    [MRT_RT_MSG_EVENT] = "event",     [MRT_RT_MSG_RETURN] = "return",
    [MRT_RT_MSG_COMPLETION] = "completion", [MRT_RT_MSG_USER] = "user",
    [MRT_RT_MSG_CONTROL] = "control", [MRT_RT_MSG_EGRESS] = "egress",
};

const char *mrt_runtime_msg_kind_name(mrt_runtime_msg_kind kind)
{
    return (unsigned)kind < MRT_RT_MSG_KINDS ? msg_kind_names[kind] : NULL;
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
    unsigned n = mrt_runtime_shards(rt);
    if (rt == NULL || out == NULL || (unsigned)kind >= MRT_RT_HIST_KINDS || i < -1 ||
        (i >= 0 && (unsigned)i >= n) || rt->pub == NULL)
        return MRT_EINVAL;
    if (i >= 0) {
        mrt_publish_read_hist(rt, (unsigned)i, kind, out);
        return MRT_OK;
    }
    /* Merged by the caller (the control thread): shard by shard, each copy whole. */
    memset(out, 0, sizeof(*out));
    for (unsigned k = 0; k < n; k++) {
        mrt_hist h;
        mrt_publish_read_hist(rt, k, kind, &h);
        mrt_hist_merge(out, &h);
    }
    return MRT_OK;
}
