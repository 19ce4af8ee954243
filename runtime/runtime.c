/* The runtime: configuration, shard threads, start / stop / destroy. */
#include "runtime/rt_internal.h"

#include "compute/cp_internal.h"
#include "meshrt/mrt_metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void mrt_runtime_config_default(mrt_runtime_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->numa_node = -1;
    cfg->cpuset = NULL;
    cfg->burst = 32;
    cfg->ring_size = 1024;
    cfg->idle_spin = 1024;
    cfg->idle_sleep_max_us = 100;
    cfg->stats_interval_ms = 1000;
    cfg->duration_s = 5;
    cfg->workload = true;
    cfg->stall_ms = 10;
}

static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
        return MRT_RT_EVALUE;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end != '\0' || v > max)
        return MRT_RT_EVALUE;
    *out = (unsigned)v;
    return MRT_OK;
}

/* Every flag once: its name, whether it takes a value, and which commands accept it. */
typedef struct flag_def {
    const char *name;
    bool value;
    bool topo; /* `meshrt topo` accepts it too (every flag belongs to `meshrt run`) */
} flag_def;

static const flag_def flags[] = {
    { "--numa-node", true, true },      { "--cpuset", true, true },
    { "--allow-unbound", false, false }, { "--duration", true, false },
    { "--burst", true, false },         { "--ring-size", true, false },
    { "--overflow", true, false },      { "--idle-spin", true, false },
    { "--idle-sleep-us", true, false }, { "--stats-ms", true, false },
    { "--lb", true, false },            { "--json", false, false },
    { "--stall-ms", true, false },      { "--idle-wake", false, false },
    { "--tags", true, false },          { "--scenario", true, false },
    { "--metrics", true, false },       { "--metrics-remote", false, false },
};
enum { FLAG_COUNT = sizeof flags / sizeof flags[0] };
_Static_assert(FLAG_COUNT <= 32, "seen-flags mask");

size_t mrt_runtime_lb_choices(char *buf, size_t len, const char *sep)
{
    size_t need = 0;
    for (int k = 0; k < MRT_LB_STRATEGY_COUNT; k++) {
        const char *name = mrt_lb_strategy_name((mrt_lb_strategy)k);
        int w = snprintf(buf ? buf + (need < len ? need : len) : NULL,
                         buf && need < len ? len - need : 0, "%s%s", k ? sep : "", name);
        need += w > 0 ? (size_t)w : 0;
    }
    if (buf && len && need == 0)
        buf[0] = '\0';
    return need;
}

/* One flag and its value (v, NULL when the flag takes none) into cfg. */
static int apply_flag(int idx, const char *v, mrt_runtime_config *cfg, char *err, size_t errlen)
{
    const char *f = flags[idx].name;
    unsigned u = 0;
    unsigned *target = NULL;
    unsigned long max = 1u << 30;
    if (strcmp(f, "--json") == 0) {
        cfg->json = true;
        return MRT_OK;
    }
    if (strcmp(f, "--metrics-remote") == 0) {
        cfg->metrics_remote = true;
        return MRT_OK;
    }
    if (strcmp(f, "--metrics") == 0) {
        if (mrt_metrics_endpoint_check(v, NULL) != MRT_OK) {
            mrt_rt_seterr(err, errlen,
                   "--metrics needs ADDR:PORT (127.0.0.1:9100, [::1]:9100, localhost:0), got '%s'",
                   v ? v : "");
            return MRT_RT_EMETRICS_ADDR;
        }
        cfg->metrics = v;
        return MRT_OK;
    }
    if (strcmp(f, "--allow-unbound") == 0) {
        cfg->allow_unbound = true;
        return MRT_OK;
    }
    if (strcmp(f, "--idle-wake") == 0) {
        cfg->idle_wake = true;
        return MRT_OK;
    }
    if (strcmp(f, "--numa-node") == 0) {
        if (parse_uint(v, 1u << 20, &u) != MRT_OK) {
            mrt_rt_seterr(err, errlen, "--numa-node needs a node number, got '%s'", v ? v : "");
            return MRT_RT_EVALUE;
        }
        cfg->numa_node = (int)u;
        return MRT_OK;
    }
    if (strcmp(f, "--cpuset") == 0) {
        if (v == NULL || *v == '\0') {
            mrt_rt_seterr(err, errlen, "--cpuset needs a CPU list such as 0-3,8");
            return MRT_RT_EVALUE;
        }
        cfg->cpuset = v;
        return MRT_OK;
    }
    if (strcmp(f, "--duration") == 0) {
        char *end = NULL;
        double d = v ? strtod(v, &end) : NAN;
        if (v == NULL || *v == '\0' || *end != '\0' || !isfinite(d) || d < 0) {
            mrt_rt_seterr(err, errlen, "--duration needs a non-negative number of seconds, got '%s'",
                   v ? v : "");
            return v == NULL || *v == '\0' || *end != '\0' ? MRT_RT_EVALUE : MRT_RT_EDURATION;
        }
        cfg->duration_s = d;
        return MRT_OK;
    }
    if (strcmp(f, "--lb") == 0) {
        int found = -1;
        for (int k = 0; v && k < MRT_LB_STRATEGY_COUNT; k++)
            if (strcmp(v, mrt_lb_strategy_name((mrt_lb_strategy)k)) == 0)
                found = k;
        if (found < 0) {
            char names[256];
            mrt_runtime_lb_choices(names, sizeof names, ", ");
            mrt_rt_seterr(err, errlen, "--lb needs a strategy name (one of %s), got '%s'", names,
                   v ? v : "");
            return MRT_RT_EVALUE;
        }
        cfg->lb_strategy = (mrt_lb_strategy)found;
        return MRT_OK;
    }
    if (strcmp(f, "--tags") == 0 || strcmp(f, "--scenario") == 0) {
        if (v == NULL || *v == '\0') {
            mrt_rt_seterr(err, errlen, "%s needs a value%s", f,
                   f[2] == 't' ? " such as 0=gpu,ssd;1=ssd" : " (replica or scale)");
            return MRT_RT_EVALUE;
        }
        if (f[2] == 's' && strcmp(v, "replica") != 0 && strcmp(v, "scale") != 0 &&
            strcmp(v, "standby") != 0 && strcmp(v, "fork") != 0) {
            mrt_rt_seterr(err, errlen, "--scenario needs one of replica, scale, standby, fork, got '%s'",
                   v);
            return MRT_RT_EVALUE;
        }
        if (f[2] == 't')
            cfg->tags = v;
        else
            cfg->scenario = v;
        return MRT_OK;
    }
    unsigned long min = 0;
    if (strcmp(f, "--burst") == 0)
        target = &cfg->burst;
    else if (strcmp(f, "--ring-size") == 0)
        target = &cfg->ring_size;
    else if (strcmp(f, "--overflow") == 0)
        target = &cfg->overflow;
    else if (strcmp(f, "--idle-spin") == 0)
        target = &cfg->idle_spin;
    else if (strcmp(f, "--idle-sleep-us") == 0)
        target = &cfg->idle_sleep_max_us, max = 1000000;
    else if (strcmp(f, "--stats-ms") == 0)
        target = &cfg->stats_interval_ms, max = 3600000, min = 1;
    else if (strcmp(f, "--stall-ms") == 0)
        target = &cfg->stall_ms, max = 3600000;
    if (target == NULL) { /* a flags[] entry without a case above */
        mrt_rt_seterr(err, errlen, "flag '%s' is not handled", f);
        return MRT_RT_EFLAG;
    }
    if (parse_uint(v, max, &u) != MRT_OK || u < min) {
        if (min > 0)
            mrt_rt_seterr(err, errlen, "%s needs an integer in %lu..%lu, got '%s'", f, min, max,
                   v ? v : "");
        else
            mrt_rt_seterr(err, errlen, "%s needs a non-negative integer, got '%s'", f, v ? v : "");
        return MRT_RT_EVALUE;
    }
    *target = u;
    return MRT_OK;
}

int mrt_runtime_parse_command_args(mrt_runtime_command cmd, int argc, char **argv,
                                   mrt_runtime_config *cfg, char *err, size_t errlen)
{
    if (cfg == NULL || (argc > 0 && argv == NULL)) {
        mrt_rt_seterr(err, errlen, "NULL argument");
        return MRT_EINVAL;
    }
    uint32_t seen = 0;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        int idx = -1;
        for (int k = 0; k < FLAG_COUNT; k++)
            if (strcmp(f, flags[k].name) == 0)
                idx = k;
        if (idx < 0) {
            mrt_rt_seterr(err, errlen, "unknown flag '%s'", f);
            return MRT_RT_EFLAG;
        }
        if (cmd == MRT_RT_CMD_TOPO && !flags[idx].topo) {
            mrt_rt_seterr(err, errlen,
                   "%s applies to `meshrt run` only (`meshrt topo` takes --numa-node N or "
                   "--cpuset LIST)",
                   f);
            return MRT_RT_ECMDFLAG;
        }
        if (seen & (1u << idx)) {
            mrt_rt_seterr(err, errlen, "%s given more than once", f);
            return MRT_RT_EREPEAT;
        }
        seen |= 1u << idx;
        const char *v = NULL;
        if (flags[idx].value) {
            v = i + 1 < argc ? argv[i + 1] : NULL;
            i++;
        }
        int rc = apply_flag(idx, v, cfg, err, errlen);
        if (rc != MRT_OK)
            return rc;
    }
    if ((seen & 3u) == 3u) { /* flags[0] and flags[1] */
        mrt_rt_seterr(err, errlen, "--numa-node and --cpuset are exclusive");
        return MRT_RT_ECONFLICT;
    }
    return MRT_OK;
}

int mrt_runtime_parse_args(int argc, char **argv, mrt_runtime_config *cfg, char *err,
                           size_t errlen)
{
    return mrt_runtime_parse_command_args(MRT_RT_CMD_RUN, argc, argv, cfg, err, errlen);
}

/* The mesh part of a runtime configuration. */
static void mesh_config_of(const mrt_runtime_config *cfg, unsigned shards, mrt_mesh_config *mc)
{
    mrt_mesh_config_default(mc, shards);
    mc->burst = cfg->burst;
    mc->ring_size = cfg->ring_size;
    mc->overflow = cfg->overflow;
    mc->idle_spin = cfg->idle_spin;
    mc->idle_sleep_max_us = cfg->idle_sleep_max_us;
    mc->idle_wake = cfg->idle_wake;
    mc->stats_interval_ms = cfg->stats_interval_ms;
}

int mrt_runtime_check(const mrt_runtime_config *cfg, const mrt_topo *topo,
                      mrt_topo_selection *sel, char *err, size_t errlen)
{
    if (cfg == NULL || topo == NULL || sel == NULL) {
        mrt_rt_seterr(err, errlen, "NULL argument");
        return MRT_EINVAL;
    }
    if (cfg->burst == 0 || cfg->burst > MRT_MAX_BURST) {
        mrt_rt_seterr(err, errlen, "burst size %u is outside 1..%u", cfg->burst, MRT_MAX_BURST);
        return MRT_RT_EBURST;
    }
    if (cfg->ring_size == 0 || (cfg->ring_size & (cfg->ring_size - 1)) != 0) {
        mrt_rt_seterr(err, errlen, "ring size %u is not a power of two", cfg->ring_size);
        return MRT_RT_ERINGPOW2;
    }
    if (cfg->ring_size <= cfg->burst) {
        mrt_rt_seterr(err, errlen, "ring size %u must be larger than the burst size %u", cfg->ring_size,
               cfg->burst);
        return MRT_RT_ERINGBURST;
    }
    if (!isfinite(cfg->duration_s) || cfg->duration_s < 0) {
        mrt_rt_seterr(err, errlen, "duration must be a non-negative number of seconds");
        return MRT_RT_EDURATION;
    }
    int rc;
    if (cfg->cpuset != NULL) {
        rc = mrt_topo_select_cpuset(topo, cfg->cpuset, sel);
        if (rc != MRT_OK) {
            char pus[128] = "?";
            (void)mrt_topo_pu_list(topo, pus, sizeof pus);
            mrt_rt_seterr(err, errlen, "--cpuset '%s': %s (usable PUs: %s)", cfg->cpuset,
                   mrt_strerror(rc), pus);
            return rc;
        }
    } else {
        int node = cfg->numa_node >= 0 ? cfg->numa_node : mrt_topo_current_node(topo);
        rc = mrt_topo_select_node(topo, node, sel);
        if (rc != MRT_OK) {
            mrt_rt_seterr(err, errlen, "--numa-node %d: %s", node, mrt_strerror(rc));
            return rc;
        }
    }
    if (sel->count == 0 || sel->count > MRT_MAX_SHARDS) {
        mrt_rt_seterr(err, errlen, "the selection yields %u shards (supported: 1..%u)", sel->count,
               MRT_MAX_SHARDS);
        return MRT_RT_ESHARDS;
    }
    rc = mrt_sched_tags_check(cfg->tags, cfg->shards ? cfg->shards : sel->count, err, errlen);
    if (rc != MRT_OK)
        return rc;
    mrt_mesh_config mc;
    mesh_config_of(cfg, sel->count, &mc);
    const char *why = NULL;
    if (mrt_mesh_config_check(&mc, &why) != MRT_OK) {
        mrt_rt_seterr(err, errlen, "%s", why);
        return MRT_SHARD_ECONFIG;
    }
    return MRT_OK;
}

/*
 * cfg->shards: keep the first N CPUs of the selection, or repeat them and
 * run the shards beyond the selection unpinned (only with allow_unbound).
 */
static int apply_shards(const mrt_runtime_config *cfg, mrt_topo_selection *sel, unsigned *pinned,
                        char *err, size_t errlen)
{
    unsigned want = cfg->shards ? cfg->shards : sel->count;
    if (want > MRT_MAX_SHARDS) {
        mrt_rt_seterr(err, errlen, "%u shards asked (supported: 1..%u)", want, MRT_MAX_SHARDS);
        return MRT_RT_ESHARDS;
    }
    if (want > sel->count && !cfg->allow_unbound) {
        mrt_rt_seterr(err, errlen, "%u shards asked for %u CPUs: the rest would run unpinned "
               "(allow_unbound)", want, sel->count);
        return MRT_RT_ESHARDS;
    }
    *pinned = want < sel->count ? want : sel->count;
    for (unsigned i = sel->count; i < want; i++)
        sel->cpus[i] = sel->cpus[i % sel->count];
    sel->count = want;
    return MRT_OK;
}

/* Services over the mesh (the set's domain for routed sends), then compute on it. */
static int compute_setup(mrt_runtime *rt)
{
    mrt_svc_config sc;
    mrt_svc_config_default(&sc);
    sc.domain = rt->lb_domain;
    int rc = mrt_svc_create(rt->mesh, &sc, &rt->svc);
    if (rc == MRT_OK)
        rc = mrt_compute_create_(rt->mesh, rt->svc, rt->lb_registry, &rt->compute);
    return rc;
}

int mrt_runtime_create(const mrt_runtime_config *cfg, mrt_runtime **out, char *err,
                       size_t errlen)
{
    if (cfg == NULL || out == NULL) {
        mrt_rt_seterr(err, errlen, "NULL argument");
        return MRT_EINVAL;
    }
    mrt_runtime *rt = mrt_calloc(NULL, sizeof(*rt));
    if (rt == NULL)
        return MRT_ENOMEM;
    rt->cfg = *cfg;
    int rc = mrt_topo_load(&rt->topo);
    if (rc != MRT_OK) {
        mrt_rt_seterr(err, errlen, "topology discovery failed: %s", mrt_strerror(rc));
        goto fail;
    }
    rc = mrt_runtime_check(cfg, rt->topo, &rt->sel, err, errlen);
    if (rc != MRT_OK)
        goto fail;
    rc = apply_shards(cfg, &rt->sel, &rt->pinned, err, errlen);
    if (rc != MRT_OK)
        goto fail;
    mrt_mesh_config mc;
    mesh_config_of(cfg, rt->sel.count, &mc);
    rc = mrt_mesh_create(&mc, &rt->mesh);
    if (rc != MRT_OK) {
        mrt_rt_seterr(err, errlen, "mesh: %s", mrt_strerror(rc));
        goto fail;
    }
    rt->threads = mrt_calloc(NULL, sizeof(*rt->threads) * rt->sel.count);
    if (rt->threads == NULL) {
        rc = MRT_ENOMEM;
        goto fail;
    }
    if ((rc = mrt_balance_setup(rt, rt->sel.count)) != MRT_OK) {
        mrt_rt_seterr(err, errlen, "balancer: %s", mrt_strerror(rc));
        goto fail;
    }
    if ((rc = compute_setup(rt)) != MRT_OK) {
        mrt_rt_seterr(err, errlen, "services: %s", mrt_strerror(rc));
        goto fail;
    }
    if ((rc = mrt_stall_watch_create_(rt)) != MRT_OK)
        goto fail;
    if ((rc = mrt_publish_setup(rt)) != MRT_OK) {
        mrt_rt_seterr(err, errlen, "stats publication: %s", mrt_strerror(rc));
        goto fail;
    }
    if ((rc = mrt_sched_setup(rt, err, errlen)) != MRT_OK) {
        if (rc == MRT_ENOMEM)
            mrt_rt_seterr(err, errlen, "scheduler: %s", mrt_strerror(rc));
        goto fail;
    }
    pthread_mutex_init(&rt->gate_mu, NULL);
    pthread_cond_init(&rt->gate_cv, NULL);
    rt->gate_init = true;
    *out = rt;
    return MRT_OK;
fail:
    mrt_runtime_destroy(rt);
    return rc;
}

/* Start-up gate: a mutex and condvar are fine here, this is not the event path. */
static void gate_arrive_and_wait(mrt_runtime *rt)
{
    pthread_mutex_lock(&rt->gate_mu);
    rt->arrived++;
    pthread_cond_broadcast(&rt->gate_cv);
    while (!rt->go && !rt->abort)
        pthread_cond_wait(&rt->gate_cv, &rt->gate_mu);
    pthread_mutex_unlock(&rt->gate_mu);
}

static void *shard_main(void *arg)
{
    mrt_shard_thread *t = arg;
    mrt_runtime *rt = t->rt;
    mrt_shard *s = mrt_mesh_shard(rt->mesh, t->index);
    /* Named for top -H, perf --sort comm and gdb: mrt-shard-N (15 characters at most). */
    char name[16];
    snprintf(name, sizeof name, "mrt-shard-%u", t->index);
    (void)pthread_setname_np(pthread_self(), name);
    /* Shards beyond the selection run unpinned by request (cfg.shards). */
    t->bind_rc = t->index < rt->pinned ? mrt_topo_bind_thread(rt->topo, &rt->sel.cpus[t->index])
                                       : MRT_ESTATE;
    bool local = false;
    if (t->bind_rc == MRT_OK || rt->cfg.allow_unbound) {
        /* After binding, so the arena's first pages land on the shard's node. */
        t->init_rc = mrt_shard_init_local(s);
        local = t->init_rc == MRT_OK;
        if (local)
            t->init_rc = mrt_svc_shard_init(rt->svc, s, &t->ss);
    }
    gate_arrive_and_wait(rt);
    if (!rt->abort)
        mrt_shard_run(s);
    if (local) {
        /* Drained (or never run): services, compute and the arena go back on this thread. */
        mrt_svc_shard_fini(t->ss);
        t->ss = NULL;
        (void)mrt_shard_fini_local(s);
    }
    return NULL;
}

int mrt_runtime_start(mrt_runtime *rt, char *err, size_t errlen)
{
    if (rt == NULL)
        return MRT_EINVAL;
    if (rt->started)
        return MRT_ESTATE;
    rt->started = true;
    unsigned n = rt->sel.count;
    unsigned created = 0;
    int rc = MRT_OK;
    for (; created < n; created++) {
        mrt_shard_thread *t = &rt->threads[created];
        t->rt = rt;
        t->index = created;
        if (pthread_create(&t->tid, NULL, shard_main, t) != 0) {
            mrt_rt_seterr(err, errlen, "could not create the thread of shard %u", created);
            rc = MRT_RT_ETHREAD;
            break;
        }
        t->running = true;
    }
    pthread_mutex_lock(&rt->gate_mu);
    while (rc == MRT_OK && rt->arrived < n)
        pthread_cond_wait(&rt->gate_cv, &rt->gate_mu);
    for (unsigned i = 0; rc == MRT_OK && i < n; i++) {
        mrt_shard_thread *t = &rt->threads[i];
        const mrt_cpu *c = &rt->sel.cpus[i];
        if (t->bind_rc != MRT_OK && !rt->cfg.allow_unbound) {
            mrt_rt_seterr(err, errlen,
                   "shard %u: binding to PU %u / NUMA node %d refused: %s "
                   "(pass --allow-unbound to run unbound)",
                   i, c->pu, c->numa_node, mrt_strerror(t->bind_rc));
            rc = MRT_RT_EBIND;
        } else if (t->init_rc != MRT_OK) {
            mrt_rt_seterr(err, errlen, "shard %u: initialisation failed: %s", i,
                   mrt_strerror(t->init_rc));
            rc = MRT_RT_ETHREAD;
        }
        if (t->bind_rc != MRT_OK)
            rt->unbound++;
    }
    if (rc == MRT_OK) {
        rt->go = true;
        mrt_compute_started_(rt->compute);
    } else {
        rt->abort = true;
    }
    pthread_cond_broadcast(&rt->gate_cv);
    pthread_mutex_unlock(&rt->gate_mu);
    if (rc != MRT_OK) {
        for (unsigned i = 0; i < created; i++)
            if (rt->threads[i].running)
                pthread_join(rt->threads[i].tid, NULL);
        for (unsigned i = 0; i < created; i++)
            rt->threads[i].running = false;
        return rc;
    }
    rt->running = true;
    if ((rc = mrt_stall_watch_start_(rt)) != MRT_OK) {
        mrt_rt_seterr(err, errlen, "the stall detector could not start: %s", mrt_strerror(rc));
        mrt_runtime_stop(rt);
        return rc;
    }
    return MRT_OK;
}

int mrt_runtime_stop(mrt_runtime *rt)
{
    if (rt == NULL)
        return MRT_EINVAL;
    if (!rt->running)
        return MRT_OK;
    if (rt->compute) {
        /*
         * Egress holds buffers the drain waits for: this thread empties it
         * while the shards settle (mrt_mesh_stop would wait forever).
         */
        mrt_compute_stopping_(rt->compute);
        mrt_mesh_request_stop(rt->mesh);
        while (!mrt_mesh_try_drain(rt->mesh)) {
            if (mrt_compute_drain_egress_(rt->compute) == 0) {
                struct timespec ts = { 0, 20000 };
                nanosleep(&ts, NULL);
            }
        }
    } else {
        mrt_mesh_stop(rt->mesh);
    }
    mrt_stall_watch_stop_(rt); /* it signals shard threads: before they are joined */
    for (unsigned i = 0; i < rt->sel.count; i++) {
        if (rt->threads[i].running) {
            pthread_join(rt->threads[i].tid, NULL);
            rt->threads[i].running = false;
        }
    }
    rt->running = false;
    return MRT_OK;
}

void mrt_runtime_destroy(mrt_runtime *rt)
{
    if (rt == NULL)
        return;
    mrt_runtime_metrics_stop(rt); /* its thread reads the stats: first */
    mrt_runtime_stop(rt);
    mrt_stall_watch_destroy_(rt);
    mrt_sched_teardown(rt);
    mrt_compute_destroy_(rt->compute);
    mrt_svc_destroy(rt->svc);
    mrt_publish_teardown(rt);
    mrt_balance_teardown(rt);
    mrt_mesh_destroy(rt->mesh);
    mrt_topo_destroy(rt->topo);
    mrt_free(NULL, rt->threads, sizeof(*rt->threads) * rt->sel.count);
    if (rt->gate_init) {
        pthread_mutex_destroy(&rt->gate_mu);
        pthread_cond_destroy(&rt->gate_cv);
    }
    mrt_free(NULL, rt, sizeof(*rt));
}

mrt_mesh *mrt_runtime_mesh(mrt_runtime *rt)
{
    return rt->mesh;
}

mrt_compute *mrt_runtime_compute(mrt_runtime *rt)
{
    return rt ? rt->compute : NULL;
}

const mrt_topo_selection *mrt_runtime_selection(const mrt_runtime *rt)
{
    return &rt->sel;
}

unsigned mrt_runtime_unbound(const mrt_runtime *rt)
{
    return rt->unbound;
}

int mrt_runtime_shard_cpu_ns(const mrt_runtime *rt, unsigned i, uint64_t *ns)
{
    if (rt == NULL || ns == NULL || i >= rt->sel.count)
        return MRT_EINVAL;
    if (!rt->running || !rt->threads[i].running)
        return MRT_ESTATE;
    clockid_t clk;
    struct timespec ts;
    if (pthread_getcpuclockid(rt->threads[i].tid, &clk) != 0 || clock_gettime(clk, &ts) != 0)
        return MRT_ESTATE;
    *ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return MRT_OK;
}
