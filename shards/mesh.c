/* Shards and the mesh: configuration, create/destroy, init_local/fini_local, rings, hooks. */
#include "shards/shard_internal.h"

#include <stddef.h>
#include <string.h>

#define RING_NAME "mrt"

const char *mrt_shard_strerror(int status)
{
    switch (status) {
    case MRT_SHARD_EFULL: return "destination ring and overflow queue are full";
    case MRT_SHARD_EDEST: return "no such destination shard";
    case MRT_SHARD_ETYPE: return "message type out of range";
    case MRT_SHARD_ECONFIG: return "invalid mesh configuration";
    case MRT_SHARD_ERING: return "rte_ring_init refused the ring";
    case MRT_SHARD_ESTOPPED: return "shard no longer accepts messages";
    case MRT_SHARD_ENOTREADY: return "destination shard is not initialised";
    default: return NULL;
    }
}

static bool is_pow2(unsigned v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static uint32_t next_pow2(uint32_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

void mrt_mesh_config_default(mrt_mesh_config *cfg, unsigned shards)
{
    memset(cfg, 0, sizeof *cfg); /* every field a later version adds starts as 0 / false */
    cfg->shards = shards;
    cfg->ring_size = 1024;
    cfg->burst = 32;
    cfg->overflow = 0;   /* 0 = ring_size */
    cfg->budget = 0;     /* 0 = 4 * burst * shards */
    cfg->idle_spin = 1024;
    cfg->idle_sleep_max_us = 100;
    cfg->idle_wake = false;
    cfg->stats_interval_ms = 1000;
}

int mrt_mesh_config_check(const mrt_mesh_config *cfg, const char **why)
{
    const char *w = NULL;
    if (cfg == NULL)
        w = "configuration is NULL";
    else if (cfg->shards == 0)
        w = "shard count is 0";
    else if (cfg->shards > MRT_MAX_SHARDS)
        w = "too many shards";
    else if (cfg->burst == 0 || cfg->burst > MRT_MAX_BURST)
        w = "burst must be 1..256";
    else if (!is_pow2(cfg->ring_size))
        w = "ring size must be a power of two";
    else if (cfg->ring_size <= cfg->burst)
        w = "ring size must be larger than the burst size";
    else if (cfg->ring_size > (1u << 24))
        w = "ring size above 16M slots";
    else if (cfg->overflow > (1u << 24))
        w = "overflow above 16M messages";
    else if (cfg->stats_interval_ms == 0)
        w = "stats interval is 0";
    if (why)
        *why = w;
    return w ? MRT_SHARD_ECONFIG : MRT_OK;
}

int mrt_mesh_create(const mrt_mesh_config *cfg, mrt_mesh **out)
{
    int rc = mrt_mesh_config_check(cfg, NULL);
    if (rc != MRT_OK)
        return rc;
    if (out == NULL)
        return MRT_EINVAL;
    mrt_mesh *m = mrt_alloc_aligned(NULL, sizeof(*m), MRT_NO_SHARE);
    if (m == NULL)
        return MRT_ENOMEM;
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    if (m->cfg.overflow == 0)
        m->cfg.overflow = m->cfg.ring_size;
    if (m->cfg.budget == 0)
        m->cfg.budget = 4 * m->cfg.burst * m->cfg.shards;
    m->shards = mrt_calloc(NULL, sizeof(*m->shards) * cfg->shards);
    if (m->shards == NULL) {
        mrt_free_aligned(NULL, m, sizeof(*m), MRT_NO_SHARE);
        return MRT_ENOMEM;
    }
    uint64_t tsc0 = mrt_rdtsc();
    double ns_per_cycle = 1e9 / (double)mrt_tsc_hz();
    m->tsc0 = tsc0;
    m->ns_per_cycle = ns_per_cycle;
    for (unsigned i = 0; i < cfg->shards; i++) {
        mrt_shard *s = mrt_alloc_aligned(NULL, sizeof(*s), MRT_NO_SHARE);
        if (s == NULL) {
            mrt_mesh_destroy(m);
            return MRT_ENOMEM;
        }
        memset(s, 0, sizeof(*s));
        s->mesh = m;
        s->id = i;
        s->n = cfg->shards;
        s->burst = m->cfg.burst;
        s->idle_wake = m->cfg.idle_wake;
        atomic_store_explicit(&s->pinned_cpu, -1, memory_order_relaxed); /* until its run says */
        s->budget = m->cfg.budget;
        s->outq_cap = next_pow2(m->cfg.burst + m->cfg.overflow);
        s->arena = MRT_ARENA_DEFAULT;
        s->tsc0 = tsc0;
        s->ns_per_cycle = ns_per_cycle;
        s->stats_interval_ns = (uint64_t)m->cfg.stats_interval_ms * 1000000u;
        s->perf.set = MRT_PERF_SET_NONE;
        atomic_init(&s->ready, false);
        mrt_stall_slot_init(&s->stall);
        m->shards[i] = s;
    }
    *out = m;
    return MRT_OK;
}

/* Free the shard's rings and queues through `a` (the owner's handle, or an arena-explicit one). */
static void shard_free_local(mrt_shard *s, const mrt_allocator *a)
{
    if (s->in) {
        for (unsigned i = 0; i < s->n; i++)
            mrt_free_aligned(a, s->in[i], s->ring_bytes, MRT_CACHELINE);
        mrt_free(a, s->in, sizeof(*s->in) * s->n);
    }
    mrt_free_aligned(a, s->ingress, s->mp_ring_bytes, MRT_CACHELINE);
    mrt_free_aligned(a, s->control, s->mp_ring_bytes, MRT_CACHELINE);
    if (s->out) {
        for (unsigned i = 0; i < s->n; i++)
            mrt_free(a, s->out[i].buf, sizeof(mrt_msg) * s->outq_cap);
        mrt_free(a, s->out, sizeof(*s->out) * s->n);
    }
    mrt_free(a, s->dirty, sizeof(*s->dirty) * s->n);
    s->in = NULL;
    s->out = NULL;
    s->tx = (mrt_shard_tx_){ 0 }; /* the inline send must not reach the freed lanes */
    s->dirty = NULL;
    s->ingress = s->control = NULL;
}

/* The shard no longer has an arena: give it back (unless a live thread is still bound to it). */
static void shard_drop_arena(mrt_shard *s)
{
    if (s->arena == MRT_ARENA_DEFAULT)
        return;
    mrt_allocator_unbind_thread(s->arena); /* only if the calling thread is the one bound */
    (void)mrt_allocator_release_arena(s->arena);
    s->arena = MRT_ARENA_DEFAULT;
    s->alloc = mrt_allocator_for_arena(MRT_ARENA_DEFAULT);
}

int mrt_shard_fini_local(mrt_shard *s)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (!atomic_load_explicit(&s->ready, memory_order_relaxed) || s->finished)
        return MRT_ESTATE;
    atomic_store_explicit(&s->ready, false, memory_order_release);
    s->finished = true;
    /* On the owner: through its thread cache, then flushed back to the arena by the unbind. */
    shard_free_local(s, &s->alloc);
    shard_drop_arena(s);
    return MRT_OK;
}

void mrt_mesh_destroy(mrt_mesh *m)
{
    if (m == NULL)
        return;
    for (unsigned i = 0; i < m->cfg.shards; i++) {
        mrt_shard *s = m->shards[i];
        if (s == NULL)
            continue;
        mrt_perf_close(&s->perf);
        if (s->arena != MRT_ARENA_DEFAULT) {
            /* Not finalised by its owner: straight into its arena, correct from any thread. */
            mrt_allocator a = mrt_allocator_for_arena(s->arena);
            shard_free_local(s, &a);
            shard_drop_arena(s);
        }
        mrt_stall_slot_fini(&s->stall);
        mrt_free_aligned(NULL, s, sizeof(*s), MRT_NO_SHARE);
    }
    mrt_free(NULL, m->shards, sizeof(*m->shards) * m->cfg.shards);
    mrt_free_aligned(NULL, m, sizeof(*m), MRT_NO_SHARE);
}

unsigned mrt_mesh_size(const mrt_mesh *m)
{
    return m->cfg.shards;
}

mrt_shard *mrt_mesh_shard(mrt_mesh *m, unsigned i)
{
    return (m && i < m->cfg.shards) ? m->shards[i] : NULL;
}

/* A ring of `count` message slots in the shard's memory; *rc says why on NULL. */
static struct rte_ring *ring_new(const mrt_allocator *a, unsigned count, unsigned flags,
                                 size_t *bytes, int *rc)
{
    count *= ELEMS_PER_MSG; /* capacity: count - 1 messages */
    ssize_t sz = rte_ring_get_memsize_elem(ELEM_SIZE, count);
    *rc = MRT_SHARD_ERING;
    if (sz < 0)
        return NULL;
    *bytes = (size_t)sz;
    *rc = MRT_ENOMEM;
    struct rte_ring *r = mrt_alloc_aligned(a, (size_t)sz, MRT_CACHELINE);
    if (r == NULL)
        return NULL;
    if (rte_ring_init(r, RING_NAME, count, flags) != 0) {
        mrt_free_aligned(a, r, (size_t)sz, MRT_CACHELINE);
        *rc = MRT_SHARD_ERING;
        return NULL;
    }
    *rc = MRT_OK;
    return r;
}

int mrt_shard_init_local(mrt_shard *s)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (atomic_load_explicit(&s->ready, memory_order_relaxed) || s->finished)
        return MRT_ESTATE;
    mrt_allocator arena;
    int rc = mrt_allocator_create_arena(&arena);
    if (rc != MRT_OK)
        return rc;
    rc = mrt_allocator_bind_thread(arena.arena, &s->alloc);
    if (rc != MRT_OK) {
        (void)mrt_allocator_release_arena(arena.arena);
        return rc;
    }
    s->arena = arena.arena;
    const mrt_allocator *a = &s->alloc;
    const mrt_mesh_config *cfg = &s->mesh->cfg;

    rc = MRT_ENOMEM;
    s->in = mrt_calloc(a, sizeof(*s->in) * s->n);
    s->out = mrt_calloc(a, sizeof(*s->out) * s->n);
    s->dirty = mrt_calloc(a, sizeof(*s->dirty) * s->n);
    if (!s->in || !s->out || !s->dirty)
        goto fail;
    for (unsigned i = 0; i < s->n; i++) {
        s->in[i] = ring_new(a, cfg->ring_size, RING_F_SP_ENQ | RING_F_SC_DEQ, &s->ring_bytes, &rc);
        if (s->in[i] == NULL)
            goto fail;
        rc = MRT_ENOMEM;
        s->out[i].buf = mrt_alloc(a, sizeof(mrt_msg) * s->outq_cap);
        if (s->out[i].buf == NULL)
            goto fail;
    }
    /* Ingress and control take producers from any thread: SP rings, producers serialised by
     * ingress_put/control_put (ring_put_mp), single consumer. */
    mrt_spin_init(&s->ingress_put);
    mrt_spin_init(&s->control_put);
    s->ingress = ring_new(a, cfg->ring_size, RING_F_SP_ENQ | RING_F_SC_DEQ, &s->mp_ring_bytes, &rc);
    if (s->ingress == NULL)
        goto fail;
    s->control = ring_new(a, cfg->ring_size, RING_F_SP_ENQ | RING_F_SC_DEQ, &s->mp_ring_bytes, &rc);
    if (s->control == NULL)
        goto fail;
    s->last_tsc = mrt_rdtsc();
    atomic_store_explicit(&s->ready, true, memory_order_release);
    return MRT_OK;
fail:
    shard_free_local(s, &s->alloc);
    shard_drop_arena(s);
    return rc;
}

int mrt_shard_set_handler(mrt_shard *s, uint16_t type, mrt_msg_handler fn, void *ctx)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (type >= MRT_MSG_TYPES)
        return MRT_SHARD_ETYPE;
    s->handler[type] = fn;
    s->burst_handler[type] = NULL;
    s->handler_ctx[type] = ctx;
    return MRT_OK;
}

int mrt_shard_set_burst_handler(mrt_shard *s, uint16_t type, mrt_burst_handler fn, void *ctx)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (type >= MRT_MSG_TYPES)
        return MRT_SHARD_ETYPE;
    s->burst_handler[type] = fn;
    s->handler[type] = NULL;
    s->handler_ctx[type] = ctx;
    return MRT_OK;
}

int mrt_shard_set_tick(mrt_shard *s, mrt_tick_hook fn, void *ctx)
{
    if (s == NULL)
        return MRT_EINVAL;
    /* One owner: a second producer would silently replace the first (services owns it). */
    if (fn != NULL && s->tick != NULL)
        return MRT_ESTATE;
    s->tick = fn;
    s->tick_ctx = ctx;
    return MRT_OK;
}

void mrt_shard_set_pending(mrt_shard *s, uint64_t n)
{
    s->pending = n;
}

bool mrt_shard_ready(const mrt_shard *s)
{
    return s != NULL && atomic_load_explicit(&s->ready, memory_order_acquire);
}

void mrt_shard_set_handback(mrt_shard *s, mrt_handback_hook fn, void *ctx)
{
    s->handback = fn;
    s->handback_ctx = ctx;
}

int mrt_shard_set_control_handler(mrt_shard *s, uint16_t ctype, mrt_msg_handler fn, void *ctx)
{
    if (s == NULL)
        return MRT_EINVAL;
    if (ctype >= MRT_CTL_TYPES)
        return MRT_SHARD_ETYPE;
    s->ctl_handler[ctype] = fn;
    s->ctl_ctx[ctype] = ctx;
    return MRT_OK;
}

void mrt_shard_set_control_handback(mrt_shard *s, mrt_handback_hook fn, void *ctx)
{
    s->ctl_handback = fn;
    s->ctl_handback_ctx = ctx;
}

unsigned mrt_shard_id(const mrt_shard *s)
{
    return s->id;
}

const mrt_allocator *mrt_shard_allocator(const mrt_shard *s)
{
    return &s->alloc;
}

uint64_t mrt_mesh_clock(const mrt_mesh *m)
{
    return (uint64_t)((double)(mrt_rdtsc() - m->tsc0) * m->ns_per_cycle);
}

unsigned mrt_shard_backlog(const mrt_shard *s)
{
    if (s == NULL || !mrt_shard_ready(s))
        return 0;
    unsigned n = mrt_ring_entries(s->ingress);
    for (unsigned i = 0; i < s->n; i++)
        n += mrt_ring_entries(s->in[i]);
    return n / ELEMS_PER_MSG;
}
