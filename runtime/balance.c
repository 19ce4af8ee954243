/*
 * The runtime's balancer control plane: a registry — compute's
 * balancer-routed set, one endpoint per member daemon — snapshots compiled here and published through a
 * quiescent-state domain that every shard syncs with at its poll-iteration
 * boundary (services syncs it for compute), breaker reports coming back
 * from the shards on one SPSC ring each.
 */
#include "runtime/rt_internal.h"

#include "compute/cp_internal.h"

#include <string.h>

/* The control plane's counters where any thread may read them (mrt_runtime_balancer_stats). */
static void publish_counters(mrt_runtime *rt)
{
    mrt_lb_domain_stats ds;
    mrt_lb_domain_stats_get(rt->lb_domain, &ds);
    atomic_store_explicit(&rt->lb_pub.published, ds.published, memory_order_relaxed);
    atomic_store_explicit(&rt->lb_pub.retired, ds.retired, memory_order_relaxed);
    atomic_store_explicit(&rt->lb_pub.freed, ds.freed, memory_order_relaxed);
    atomic_store_explicit(&rt->lb_pub.breaker_reports, rt->lb_reports, memory_order_relaxed);
}

int mrt_balance_setup(mrt_runtime *rt, unsigned shards)
{
    mrt_lb_config lc;
    mrt_lb_config_default(&lc);
    lc.strategy = rt->cfg.lb_strategy;
    int rc = mrt_lb_registry_create(NULL, &lc, &rt->lb_registry);
    /* The set starts empty: compute adds its members. */
    if (rc == MRT_OK)
        rc = mrt_lb_domain_create(NULL, shards, &rt->lb_domain);
    mrt_lb_snapshot *snap = NULL;
    if (rc == MRT_OK)
        rc = mrt_lb_registry_compile(rt->lb_registry, 0, NULL, &snap);
    if (rc == MRT_OK && mrt_lb_domain_publish(rt->lb_domain, snap) < 0) {
        mrt_lb_snapshot_free(snap);
        rc = MRT_LB_EINVAL;
    }
    rt->lb_next_change = UINT64_MAX;
    if (rc == MRT_OK)
        publish_counters(rt);
    return rc;
}

void mrt_balance_teardown(mrt_runtime *rt)
{
    mrt_lb_domain_destroy(rt->lb_domain);
    mrt_lb_registry_destroy(rt->lb_registry);
    rt->lb_domain = NULL;
    rt->lb_registry = NULL;
}

int mrt_runtime_control_tick(mrt_runtime *rt, bool republish)
{
    if (rt == NULL)
        return MRT_EINVAL;
    if (rt->lb_registry == NULL)
        return MRT_ESTATE;
    uint64_t now = mrt_mesh_clock(rt->mesh);
    /* Asked to, a trip expired, or compute changed the set. */
    bool changed = republish || now >= rt->lb_next_change;
    changed |= mrt_compute_set_changed_(rt->compute);
    mrt_lb_breaker_report rep[32];
    for (unsigned i = 0; i < rt->sel.count; i++) {
        size_t n;
        while ((n = mrt_compute_take_reports_(rt->compute, i, rep, 32)) > 0) {
            for (size_t k = 0; k < n; k++)
                if (mrt_lb_registry_apply_report(rt->lb_registry, &rep[k]) == MRT_OK) {
                    rt->lb_reports++;
                    changed = true;
                }
        }
    }
    int published = 0;
    if (changed) {
        mrt_lb_snapshot *snap = NULL;
        int rc = mrt_lb_registry_compile(rt->lb_registry, now, NULL, &snap);
        if (rc != MRT_OK)
            return rc;
        if (mrt_lb_domain_publish(rt->lb_domain, snap) < 0) {
            mrt_lb_snapshot_free(snap);
            return MRT_LB_EINVAL;
        }
        rt->lb_next_change = mrt_lb_registry_next_change_ns(rt->lb_registry, now);
        published = 1;
    }
    mrt_lb_domain_reclaim(rt->lb_domain);
    publish_counters(rt);
    mrt_sched_refresh(rt); /* the shards' loads, then the modules' hooks (groups' recovery) */
    mrt_sched_run_hooks(rt);
    return published;
}

void mrt_runtime_balancer_stats(const mrt_runtime *rt, mrt_balancer_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (rt == NULL)
        return;
    out->published = atomic_load_explicit(&rt->lb_pub.published, memory_order_relaxed);
    out->retired = atomic_load_explicit(&rt->lb_pub.retired, memory_order_relaxed);
    out->freed = atomic_load_explicit(&rt->lb_pub.freed, memory_order_relaxed);
    out->breaker_reports = atomic_load_explicit(&rt->lb_pub.breaker_reports, memory_order_relaxed);
}
