/*
 * The runtime's shard scheduler: built from the selection (numa:N, core:N)
 * and --tags, loads refreshed once per control tick from what the shards
 * publish, compute's default placement routed through it, shard drain and
 * failure, and the control-tick hooks modules above the runtime add (the
 * daemon groups' recovery registry).
 */
#include "runtime/rt_internal.h"

#include "compute/cp_internal.h"
#include "shards/shard_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/*
 * Walk "SHARD=TAG,TAG;SHARD=TAG": fn(ctx, shard, tag) per tag (s may be
 * NULL: syntax only). Indices must be < n and given once.
 */
static int tags_walk(const char *spec, unsigned n, mrt_sched *s, char *err, size_t errlen)
{
    char seen[MRT_MAX_SHARDS] = { 0 };
    const char *p = spec;
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p)) {
            mrt_rt_seterr(err, errlen, "--tags: expected a shard index at '%s' (form 0=gpu,ssd;1=ssd)", p);
            return MRT_RT_EVALUE;
        }
        unsigned long shard = strtoul(p, &end, 10);
        if (*end != '=') {
            mrt_rt_seterr(err, errlen, "--tags: expected '=' after shard %lu", shard);
            return MRT_RT_EVALUE;
        }
        if (shard >= n) {
            mrt_rt_seterr(err, errlen, "--tags: shard %lu is past the %u shards", shard, n);
            return MRT_RT_ESHARDS;
        }
        if (seen[shard]++) {
            mrt_rt_seterr(err, errlen, "--tags: shard %lu given twice", shard);
            return MRT_RT_EVALUE;
        }
        p = end + 1;
        for (;;) {
            size_t len = strcspn(p, ",;");
            char tag[MRT_SCHED_TAG_MAX + 2];
            if (len == 0 || len > MRT_SCHED_TAG_MAX) {
                mrt_rt_seterr(err, errlen, "--tags: shard %lu: empty or too long tag", shard);
                return MRT_RT_EVALUE;
            }
            memcpy(tag, p, len);
            tag[len] = '\0';
            /* Validate the name with a scratch scheduler when none is given. */
            mrt_sched *v = s;
            if (v == NULL && mrt_sched_create(NULL, 1, &v) != MRT_OK)
                return MRT_ENOMEM;
            int rc = s ? mrt_sched_shard_add_tag(s, (uint32_t)shard, tag)
                       : mrt_sched_tag_intern(v, tag, NULL);
            if (s == NULL)
                mrt_sched_destroy(v);
            if (rc != MRT_OK) {
                mrt_rt_seterr(err, errlen, "--tags: shard %lu: tag '%s': %s", shard, tag,
                       mrt_sched_strerror(rc));
                return MRT_RT_EVALUE;
            }
            p += len;
            if (*p != ',')
                break;
            p++;
        }
        if (*p == ';')
            p++;
    }
    return MRT_OK;
}

int mrt_sched_tags_check(const char *spec, unsigned n, char *err, size_t errlen)
{
    return spec ? tags_walk(spec, n, NULL, err, errlen) : MRT_OK;
}

/*
 * Score for compute's default placement: fewer hosted daemons score higher
 * (the counts compute keeps as it spawns, so placements between two load
 * refreshes still spread); equal counts fall to the scheduler's ranking.
 */
static double score_hosted(void *ctx, uint32_t shard, double free_capacity)
{
    (void)free_capacity;
    const uint32_t *hosted = ctx;
    return 1.0 / (1.0 + (double)hosted[shard]);
}

static int place_sched(void *ctx, uint16_t type, const uint32_t *hosted, unsigned nshards)
{
    (void)type;
    mrt_runtime *rt = ctx;
    if (nshards != mrt_sched_shard_count(rt->sched))
        return MRT_CP_ENOPLACE;
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.score = score_hosted;
    rq.score_ctx = (void *)(uintptr_t)hosted;
    uint32_t out;
    return mrt_sched_place(rt->sched, &rq, 1, &out) == MRT_OK ? (int)out : MRT_CP_ENOPLACE;
}

int mrt_sched_setup(mrt_runtime *rt, char *err, size_t errlen)
{
    unsigned n = rt->sel.count;
    int rc = mrt_sched_create(NULL, n, &rt->sched);
    if (rc != MRT_OK)
        return MRT_ENOMEM;
    rt->sched_prev = mrt_calloc(NULL, sizeof(uint64_t) * 2 * n);
    rt->failed = mrt_calloc(NULL, sizeof(bool) * n);
    if (rt->sched_prev == NULL || rt->failed == NULL)
        return MRT_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        const mrt_cpu *c = &rt->sel.cpus[i];
        (void)mrt_sched_shard_set_topology(rt->sched, i,
                                           c->numa_node >= 0 ? (uint32_t)c->numa_node
                                                             : MRT_SCHED_NONE,
                                           c->core);
    }
    if (rt->cfg.tags && (rc = tags_walk(rt->cfg.tags, n, rt->sched, err, errlen)) != MRT_OK)
        return rc;
    mrt_compute_set_default_placement_(rt->compute, place_sched, rt);
    return MRT_OK;
}

void mrt_sched_teardown(mrt_runtime *rt)
{
    unsigned n = rt->sel.count;
    mrt_sched_destroy(rt->sched);
    rt->sched = NULL;
    mrt_free(NULL, rt->sched_prev, sizeof(uint64_t) * 2 * n);
    mrt_free(NULL, rt->failed, sizeof(bool) * n);
    rt->sched_prev = NULL;
    rt->failed = NULL;
}

/* Messages waiting in shard i's inbound rings (0 before its rings exist). */
static uint32_t ring_used(mrt_runtime *rt, unsigned i, uint32_t *size)
{
    mrt_shard *s = mrt_mesh_shard(rt->mesh, i);
    unsigned n = rt->sel.count;
    *size = 0;
    if (s == NULL || !atomic_load_explicit(&s->ready, memory_order_acquire))
        return 0;
    uint32_t used = 0;
    for (unsigned src = 0; src < n; src++)
        if (s->in[src])
            used += mrt_ring_msgs(s->in[src]);
    *size = rt->cfg.ring_size * n;
    return used < *size ? used : *size;
}

void mrt_sched_refresh(mrt_runtime *rt)
{
    if (rt->sched == NULL || !rt->running)
        return;
    for (unsigned i = 0; i < rt->sel.count; i++) {
        mrt_shard_stats st;
        mrt_shard_stats_read(rt->mesh, i, &st);
        mrt_compute_stats cs = { 0 };
        (void)mrt_compute_stats_get(rt->compute, i, &cs);
        uint64_t *prev = &rt->sched_prev[2 * i];
        uint64_t busy = st.busy_cycles - prev[0];
        uint64_t total = st.busy_cycles + st.idle_cycles - prev[1];
        prev[0] = st.busy_cycles;
        prev[1] = st.busy_cycles + st.idle_cycles;
        mrt_sched_load l = { 0 };
        l.busy = total ? (double)busy / (double)total : 0.0;
        if (l.busy > 1.0)
            l.busy = 1.0;
        l.hosted = (uint32_t)cs.hosted;
        l.ring_used = ring_used(rt, i, &l.ring_size);
        (void)mrt_sched_shard_set_load(rt->sched, i, &l);
    }
}

void mrt_sched_run_hooks(mrt_runtime *rt)
{
    for (unsigned k = 0; k < rt->ntick; k++)
        rt->tick_fn[k](rt, rt->tick_ctx[k]);
}

mrt_sched *mrt_runtime_sched(mrt_runtime *rt)
{
    return rt ? rt->sched : NULL;
}

int mrt_runtime_drain_shard(mrt_runtime *rt, unsigned i, bool drained)
{
    if (rt == NULL || rt->sched == NULL || i >= rt->sel.count)
        return MRT_EINVAL;
    return mrt_sched_shard_set_drained(rt->sched, i, drained) == MRT_OK ? MRT_OK : MRT_EINVAL;
}

int mrt_runtime_fail_shard(mrt_runtime *rt, unsigned i)
{
    if (rt == NULL || rt->sched == NULL || i >= rt->sel.count)
        return MRT_EINVAL;
    rt->failed[i] = true;
    return mrt_sched_shard_set_failed(rt->sched, i, true) == MRT_OK ? MRT_OK : MRT_EINVAL;
}

bool mrt_runtime_shard_failed(const mrt_runtime *rt, unsigned i)
{
    return rt && rt->failed && i < rt->sel.count && rt->failed[i];
}

int mrt_runtime_add_tick_hook(mrt_runtime *rt, mrt_runtime_tick_fn fn, void *ctx)
{
    if (rt == NULL || fn == NULL)
        return MRT_EINVAL;
    if (rt->ntick >= MRT_RUNTIME_MAX_TICK_HOOKS)
        return MRT_RT_EVALUE;
    rt->tick_fn[rt->ntick] = fn;
    rt->tick_ctx[rt->ntick++] = ctx;
    return MRT_OK;
}

mrt_svc *mrt_runtime_services(mrt_runtime *rt)
{
    return rt ? rt->svc : NULL;
}
