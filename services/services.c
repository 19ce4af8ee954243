/*
 * Services lifecycle: the mesh-wide object and its registrations, the
 * per-shard part built on the shard thread, the tick that services
 * installs on its shard, counters and status names.
 */
#include "services/svc_internal.h"

#include "meshrt/mrt_perf.h"

#include <stdalign.h>
#include <string.h>
#include <sys/random.h>

const char *mrt_svc_strerror(int status)
{
    switch (status) {
    case MRT_SVC_ETOOBIG: return "payload longer than the configured maximum";
    case MRT_SVC_EPOOL: return "no free buffer of the payload's size class";
    case MRT_SVC_EINFLIGHT: return "in-flight completion table full";
    case MRT_SVC_ENOHOST: return "no host with this daemon id on this shard";
    case MRT_SVC_EEXIST: return "daemon id or name already registered";
    case MRT_SVC_ELIMIT: return "fixed-capacity table full";
    case MRT_SVC_ENOBALANCER: return "no balancer domain or adopted snapshot";
    case MRT_SVC_ECONFIG: return "invalid services configuration";
    case MRT_SVC_ENOTYPE: return "no such registered message type";
    default: return NULL;
    }
}

void mrt_svc_config_default(mrt_svc_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_payload = MRT_SVC_DEFAULT_MAX_PAYLOAD;
    cfg->pool_buffers = 1024;
    cfg->pool_class_bytes = 1u << 20;
    cfg->pool_min_buffers = 16;
    cfg->host_capacity = 1024;
    cfg->inflight = 4096;
    cfg->shard_type_base = 32;
    cfg->shard_type_count = 32;
    cfg->ingress_buffers = 256;
    cfg->ingress_class_bytes = 256u << 10;
    cfg->egress_ring = 1024;
}

static int config_check(const mrt_svc_config *c)
{
    if (c->max_payload > MRT_SVC_MAX_PAYLOAD_LIMIT || c->pool_buffers == 0 ||
        c->pool_min_buffers == 0 || c->pool_min_buffers > c->pool_buffers ||
        c->host_capacity == 0 || c->host_capacity > (1u << 24) || c->inflight == 0 ||
        c->inflight > (1u << SVC_SLOT_BITS) || c->shard_type_count < SVC_T_USER ||
        c->ingress_buffers > (1u << 24) || c->egress_ring == 0 || c->egress_ring > (1u << 24) ||
        (unsigned)c->shard_type_base + c->shard_type_count > MRT_MSG_TYPES)
        return MRT_SVC_ECONFIG;
    return MRT_OK;
}

int mrt_svc_create(mrt_mesh *m, const mrt_svc_config *cfg, mrt_svc **out)
{
    if (m == NULL || out == NULL)
        return MRT_EINVAL;
    mrt_svc_config def;
    if (cfg == NULL) {
        mrt_svc_config_default(&def);
        cfg = &def;
    }
    int rc = config_check(cfg);
    if (rc != MRT_OK)
        return rc;
    mrt_svc *svc = mrt_calloc(NULL, sizeof(*svc));
    if (svc == NULL)
        return MRT_ENOMEM;
    svc->mesh = m;
    svc->n = mrt_mesh_size(m);
    svc->cfg = *cfg;
    atomic_init(&svc->started, false);
    rc = svc_layout(svc);
    if (rc != MRT_OK) {
        mrt_free(NULL, svc, sizeof(*svc));
        return rc;
    }
    /* A secret seed keys the host tables; the TSC is the fallback when getrandom is not there. */
    if (getrandom(&svc->seed, sizeof svc->seed, GRND_NONBLOCK) != (ssize_t)sizeof svc->seed)
        svc->seed = mrt_rdtsc() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)svc;
    svc->base = mrt_calloc(NULL, sizeof(*svc->base) * svc->n);
    svc->shards = mrt_calloc(NULL, sizeof(*svc->shards) * svc->n);
    svc->eg_app = mrt_alloc_aligned(NULL, sizeof(*svc->eg_app) * svc->n, alignof(svc_eg_app));
    if (svc->base == NULL || svc->shards == NULL || svc->eg_app == NULL) {
        mrt_svc_destroy(svc);
        return MRT_ENOMEM;
    }
    for (unsigned i = 0; i < svc->n; i++) {
        atomic_init(&svc->shards[i], NULL);
        atomic_init(&svc->eg_app[i].polled, 0);
    }
    *out = svc;
    return MRT_OK;
}

void mrt_svc_destroy(mrt_svc *svc)
{
    if (svc == NULL)
        return;
    mrt_free(NULL, svc->base, sizeof(*svc->base) * svc->n);
    mrt_free(NULL, svc->shards, sizeof(*svc->shards) * svc->n);
    mrt_free_aligned(NULL, svc->eg_app, sizeof(*svc->eg_app) * svc->n, alignof(svc_eg_app));
    mrt_free(NULL, svc, sizeof(*svc));
}

static bool name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && strlen(name) <= MRT_SVC_NAME_MAX;
}

int mrt_svc_register_type(mrt_svc *svc, const char *name, mrt_svc_handler fn,
                          mrt_svc_burst_handler burst, void *ctx, uint16_t *id)
{
    if (svc == NULL || !name_ok(name) || (fn == NULL && burst == NULL) || id == NULL)
        return MRT_EINVAL;
    if (atomic_load(&svc->started))
        return MRT_ESTATE;
    uint16_t dummy;
    if (mrt_svc_type_find(svc, name, &dummy) == MRT_OK)
        return MRT_SVC_EEXIST;
    if (svc->ntypes >= MRT_SVC_MAX_TYPES ||
        svc->ntypes >= (unsigned)svc->cfg.shard_type_count - SVC_T_USER)
        return MRT_SVC_ELIMIT;
    svc_type *t = &svc->types[svc->ntypes];
    strcpy(t->name, name);
    t->fn = fn;
    t->burst = burst;
    t->ctx = ctx;
    *id = (uint16_t)svc->ntypes++;
    return MRT_OK;
}

int mrt_svc_type_find(const mrt_svc *svc, const char *name, uint16_t *id)
{
    if (svc == NULL || name == NULL || id == NULL)
        return MRT_EINVAL;
    for (unsigned i = 0; i < svc->ntypes; i++)
        if (strcmp(svc->types[i].name, name) == 0) {
            *id = (uint16_t)i;
            return MRT_OK;
        }
    return MRT_SVC_ENOTYPE;
}

int mrt_svc_register_subsystem(mrt_svc *svc, const char *name, mrt_svc_init_fn init,
                               mrt_svc_fini_fn fini, void *ctx, uint16_t *id)
{
    if (svc == NULL || !name_ok(name))
        return MRT_EINVAL;
    if (atomic_load(&svc->started))
        return MRT_ESTATE;
    for (unsigned i = 0; i < svc->nsubs; i++)
        if (strcmp(svc->subs[i].name, name) == 0)
            return MRT_SVC_EEXIST;
    if (svc->nsubs >= MRT_SVC_MAX_SUBSYSTEMS)
        return MRT_SVC_ELIMIT;
    svc_subsystem *s = &svc->subs[svc->nsubs];
    strcpy(s->name, name);
    s->init = init;
    s->fini = fini;
    s->ctx = ctx;
    if (id)
        *id = (uint16_t)svc->nsubs;
    svc->nsubs++;
    return MRT_OK;
}

int mrt_svc_set_handback(mrt_svc *svc, mrt_svc_handback_fn fn, void *ctx)
{
    if (svc == NULL)
        return MRT_EINVAL;
    if (atomic_load(&svc->started))
        return MRT_ESTATE;
    svc->handback = fn;
    svc->handback_ctx = ctx;
    return MRT_OK;
}

int mrt_svc_set_output(mrt_svc *svc, mrt_svc_output_fn fn, void *ctx)
{
    if (svc == NULL)
        return MRT_EINVAL;
    if (atomic_load(&svc->started))
        return MRT_ESTATE;
    svc->output = fn;
    svc->output_ctx = ctx;
    return MRT_OK;
}

/* ---- the shard's side ------------------------------------------------------ */

/* Registered types: the shard calls this with the type's context. */
static void on_user(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx)
{
    (void)s;
    const svc_type_rt *r = ctx;
    r->ss->st.user_msgs_received += n;
    if (r->t->burst) {
        r->t->burst(r->ss, m, n, r->t->ctx);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        r->t->fn(r->ss, &m[i], r->t->ctx);
}

/*
 * Services' tick: switch snapshots at this boundary (no selection is in
 * progress), send what is owed (before producers, so freeing keeps up with
 * producing), then the hooks.
 */
static void on_tick(mrt_shard *s, bool draining, void *ctx)
{
    mrt_svc_shard *ss = ctx;
    if (ss->lb)
        (void)mrt_lb_domain_sync(ss->svc->cfg.domain, ss->id, ss->lb);
    if (ss->st.egress_out)
        svc_egress_returns(ss);
    svc_ingress_reclaim(ss);
    if (ss->npend_dirty)
        svc_flush_owed(ss);
    for (unsigned i = 0; i < ss->nhooks; i++)
        ss->hooks[i].fn(ss, draining, ss->hooks[i].ctx);
    if (ss->nheld)
        svc_retry_held(ss); /* after the hooks, which made room (compute's deferred sends) */
    if (draining && ss->npend_dirty) {
        /* Push the queues out and try once more: the drain then ends sooner. */
        mrt_shard_flush(s);
        svc_flush_owed(ss);
    }
    /*
     * What the drain must still wait for: staged returns and completions,
     * buffers out in egress, and what subsystems hold (mrt_svc_set_pending).
     */
    uint64_t pending = ss->st.backlog + ss->st.egress_out + ss->nheld;
    for (unsigned i = 0; i < ss->svc->nsubs; i++)
        pending += ss->sub_pending[i];
    ss->st.pending = pending;
    mrt_shard_set_pending(s, pending);
}

int mrt_svc_set_pending(mrt_svc_shard *ss, uint16_t id, uint64_t n)
{
    if (ss == NULL || id >= ss->svc->nsubs)
        return MRT_EINVAL;
    ss->sub_pending[id] = n;
    return MRT_OK;
}

static void shard_free(mrt_svc_shard *ss)
{
    if (ss->lb) {
        mrt_lb_domain_offline(ss->svc->cfg.domain, ss->id);
        mrt_lb_shard_destroy(ss->lb);
    }
    svc_hold_fini(ss);
    svc_egress_fini(ss);
    svc_ingress_fini(ss);
    svc_flow_fini(ss);
    svc_hosts_fini(ss);
    svc_pool_fini(ss);
    mrt_free_aligned(ss->alloc, ss, sizeof(*ss), 128);
}

static void run_finis(mrt_svc_shard *ss)
{
    while (ss->ninit > 0) {
        ss->ninit--;
        const svc_subsystem *sub = &ss->svc->subs[ss->ninit];
        if (sub->fini)
            sub->fini(ss, sub->ctx, ss->state[ss->ninit]);
    }
}

int mrt_svc_shard_init(mrt_svc *svc, mrt_shard *s, mrt_svc_shard **out)
{
    if (svc == NULL || s == NULL || out == NULL)
        return MRT_EINVAL;
    unsigned id = mrt_shard_id(s);
    if (id >= svc->n || mrt_mesh_shard(svc->mesh, id) != s)
        return MRT_EINVAL;
    const mrt_allocator *a = mrt_shard_allocator(s);
    if (!mrt_shard_ready(s) || atomic_load(&svc->shards[id]) != NULL)
        return MRT_ESTATE; /* not initialised yet, or services already there */
    atomic_store(&svc->started, true);
    mrt_svc_shard *ss = mrt_alloc_aligned(a, sizeof(*ss), 128);
    if (ss == NULL)
        return MRT_ENOMEM;
    memset(ss, 0, sizeof(*ss));
    ss->svc = svc;
    ss->shard = s;
    ss->stall = mrt_shard_stall_slot(s);
    ss->alloc = a;
    ss->id = id;
    ss->n = svc->n;
    uint16_t base = svc->cfg.shard_type_base;
    ss->t_event = base + SVC_T_EVENT;
    ss->t_ret = base + SVC_T_RET;
    ss->t_done = base + SVC_T_DONE;
    int rc = svc_pool_init(ss);
    if (rc == MRT_OK)
        rc = svc_hosts_init(ss);
    if (rc == MRT_OK)
        rc = svc_flow_init(ss);
    if (rc == MRT_OK)
        rc = svc_ingress_init(ss);
    if (rc == MRT_OK)
        rc = svc_egress_init(ss);
    if (rc == MRT_OK)
        rc = svc_hold_init(ss);
    if (rc == MRT_OK && svc->cfg.domain) {
        uint64_t seed = (svc->cfg.lb_seed ? svc->cfg.lb_seed : 0x2545f4914f6cdd1dull) ^
                        (0x9e3779b97f4a7c15ull * (id + 1));
        rc = mrt_lb_shard_create(a, seed, &ss->lb);
        if (rc == MRT_OK) {
            int sync = mrt_lb_domain_sync(svc->cfg.domain, id, ss->lb);
            rc = sync < 0 ? sync : MRT_OK;
        }
    }
    if (rc != MRT_OK) {
        shard_free(ss);
        return rc;
    }
    if (mrt_shard_set_tick(s, on_tick, ss) != MRT_OK) {
        shard_free(ss);
        return MRT_ESTATE; /* someone else owns the shard's tick */
    }
    mrt_shard_set_burst_handler(s, ss->t_event, svc_on_events, ss);
    mrt_shard_set_burst_handler(s, ss->t_ret, svc_on_returns, ss);
    mrt_shard_set_burst_handler(s, ss->t_done, svc_on_done, ss);
    for (unsigned i = 0; i < svc->ntypes; i++) {
        ss->trt[i] = (svc_type_rt){ .ss = ss, .t = &svc->types[i] };
        mrt_shard_set_burst_handler(s, (uint16_t)(base + SVC_T_USER + i), on_user, &ss->trt[i]);
    }
    /* Receivers resolve this shard's handles through the base from now on. */
    svc->base[id] = ss->region;
    for (; ss->ninit < svc->nsubs; ss->ninit++) {
        const svc_subsystem *sub = &svc->subs[ss->ninit];
        if (sub->init == NULL)
            continue;
        rc = sub->init(ss, sub->ctx, &ss->state[ss->ninit]);
        if (rc != MRT_OK) {
            run_finis(ss);
            for (unsigned t = 0; t < SVC_T_USER + svc->ntypes; t++)
                mrt_shard_set_handler(s, (uint16_t)(base + t), NULL, NULL);
            (void)mrt_shard_set_tick(s, NULL, NULL);
            svc->base[id] = NULL;
            shard_free(ss);
            return rc;
        }
    }
    atomic_store(&svc->shards[id], ss);
    *out = ss;
    return MRT_OK;
}

void mrt_svc_shard_fini(mrt_svc_shard *ss)
{
    if (ss == NULL)
        return;
    mrt_svc *svc = ss->svc;
    run_finis(ss);
    uint16_t base = svc->cfg.shard_type_base;
    for (unsigned t = 0; t < SVC_T_USER + svc->ntypes; t++)
        mrt_shard_set_handler(ss->shard, (uint16_t)(base + t), NULL, NULL);
    (void)mrt_shard_set_tick(ss->shard, NULL, NULL);
    atomic_store(&svc->shards[ss->id], NULL);
    svc->base[ss->id] = NULL;
    shard_free(ss);
}

mrt_svc_shard *mrt_svc_shard_of(const mrt_svc *svc, unsigned i)
{
    if (svc == NULL || i >= svc->n)
        return NULL;
    return atomic_load(&svc->shards[i]);
}

mrt_shard *mrt_svc_shard_get(const mrt_svc_shard *ss)
{
    return ss ? ss->shard : NULL;
}

const mrt_allocator *mrt_svc_allocator(const mrt_svc_shard *ss)
{
    return ss ? ss->alloc : NULL;
}

void *mrt_svc_state(const mrt_svc_shard *ss, uint16_t id)
{
    return (ss && id < MRT_SVC_MAX_SUBSYSTEMS) ? ss->state[id] : NULL;
}

mrt_lb_shard *mrt_svc_lb(mrt_svc_shard *ss)
{
    return ss ? ss->lb : NULL;
}

int mrt_svc_add_hook(mrt_svc_shard *ss, mrt_svc_hook fn, void *ctx)
{
    if (ss == NULL || fn == NULL)
        return MRT_EINVAL;
    if (ss->nhooks >= MRT_SVC_MAX_HOOKS)
        return MRT_SVC_ELIMIT;
    ss->hooks[ss->nhooks++] = (svc_hook){ fn, ctx };
    return MRT_OK;
}

void mrt_svc_stats_get(const mrt_svc_shard *ss, mrt_svc_stats *out)
{
    if (out == NULL)
        return;
    if (ss == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = ss->st;
}

const mrt_hist *mrt_svc_hist(const mrt_svc_shard *ss, mrt_svc_hist_kind kind)
{
    return ss && (unsigned)kind < MRT_SVC_HISTS ? &ss->hist[kind] : NULL;
}
