/*
 * The coordinator: creation on a runtime, the per-shard part (a services
 * subsystem whose hook adopts the newest routing table at the poll
 * boundary and sends completions home), the one routing-table publication
 * for all groups (pointer swap; a replaced table is reused only once every
 * shard reported a newer epoch and every injecting thread left it), the
 * groups' entries in that table (new, free) with their slots' health, and
 * the recovery registry run by the runtime's control tick.
 */
#include "groups/groups_internal.h"

#include <sched.h>
#include <string.h>
#include <time.h>

void mrt_groups_config_default(mrt_groups_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_conn = 10000;
    cfg->fail_threshold = 3;
    cfg->recover_per_tick = 4;
    cfg->quiesce_ms = 2000;
}

grp_shard *grp_shard_of(const mrt_groups *g, mrt_svc_shard *ss)
{
    return (grp_shard *)mrt_svc_state(ss, g->sub_id);
}

/* ---- completions ----------------------------------------------------------- */

static void res_release(grp_res *r, uint32_t term, uint32_t count, grp_shard *gs)
{
    if (atomic_load_explicit(&r->term, memory_order_relaxed) != term) { /* an older incarnation's: its counts were dropped with it */
        grp_inc(&gs->ctr->late, count);
        return;
    }
    uint32_t v = atomic_load_explicit(&r->out, memory_order_relaxed);
    atomic_store_explicit(&r->out, v > count ? v - count : 0, memory_order_relaxed);
    grp_inc(&gs->ctr->completed, count);
}

/* An injected event's reservation: (term << 32) | count, released only for its term. */
static void ext_release(mrt_groups *g, const grp_env *e)
{
    _Atomic uint64_t *p = &g->ext_out[e->gid][e->idx];
    uint64_t v = atomic_load(p);
    for (;;) {
        if ((uint32_t)(v >> 32) != e->term || (uint32_t)v == 0) {
            atomic_fetch_add_explicit(&g->ext_late, 1, memory_order_relaxed);
            return;
        }
        if (atomic_compare_exchange_weak(p, &v, v - 1))
            break;
    }
    atomic_fetch_add_explicit(&g->ext_completed, 1, memory_order_relaxed);
}

void grp_complete(grp_member *m, const grp_env *e)
{
    grp_shard *gs = m->gs;
    if (e->sel == MRT_SRC_EXTERNAL) {
        ext_release(gs->g, e);
    } else if (e->sel == gs->id) {
        res_release(&gs->res[e->gid][e->idx], e->term, 1, gs);
    } else if (e->sel < gs->n) {
        /* Counted per selector and sent by the hook: one message per burst, not per event. */
        m->done[e->sel]++;
        m->dmask[e->sel >> 6] |= 1ull << (e->sel & 63);
        if (!m->listed) {
            m->listed = true;
            m->next_dirty = gs->dirty;
            gs->dirty = m;
        }
    }
}

static int send_done(grp_shard *gs, unsigned sel, unsigned gid, unsigned idx, uint32_t term,
                     uint32_t count)
{
    mrt_msg msg = { .w = { gid | (uint64_t)idx << 16, term, count } };
    return mrt_svc_send_msg(gs->ss, sel, gs->g->t_done, &msg);
}

/* Send what the members of this shard owe their selectors, until a ring refuses. */
static void flush_done(grp_shard *gs)
{
    while (gs->norphans) {
        grp_orphan *o = &gs->orphans[gs->norphans - 1];
        if (send_done(gs, o->sel, o->gid, o->idx, o->term, o->count) != MRT_OK)
            return;
        gs->norphans--;
    }
    while (gs->dirty) {
        grp_member *m = gs->dirty;
        for (unsigned w = 0; w < (gs->n + 63) / 64; w++) {
            while (m->dmask[w]) {
                unsigned sel = w * 64 + (unsigned)__builtin_ctzll(m->dmask[w]);
                if (send_done(gs, sel, m->gid, m->idx, m->term, m->done[sel]) != MRT_OK)
                    return;
                m->done[sel] = 0;
                m->dmask[w] &= m->dmask[w] - 1;
            }
        }
        m->listed = false;
        gs->dirty = m->next_dirty;
    }
}

void grp_member_orphan(grp_member *m)
{
    grp_shard *gs = m->gs;
    for (unsigned sel = 0; sel < gs->n; sel++) {
        if (m->done[sel] == 0)
            continue;
        if (gs->norphans < GRP_ORPHANS)
            gs->orphans[gs->norphans++] = (grp_orphan){ .sel = (uint16_t)sel, .gid = m->gid,
                                                        .idx = m->idx, .term = m->term,
                                                        .count = m->done[sel] };
        else /* the selector's count for this incarnation is dropped when it is replaced */
            grp_inc(&gs->ctr->dropped, m->done[sel]);
        m->done[sel] = 0;
    }
    if (m->listed) { /* unlink */
        grp_member **pp = &gs->dirty;
        while (*pp != m)
            pp = &(*pp)->next_dirty;
        *pp = m->next_dirty;
        m->listed = false;
    }
}

static void on_done(mrt_svc_shard *ss, const mrt_msg *msg, void *ctx)
{
    mrt_groups *g = ctx;
    grp_shard *gs = grp_shard_of(g, ss);
    unsigned gid = (unsigned)(msg->w[0] & 0xffff), idx = (unsigned)((msg->w[0] >> 16) & 0xff);
    if (gs == NULL || gid >= MRT_GROUPS_MAX || idx >= MRT_GROUP_MAX_MEMBERS)
        return;
    res_release(&gs->res[gid][idx], (uint32_t)msg->w[1], (uint32_t)msg->w[2], gs);
}

/* Once per iteration: adopt the newest table (the only place a shard switches), send completions. */
static void on_tick(mrt_svc_shard *ss, bool draining, void *ctx)
{
    (void)draining; /* completions are owed: they go out while draining too */
    grp_shard *gs = ctx;
    mrt_groups *g = gs->g;
    const grp_table *t = atomic_load_explicit(&g->pub, memory_order_acquire);
    if (t != gs->tab) {
        gs->tab = t;
        atomic_store_explicit(&g->seen[gs->id], t->epoch, memory_order_release);
    }
    if (gs->dirty || gs->norphans)
        flush_done(gs);
    (void)mrt_svc_set_pending(ss, g->sub_id, (gs->dirty != NULL) + gs->norphans);
}

static int sub_init(mrt_svc_shard *ss, void *ctx, void **state)
{
    mrt_groups *g = ctx;
    const mrt_allocator *a = mrt_svc_allocator(ss);
    grp_shard *gs = mrt_alloc_aligned(a, sizeof(*gs), 64);
    if (gs == NULL)
        return MRT_ENOMEM;
    memset(gs, 0, sizeof(*gs));
    gs->g = g;
    gs->ss = ss;
    gs->a = a;
    gs->id = mrt_shard_id(mrt_svc_shard_get(ss));
    gs->n = g->n;
    gs->ctr = &g->ctr[gs->id];
    uint32_t cap = 0, count = 0;
    unsigned ncls = mrt_svc_pool_classes(g->svc);
    if (ncls)
        (void)mrt_svc_pool_class(g->svc, ncls - 1, &cap, &count);
    gs->scratch_len = cap;
    gs->scratch = mrt_alloc(a, cap ? cap : 1);
    int rc = gs->scratch ? mrt_svc_add_hook(ss, on_tick, gs) : MRT_ENOMEM;
    if (rc != MRT_OK) {
        if (gs->scratch)
            mrt_free(a, gs->scratch, cap ? cap : 1);
        mrt_free_aligned(a, gs, sizeof(*gs), 64);
        return rc;
    }
    gs->tab = atomic_load_explicit(&g->pub, memory_order_acquire);
    atomic_store(&g->seen[gs->id], gs->tab->epoch);
    atomic_store(&g->shards[gs->id], gs);
    *state = gs;
    return MRT_OK;
}

static void sub_fini(mrt_svc_shard *ss, void *ctx, void *state)
{
    (void)ss;
    mrt_groups *g = ctx;
    grp_shard *gs = state;
    if (gs == NULL)
        return;
    atomic_store(&g->seen[gs->id], UINT64_MAX);
    atomic_store(&g->shards[gs->id], NULL);
    for (unsigned k = 0; k < MRT_GROUPS_MAX; k++) /* so a leak still shows after the stop */
        for (unsigned i = 0; i < MRT_GROUP_MAX_MEMBERS; i++)
            atomic_fetch_add(&g->left[k], atomic_load(&gs->res[k][i].out));
    mrt_free(gs->a, gs->scratch, gs->scratch_len ? gs->scratch_len : 1);
    mrt_free_aligned(gs->a, gs, sizeof(*gs), 64);
}

/* ---- publication ----------------------------------------------------------- */

void grp_gtab_index(grp_gtab *gt)
{
    memset(gt->hidx, 0, sizeof gt->hidx);
    gt->nup = 0;
    for (unsigned i = 0; i < gt->nslots; i++) {
        const grp_slot *s = &gt->s[i];
        if (s->state == GRP_SLOT_EMPTY)
            continue;
        if (s->state == GRP_SLOT_UP)
            gt->up[gt->nup++] = (uint8_t)i;
        uint32_t h = grp_hash_home(s->id);
        while (gt->hidx[h] != 0)
            h = (h + 1) & (GRP_HASH_SLOTS - 1);
        gt->hidx[h] = (uint16_t)(i + 1);
    }
    /* Each bucket's slot by jump hash: growing n moves 1/n of the buckets, all to the new slot. */
    for (uint32_t b = 0; gt->nslots && b < (1u << GRP_JUMP_BITS); b++)
        gt->jump[b] = (uint8_t)grp_jump_hash(b, gt->nslots);
}

int grp_publish(mrt_groups *g)
{
    grp_table *t = g->free;
    if (t)
        g->free = t->next;
    else if ((t = mrt_alloc_aligned(NULL, sizeof(*t), 64)) == NULL)
        return MRT_GROUPS_ENOMEM;
    for (unsigned k = 0; k < MRT_GROUPS_MAX; k++)
        if (g->master->g[k].gen)
            grp_gtab_index(&g->master->g[k]);
    memcpy(t, g->master, sizeof(*t));
    t->epoch = ++g->epoch;
    t->next = NULL;
    grp_table *old = atomic_exchange(&g->pub, t);
    old->retired_at = t->epoch;
    old->next = g->retired;
    g->retired = old;
    return MRT_OK;
}

/* Injecting threads: wait until none is still inside the phase that could see a retired table. */
static void ext_synchronize(mrt_groups *g)
{
    uint64_t p = atomic_fetch_add(&g->ext_phase, 1);
    while (atomic_load(&g->ext_cnt[p & 1]) != 0)
        sched_yield();
}

static uint64_t min_seen(const mrt_groups *g)
{
    uint64_t m = UINT64_MAX;
    for (unsigned i = 0; i < g->n; i++) {
        uint64_t s = atomic_load(&g->seen[i]);
        if (s < m)
            m = s;
    }
    return m;
}

void grp_reclaim(mrt_groups *g)
{
    uint64_t m = min_seen(g);
    bool any = false;
    for (grp_table *t = g->retired; t; t = t->next)
        any |= t->retired_at <= m;
    if (!any)
        return;
    ext_synchronize(g);
    grp_table **pp = &g->retired;
    while (*pp) {
        grp_table *t = *pp;
        if (t->retired_at <= m) {
            *pp = t->next;
            t->next = g->free;
            g->free = t;
        } else {
            pp = &t->next;
        }
    }
}

static void nap(void)
{
    struct timespec ts = { 0, 50000 };
    nanosleep(&ts, NULL);
}

int grp_wait_adopted(mrt_groups *g)
{
    /* Shards adopt at their next iteration boundary; an idle one within its sleep cap. */
    for (unsigned tries = 0; min_seen(g) < g->epoch; tries++) {
        if (tries > 200000) /* ~10 s: a shard that stopped iterating */
            return MRT_GROUPS_ESTATE;
        nap();
    }
    ext_synchronize(g);
    grp_reclaim(g);
    return MRT_OK;
}

/* ---- creation ------------------------------------------------------------- */

static void tick_hook(mrt_runtime *rt, void *ctx)
{
    (void)rt;
    (void)mrt_groups_recovery_tick(ctx);
}

int mrt_groups_create(mrt_runtime *rt, const mrt_groups_config *cfg, mrt_groups **out)
{
    if (rt == NULL || out == NULL)
        return MRT_GROUPS_EINVAL;
    mrt_groups *g = mrt_alloc_aligned(NULL, sizeof(*g), 64);
    if (g == NULL)
        return MRT_GROUPS_ENOMEM;
    memset(g, 0, sizeof(*g));
    g->rt = rt;
    g->c = mrt_runtime_compute(rt);
    g->svc = mrt_runtime_services(rt);
    g->n = mrt_runtime_shards(rt);
    if (cfg)
        g->cfg = *cfg;
    else
        mrt_groups_config_default(&g->cfg);
    if (g->cfg.max_conn == 0)
        g->cfg.max_conn = 10000;
    if (g->cfg.fail_threshold == 0)
        g->cfg.fail_threshold = 1;
    g->master = mrt_alloc_aligned(NULL, sizeof(grp_table), 64);
    grp_table *first = mrt_alloc_aligned(NULL, sizeof(grp_table), 64);
    g->seen = mrt_calloc(NULL, sizeof(*g->seen) * g->n);
    g->shards = mrt_calloc(NULL, sizeof(*g->shards) * g->n);
    g->ctr = mrt_alloc_aligned(NULL, sizeof(grp_ctr) * g->n, 64);
    int rc = MRT_GROUPS_ENOMEM;
    if (g->master && first && g->seen && g->shards && g->ctr) {
        memset(g->ctr, 0, sizeof(grp_ctr) * g->n);
        memset(g->master, 0, sizeof(grp_table));
        memcpy(first, g->master, sizeof(grp_table));
        atomic_init(&g->pub, first);
        first = NULL;
        for (unsigned i = 0; i < g->n; i++)
            atomic_init(&g->seen[i], UINT64_MAX);
        rc = mrt_svc_register_subsystem(g->svc, "groups", sub_init, sub_fini, g, &g->sub_id);
        if (rc == MRT_ESTATE)
            rc = MRT_GROUPS_ESTATE;
    }
    if (rc == MRT_OK)
        rc = mrt_svc_register_type(g->svc, "groups.done", on_done, NULL, g, &g->t_done);
    if (rc == MRT_OK)
        rc = mrt_runtime_add_tick_hook(rt, tick_hook, g);
    if (first)
        mrt_free_aligned(NULL, first, sizeof(grp_table), 64);
    if (rc != MRT_OK) {
        mrt_groups_destroy(g);
        return rc;
    }
    *out = g;
    return MRT_OK;
}

/* ---- groups: the table's entries, their slots' health, their recovery ----------- */

bool grp_slot_unhealthy(const mrt_group *grp, unsigned idx)
{
    const mrt_groups *g = grp->g;
    const grp_slot *s = &g->master->g[grp->gid].s[idx];
    if (s->state == GRP_SLOT_EMPTY)
        return false;
    return s->state == GRP_SLOT_DOWN ||
           atomic_load_explicit(&g->unhealthy[grp->gid][idx], memory_order_relaxed) == s->term ||
           mrt_runtime_shard_failed(g->rt, s->shard);
}

bool grp_any_unhealthy(const mrt_group *grp)
{
    for (unsigned i = 0; i < grp->n; i++)
        if (grp_slot_unhealthy(grp, i))
            return true;
    return false;
}

static int recover_tramp(mrt_groups *g, void *ctx, uint32_t max)
{
    (void)g;
    mrt_group *grp = ctx;
    if (!grp_any_unhealthy(grp))
        return 0;
    return grp->kind->recover(grp, max);
}

int grp_group_new(mrt_groups *g, const grp_kind *kind, uint16_t type, mrt_group **out)
{
    if (type >= g->ntypes)
        return MRT_GROUPS_ENOTYPE;
    unsigned k = 0;
    while (k < MRT_GROUPS_MAX && g->groups[k])
        k++;
    if (k == MRT_GROUPS_MAX)
        return MRT_GROUPS_ELIMIT;
    mrt_group *grp = mrt_calloc(NULL, sizeof(*grp));
    if (grp == NULL)
        return MRT_GROUPS_ENOMEM;
    grp->g = g;
    grp->kind = kind;
    grp->gid = (uint16_t)k;
    grp->gen = ++g->next_gen ? g->next_gen : ++g->next_gen;
    grp->term = 1;
    grp->type = type;
    atomic_init(&grp->ext_rr, 0);
    int rc = mrt_groups_recovery_register(g, recover_tramp, grp);
    if (rc != MRT_OK) {
        mrt_free(NULL, grp, sizeof(*grp));
        return rc;
    }
    grp_gtab *gt = &g->master->g[k];
    memset(gt, 0, sizeof(*gt));
    gt->gen = grp->gen;
    gt->route = kind->route;
    gt->max_conn = g->cfg.max_conn;
    atomic_store(&g->left[k], 0);
    for (unsigned i = 0; i < MRT_GROUP_MAX_MEMBERS; i++) {
        atomic_store(&g->unhealthy[k][i], 0);
        atomic_store(&g->ext_out[k][i], 0);
    }
    g->groups[k] = grp;
    *out = grp;
    return MRT_OK;
}

void grp_group_free(mrt_group *grp)
{
    mrt_groups *g = grp->g;
    for (unsigned k = 0; k < g->nh; k++)
        if (g->h[k].fn == recover_tramp && g->h[k].ctx == grp)
            g->h[k].evicted = true; /* removed after the running (or next) tick */
    if (grp->kind->fini)
        grp->kind->fini(grp);
    memset(&g->master->g[grp->gid], 0, sizeof(grp_gtab));
    g->groups[grp->gid] = NULL;
    if (grp->exclude)
        mrt_free(NULL, grp->exclude, sizeof(uint32_t) * grp->nexclude);
    mrt_free(NULL, grp, sizeof(*grp));
}

static void free_list(grp_table *t)
{
    while (t) {
        grp_table *n = t->next;
        mrt_free_aligned(NULL, t, sizeof(*t), 64);
        t = n;
    }
}

void mrt_groups_destroy(mrt_groups *g)
{
    if (g == NULL)
        return;
    for (unsigned k = 0; k < MRT_GROUPS_MAX; k++)
        if (g->groups[k]) {
            g->groups[k]->destroyed = true; /* the runtime stopped: its daemons are gone */
            grp_group_free(g->groups[k]);
        }
    free_list(g->retired);
    free_list(g->free);
    grp_table *p = atomic_load(&g->pub);
    if (p)
        mrt_free_aligned(NULL, p, sizeof(*p), 64);
    if (g->master)
        mrt_free_aligned(NULL, g->master, sizeof(grp_table), 64);
    mrt_free(NULL, g->seen, sizeof(*g->seen) * g->n);
    mrt_free(NULL, g->shards, sizeof(*g->shards) * g->n);
    if (g->ctr)
        mrt_free_aligned(NULL, g->ctr, sizeof(grp_ctr) * g->n, 64);
    mrt_free_aligned(NULL, g, sizeof(*g), 64);
}

/* ---- the recovery registry --------------------------------------------------- */

int mrt_groups_recovery_register(mrt_groups *g, mrt_groups_recover_fn fn, void *ctx)
{
    if (g == NULL || fn == NULL)
        return MRT_GROUPS_EINVAL;
    if (g->nh >= MRT_GROUPS_MAX_HANDLERS)
        return MRT_GROUPS_ELIMIT;
    g->h[g->nh].fn = fn;
    g->h[g->nh].ctx = ctx;
    g->h[g->nh].evicted = false;
    g->nh++;
    return MRT_OK;
}

int mrt_groups_recovery_tick(mrt_groups *g)
{
    if (g == NULL)
        return MRT_GROUPS_EINVAL;
    unsigned n = g->nh; /* handlers registered during this run start next tick */
    int total = 0;
    for (unsigned k = 0; k < n; k++) {
        if (g->h[k].evicted)
            continue;
        int rc = g->h[k].fn(g, g->h[k].ctx, g->cfg.recover_per_tick);
        if (rc < 0)
            g->h[k].evicted = true;
        else
            total += rc;
    }
    unsigned j = 0;
    for (unsigned k = 0; k < g->nh; k++)
        if (!g->h[k].evicted)
            g->h[j++] = g->h[k];
    g->nh = j;
    grp_reclaim(g);
    return total;
}

unsigned mrt_groups_recovery_count(const mrt_groups *g)
{
    return g ? g->nh : 0;
}

void mrt_groups_stats_get(const mrt_groups *g, mrt_groups_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (g == NULL)
        return;
    for (unsigned i = 0; i < g->n; i++) {
        const grp_ctr *c = &g->ctr[i];
        out->routed += atomic_load_explicit(&c->routed, memory_order_relaxed);
        out->refused += atomic_load_explicit(&c->refused, memory_order_relaxed);
        out->completed += atomic_load_explicit(&c->completed, memory_order_relaxed);
        out->stale += atomic_load_explicit(&c->stale, memory_order_relaxed);
        out->late += atomic_load_explicit(&c->late, memory_order_relaxed) +
                     atomic_load_explicit(&c->dropped, memory_order_relaxed);
    }
    out->late += atomic_load(&g->ext_late);
    out->routed += atomic_load(&g->ext_routed);
    out->refused += atomic_load(&g->ext_refused);
    out->completed += atomic_load(&g->ext_completed);
    out->respawns = g->respawns;
}
