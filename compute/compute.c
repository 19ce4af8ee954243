/*
 * Compute's lifecycle: the mesh-wide object and its registrations (types,
 * placement, hand-back), the per-shard part built on each shard thread by
 * services' subsystem init, the per-iteration hook (deferred sends first,
 * breaker reports, pending work, counters), status names.
 */
#include "compute/cp_internal.h"
#include "shards/ring_count.h"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <string.h>
#include <sys/random.h>

const char *mrt_compute_strerror(int status)
{
    switch (status) {
    case MRT_CP_ENOTYPE: return "no daemon type with this id";
    case MRT_CP_ENODAEMON: return "no daemon with this id on the named shard";
    case MRT_CP_ENOPLACE: return "the placement function found no eligible shard";
    case MRT_CP_ESTOPPED: return "the runtime is stopping or stopped";
    case MRT_CP_ECREATE: return "the daemon type's create callback failed";
    case MRT_CP_ELIMIT: return "a fixed compute table is full";
    case MRT_CP_EEGRESS: return "egress full: the output was handed back";
    case MRT_CP_ESTARTED: return "only before the runtime starts";
    case MRT_CP_ENOTSTARTED: return "only after the runtime started";
    default: return NULL;
    }
}

/* Default placement: the shard hosting the fewest daemons, the lowest index on ties. */
static int place_least(void *ctx, uint16_t type, const uint32_t *hosted, unsigned nshards)
{
    (void)ctx;
    (void)type;
    if (nshards == 0)
        return MRT_CP_ENOPLACE;
    unsigned best = 0;
    for (unsigned i = 1; i < nshards; i++)
        if (hosted[i] < hosted[best])
            best = i;
    return (int)best;
}

static void publish(cp_shard *cs)
{
    mrt_svc_stats sv;
    mrt_svc_stats_get(cs->ss, &sv);
    cs->st.hosted = cs->count;
    cs->st.injected = sv.ingress;
    cs->st.delivered = sv.delivered;
    cs->st.daemon_errors = sv.deliver_errors;
    cs->st.completions = sv.completions;
    cs->st.inflight = sv.inflight;
    cs->st.buffers_out = sv.pool_out;
    const uint64_t *v = (const uint64_t *)&cs->st;
    cp_pub *p = &cs->c->pub[cs->id];
    for (size_t i = 0; i < sizeof(cs->st) / sizeof(uint64_t); i++)
        atomic_store_explicit(&p->v[i], v[i], memory_order_relaxed);
}

/* Breaker openings go up to the control plane; a full ring keeps them in the balancer. */
static void forward_reports(cp_shard *cs)
{
    mrt_lb_shard *lb = mrt_svc_lb(cs->ss);
    if (lb == NULL)
        return;
    mrt_lb_breaker_report rep[16];
    /* Room left; rte_ring_free_count's plain load of the control thread's tail is a race. */
    unsigned room = cs->reports->capacity - mrt_ring_entries(cs->reports);
    size_t n = room ? mrt_lb_shard_drain_reports(lb, rep, room < 16 ? room : 16) : 0;
    if (n)
        (void)rte_ring_sp_enqueue_bulk_elem(cs->reports, rep, sizeof(rep[0]), (unsigned)n, NULL);
}

/*
 * Once per iteration, after services settled what it owes: deferred sends
 * go out first (in order, before anything new of the next iteration), the
 * drain learns what is still held, the daemons hear of backpressure and
 * the drain (pressure.c), the counters are published.
 */
static void on_tick(mrt_svc_shard *ss, bool draining, void *ctx)
{
    /* Deferred sends are owed, not new: they go out while draining too. */
    cp_shard *cs = ctx;
    if (cs->deferred_now)
        cp_defer_flush(cs);
    (void)mrt_svc_set_pending(ss, CP_SUBSYSTEM_ID, cs->deferred_now);
    cp_pressure_tick(cs, draining);
    forward_reports(cs);
    publish(cs);
}

static void shard_free(cp_shard *cs)
{
    if (cs->reports)
        mrt_free_aligned(cs->a, cs->reports, cs->reports_bytes, 64);
    cp_defer_fini(cs);
    cp_table_fini(cs);
    mrt_free_aligned(cs->a, cs, sizeof(*cs), 128);
}

static int sub_init(mrt_svc_shard *ss, void *ctx, void **state)
{
    mrt_compute *c = ctx;
    const mrt_allocator *a = mrt_svc_allocator(ss);
    cp_shard *cs = mrt_alloc_aligned(a, sizeof(*cs), 128);
    if (cs == NULL)
        return MRT_ENOMEM;
    memset(cs, 0, sizeof(*cs));
    cs->c = c;
    cs->ss = ss;
    cs->shard = mrt_svc_shard_get(ss);
    cs->a = a;
    cs->id = mrt_shard_id(cs->shard);
    cs->n = c->n;
    int rc = cp_table_init(cs, 1024);
    if (rc == MRT_OK)
        rc = cp_defer_init(cs);
    if (rc == MRT_OK) {
        ssize_t sz = rte_ring_get_memsize_elem(sizeof(mrt_lb_breaker_report), 64);
        cs->reports_bytes = sz > 0 ? (size_t)sz : 0;
        cs->reports = sz > 0 ? mrt_alloc_aligned(a, cs->reports_bytes, 64) : NULL;
        if (cs->reports == NULL ||
            rte_ring_init(cs->reports, "mrt-cp-reports", 64, RING_F_SP_ENQ | RING_F_SC_DEQ) != 0)
            rc = MRT_ENOMEM;
    }
    if (rc == MRT_OK)
        rc = mrt_svc_add_hook(ss, on_tick, cs);
    if (rc != MRT_OK) {
        shard_free(cs);
        return rc;
    }
    cp_control_install(cs);
    publish(cs);
    atomic_store(&c->shards[cs->id], cs);
    *state = cs;
    return MRT_OK;
}

/* On the shard thread after the drain: every daemon still hosted is stopped here. */
static void sub_fini(mrt_svc_shard *ss, void *ctx, void *state)
{
    (void)ctx;
    cp_shard *cs = state;
    if (cs == NULL)
        return;
    while (cs->list)
        cp_daemon_free(cs, cs->list);
    publish(cs);
    (void)mrt_svc_set_pending(ss, CP_SUBSYSTEM_ID, 0);
    atomic_store(&cs->c->shards[cs->id], NULL);
    for (unsigned t = 0; t < CP_OP_COUNT; t++)
        (void)mrt_shard_set_control_handler(cs->shard, (uint16_t)(CP_CTL_BASE + t), NULL, NULL);
    shard_free(cs);
}

int mrt_compute_create_(mrt_mesh *mesh, mrt_svc *svc, mrt_lb_registry *set, mrt_compute **out)
{
    if (mesh == NULL || svc == NULL || out == NULL)
        return MRT_EINVAL;
    mrt_compute *c = mrt_calloc(NULL, sizeof(*c));
    if (c == NULL)
        return MRT_ENOMEM;
    c->mesh = mesh;
    c->svc = svc;
    c->n = mrt_mesh_size(mesh);
    c->set = set;
    c->place = place_least;
    c->place_default = place_least;
    /* The largest payload services takes is the top of its largest class. */
    uint32_t cap = 0, count = 0;
    unsigned ncls = mrt_svc_pool_classes(svc);
    if (ncls > 0)
        (void)mrt_svc_pool_class(svc, ncls - 1, &cap, &count);
    c->max_payload = cap;
    c->cfg.defer_depth = 256;
    c->cfg.defer_bytes = 2 * (cap > 4096 ? cap : 4096);
    atomic_init(&c->started, false);
    atomic_init(&c->stopping, false);
    atomic_init(&c->set_dirty, false);
    atomic_init(&c->inject_seq, 0);
    /* This runtime's ingress origin: a domain-separated label (bytes 0..23) and a random nonce. */
    static const char label[] = "meshrt/cp/ingress/v1";
    _Static_assert(sizeof label <= 24, "the label must leave bytes 24..31 to the nonce");
    uint8_t key[MRT_HOST_KEY_SIZE] = { 0 };
    memcpy(key, label, sizeof label);
    uint64_t nonce;
    if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != (ssize_t)sizeof nonce)
        nonce = mrt_mesh_clock(mesh) ^ (uint64_t)(uintptr_t)c;
    memcpy(key + 24, &nonce, sizeof nonce);
    c->ingress_origin = mrt_host_origin_from_key(key);
    c->hosted = mrt_calloc(NULL, sizeof(uint32_t) * c->n);
    c->shards = mrt_calloc(NULL, sizeof(*c->shards) * c->n);
    c->pub = mrt_alloc_aligned(NULL, sizeof(cp_pub) * c->n, 128);
    int rc = (c->hosted && c->shards && c->pub) ? MRT_OK : MRT_ENOMEM;
    if (rc == MRT_OK) {
        memset(c->pub, 0, sizeof(cp_pub) * c->n);
        for (unsigned i = 0; i < c->n; i++)
            atomic_init(&c->shards[i], NULL);
        uint16_t id = 0xffff;
        rc = mrt_svc_register_subsystem(svc, "compute", sub_init, sub_fini, c, &id);
        if (rc == MRT_OK && id != CP_SUBSYSTEM_ID)
            rc = MRT_ESTATE; /* cp_of() relies on being the first subsystem */
    }
    if (rc == MRT_OK)
        rc = mrt_svc_set_output(svc, cp_on_output, c);
    if (rc == MRT_OK)
        rc = mrt_svc_set_handback(svc, cp_on_handback, c);
    if (rc == MRT_OK)
        rc = mrt_svc_set_admit(svc, cp_admit, c);
    if (rc != MRT_OK) {
        mrt_compute_destroy_(c);
        return rc;
    }
    *out = c;
    return MRT_OK;
}

void mrt_compute_destroy_(mrt_compute *c)
{
    if (c == NULL)
        return;
    mrt_free(NULL, c->hosted, sizeof(uint32_t) * c->n);
    mrt_free(NULL, c->shards, sizeof(*c->shards) * c->n);
    if (c->pub)
        mrt_free_aligned(NULL, c->pub, sizeof(cp_pub) * c->n, 128);
    mrt_free(NULL, c, sizeof(*c));
}

void mrt_compute_started_(mrt_compute *c)
{
    if (c)
        atomic_store(&c->started, true);
}

void mrt_compute_stopping_(mrt_compute *c)
{
    if (c)
        atomic_store(&c->stopping, true);
}

size_t mrt_compute_take_reports_(mrt_compute *c, unsigned i, mrt_lb_breaker_report *out,
                                 size_t max)
{
    cp_shard *cs = (c && i < c->n) ? atomic_load(&c->shards[i]) : NULL;
    if (cs == NULL)
        return 0;
    return rte_ring_sc_dequeue_burst_elem(cs->reports, out, sizeof(*out), (unsigned)max, NULL);
}

bool mrt_compute_set_changed_(mrt_compute *c)
{
    return c && atomic_exchange(&c->set_dirty, false);
}

/* ---- registration (control thread, before start) ----------------------------- */

int mrt_compute_register_type(mrt_compute *c, const mrt_compute_type *t, uint16_t *id)
{
    if (c == NULL || t == NULL || id == NULL || t->name == NULL || t->name[0] == '\0' ||
        strlen(t->name) > CP_NAME_MAX || t->vt == NULL || t->vt->process == NULL ||
        (t->create != NULL && t->state_size != 0))
        return MRT_EINVAL;
    if (atomic_load(&c->started))
        return MRT_CP_ESTARTED;
    for (unsigned i = 0; i < c->ntypes; i++)
        if (strcmp(c->types[i].name, t->name) == 0)
            return MRT_SVC_EEXIST;
    if (c->ntypes >= MRT_COMPUTE_MAX_TYPES)
        return MRT_CP_ELIMIT;
    cp_type *k = &c->types[c->ntypes];
    k->t = *t;
    strcpy(k->name, t->name);
    k->t.name = k->name;
    *id = (uint16_t)c->ntypes++;
    return MRT_OK;
}

int mrt_compute_set_placement(mrt_compute *c, mrt_compute_place_fn fn, void *ctx)
{
    if (c == NULL)
        return MRT_EINVAL;
    if (atomic_load(&c->started))
        return MRT_CP_ESTARTED;
    c->place = fn ? fn : c->place_default;
    c->place_ctx = fn ? ctx : c->place_default_ctx;
    return MRT_OK;
}

void mrt_compute_set_default_placement_(mrt_compute *c, mrt_compute_place_fn fn, void *ctx)
{
    bool is_default = c->place == c->place_default && c->place_ctx == c->place_default_ctx;
    c->place_default = fn ? fn : place_least;
    c->place_default_ctx = fn ? ctx : NULL;
    if (is_default) {
        c->place = c->place_default;
        c->place_ctx = c->place_default_ctx;
    }
}

int mrt_compute_set_handback(mrt_compute *c, mrt_compute_handback_fn fn, void *ctx)
{
    if (c == NULL)
        return MRT_EINVAL;
    if (atomic_load(&c->started))
        return MRT_CP_ESTARTED;
    c->handback = fn;
    c->handback_ctx = ctx;
    return MRT_OK;
}

int mrt_compute_stats_get(const mrt_compute *c, unsigned i, mrt_compute_stats *out)
{
    if (c == NULL || out == NULL || i >= c->n)
        return MRT_EINVAL;
    uint64_t *v = (uint64_t *)out;
    for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
        v[k] = atomic_load_explicit(&c->pub[i].v[k], memory_order_relaxed);
    return MRT_OK;
}
