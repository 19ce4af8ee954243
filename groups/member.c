/*
 * Members: the wrapping daemon type (envelope check, fencing, completion,
 * health) and the control-side lifecycle of a member slot — identity,
 * placement, spawn (resuming the slot's chain), retirement (route away,
 * await the reservations, stop and keep the chain), recovery of the
 * slots, and a group's destruction (its members retired first).
 */
#include "groups/groups_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- the wrapping daemon (member's shard) ------------------------------------ */

static void mark_unhealthy(grp_member *m)
{
    _Atomic uint32_t *u = &m->gs->g->unhealthy[m->gid][m->idx];
    if (atomic_load_explicit(u, memory_order_relaxed) != m->term)
        atomic_store_explicit(u, m->term, memory_order_relaxed);
}

static int w_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    grp_member *m = state;
    if (m->replaying) /* standby promotion: buffered user events, already completed */
        return m->type->user.vt->process(m->user, ev, sink);
    grp_env e;
    if (ev->payload_len < sizeof e)
        return MRT_GROUPS_EENVELOPE;
    memcpy(&e, ev->payload, sizeof e);
    if (e.magic != GRP_MAGIC || e.gid != m->gid || e.idx != m->idx || e.gen != m->gen)
        return MRT_GROUPS_EENVELOPE;
    if (e.term != m->term) { /* fencing: rejected, the reservation still released */
        grp_complete(m, &e);
        grp_inc(&m->gs->ctr->stale, 1);
        return e.term < m->term ? MRT_GROUPS_ESTALE : MRT_GROUPS_EFENCED;
    }
    mrt_event sub = *ev;
    sub.payload = (const uint8_t *)ev->payload + sizeof e;
    sub.payload_len -= sizeof e;
    const mrt_daemon_vtable *vt = m->type->user.vt;
    int rc = vt->process(m->user, &sub, sink);
    grp_complete(m, &e);
    if (rc != MRT_OK) {
        if (++m->fails >= m->gs->g->cfg.fail_threshold)
            mark_unhealthy(m);
    } else {
        m->fails = 0;
        if (m->on_accept)
            m->on_accept(m->accept_ctx, &sub);
    }
    if (vt->health && vt->health(m->user) == MRT_DAEMON_UNHEALTHY)
        mark_unhealthy(m);
    return rc;
}

static int w_snapshot(const void *state, void *buf, size_t cap, size_t *len)
{
    const grp_member *m = state;
    if (m->type->user.vt->snapshot == NULL) {
        *len = 0;
        return MRT_OK;
    }
    return m->type->user.vt->snapshot(m->user, buf, cap, len);
}

static int w_restore(void *state, const void *buf, size_t len)
{
    grp_member *m = state;
    if (m->type->user.vt->restore == NULL)
        return len ? MRT_DAEMON_ESTATELESS : MRT_OK;
    return m->type->user.vt->restore(m->user, buf, len);
}

static int w_control(void *state, mrt_daemon_control kind, uint32_t level)
{
    grp_member *m = state;
    return m->type->user.vt->on_control ? m->type->user.vt->on_control(m->user, kind, level)
                                        : MRT_OK;
}

static mrt_daemon_health w_health(const void *state)
{
    const grp_member *m = state;
    return m->type->user.vt->health ? m->type->user.vt->health(m->user) : MRT_DAEMON_HEALTHY;
}

static double w_saturation(const void *state)
{
    const grp_member *m = state;
    return m->type->user.vt->saturation ? m->type->user.vt->saturation(m->user) : 0.0;
}

static const mrt_daemon_vtable wrap_vt = {
    .name = "group-member",
    .process = w_process,
    .snapshot = w_snapshot,
    .restore = w_restore,
    .on_control = w_control,
    .health = w_health,
    .saturation = w_saturation,
};

const mrt_daemon_vtable *grp_member_vt(void)
{
    return &wrap_vt;
}

/* On the member's shard (compute's spawn): the spawn header, then the user's create. */
static int w_create(void *type_ctx, const mrt_allocator *a, const void *arg, size_t arg_len,
                    void **state)
{
    grp_type *t = type_ctx;
    grp_spawn_hdr h;
    if (arg_len < sizeof h)
        return MRT_GROUPS_EINVAL;
    memcpy(&h, arg, sizeof h);
    grp_shard *gs = h.magic == GRP_MAGIC && h.shard < t->g->n ? atomic_load(&t->g->shards[h.shard])
                                                              : NULL;
    if (gs == NULL)
        return MRT_GROUPS_EINVAL;
    grp_member *m = mrt_calloc(a, sizeof(*m));
    if (m == NULL)
        return MRT_ENOMEM;
    m->done = mrt_calloc(a, sizeof(uint32_t) * gs->n);
    if (m->done == NULL) {
        mrt_free(a, m, sizeof(*m));
        return MRT_ENOMEM;
    }
    m->type = t;
    m->gs = gs;
    m->shard = h.shard;
    m->nshards = (uint16_t)gs->n;
    m->gid = h.gid;
    m->idx = h.idx;
    m->term = h.term;
    m->gen = h.gen;
    /* Set before the member was spawned (control), read-only since. */
    const mrt_group *grp = t->g->groups[h.gid < MRT_GROUPS_MAX ? h.gid : 0];
    if (grp && grp->gen == h.gen && grp->kind->on_accept) {
        m->on_accept = grp->kind->on_accept;
        m->accept_ctx = grp->kind_state;
    }
    int rc = mrt_compute_state_create(&t->user, a, (const uint8_t *)arg + sizeof h,
                                      arg_len - sizeof h, &m->user);
    if (rc != MRT_OK) {
        mrt_free(a, m->done, sizeof(uint32_t) * gs->n);
        mrt_free(a, m, sizeof(*m));
        return rc;
    }
    *state = m;
    return MRT_OK;
}

static void w_destroy(void *type_ctx, const mrt_allocator *a, void *state)
{
    grp_type *t = type_ctx;
    grp_member *m = state;
    /*
     * Stopped while running: unsent completions go to the shard's orphan list. At the
     * runtime's teardown the groups' part of this shard is gone first (the mesh drained:
     * nothing is owed), so m->gs is not touched then.
     */
    if (atomic_load(&t->g->shards[m->shard]) == m->gs)
        grp_member_orphan(m);
    mrt_compute_state_destroy(&t->user, a, m->user);
    mrt_free(a, m->done, sizeof(uint32_t) * m->nshards);
    mrt_free(a, m, sizeof(*m));
}

int mrt_groups_register_type(mrt_groups *g, const mrt_compute_type *t, uint16_t *type)
{
    if (g == NULL || t == NULL || type == NULL || t->name == NULL || t->vt == NULL ||
        t->vt->process == NULL || (t->create != NULL && t->state_size != 0))
        return MRT_GROUPS_EINVAL;
    if (g->ntypes >= MRT_GROUPS_MAX_TYPES)
        return MRT_GROUPS_ELIMIT;
    grp_type *gt = &g->types[g->ntypes];
    memset(gt, 0, sizeof(*gt));
    gt->g = g;
    gt->user = *t;
    snprintf(gt->name, sizeof gt->name, "g:%s", t->name);
    gt->user.name = NULL; /* the caller's string; compute keeps the wrapper's name */
    mrt_compute_type w = { .name = gt->name, .vt = &wrap_vt, .create = w_create,
                           .destroy = w_destroy, .ctx = gt, .max_outputs = t->max_outputs,
                           .payload_bytes = t->payload_bytes, .max_origins = t->max_origins };
    int rc = mrt_compute_register_type(g->c, &w, &gt->cp_type);
    if (rc == MRT_CP_ESTARTED)
        return MRT_GROUPS_ESTATE;
    if (rc != MRT_OK)
        return rc;
    *type = (uint16_t)g->ntypes++;
    return MRT_OK;
}

/* ---- slot lifecycle (control thread) --------------------------------------- */

void grp_member_key(const char *label, uint64_t seed, unsigned idx,
                    uint8_t key[MRT_HOST_KEY_SIZE])
{
    XXH3_state_t st;
    uint8_t le[12];
    for (unsigned i = 0; i < 8; i++)
        le[i] = (uint8_t)(seed >> (8 * i));
    for (unsigned i = 0; i < 4; i++)
        le[8 + i] = (uint8_t)(idx >> (8 * i));
    for (uint64_t half = 0; half < 2; half++) {
        XXH3_128bits_reset_withSeed(&st, half);
        XXH3_128bits_update(&st, label, strlen(label) + 1);
        XXH3_128bits_update(&st, le, sizeof le);
        XXH128_canonical_t out;
        XXH128_canonicalFromHash(&out, XXH3_128bits_digest(&st));
        memcpy(key + 16 * half, out.digest, 16);
    }
}

static grp_slot *slot_of(mrt_group *grp, unsigned idx)
{
    return &grp->g->master->g[grp->gid].s[idx];
}

uint64_t grp_slot_outstanding(const mrt_groups *g, unsigned gid, unsigned idx, uint32_t term)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < g->n; i++) {
        grp_shard *gs = atomic_load(&g->shards[i]);
        if (gs == NULL)
            continue;
        const grp_res *r = &gs->res[gid][idx];
        if (atomic_load_explicit(&r->term, memory_order_relaxed) == term)
            sum += atomic_load_explicit(&r->out, memory_order_relaxed);
    }
    uint64_t v = atomic_load(&g->ext_out[gid][idx]);
    if ((uint32_t)(v >> 32) == term)
        sum += (uint32_t)v;
    return sum;
}

int grp_member_spawn(mrt_group *grp, unsigned idx, unsigned shard, uint32_t term)
{
    mrt_groups *g = grp->g;
    grp_mslot *ms = &grp->ms[idx];
    if (!ms->keyed)
        return MRT_GROUPS_EINVAL;
    uint8_t arg[MRT_COMPUTE_MAX_ARG];
    grp_spawn_hdr h = { .magic = GRP_MAGIC, .gid = grp->gid, .shard = (uint16_t)shard,
                        .idx = (uint8_t)idx, .term = term, .gen = grp->gen };
    memcpy(arg, &h, sizeof h);
    memcpy(arg + sizeof h, grp->arg, grp->arg_len);
    mrt_compute_ref ref;
    int rc = mrt_compute_spawn_resume(g->c, g->types[grp->type].cp_type, (uint16_t)shard, ms->key,
                                      arg, sizeof h + grp->arg_len, ms->used ? &ms->chain : NULL,
                                      &ref);
    if (rc != MRT_OK)
        return MRT_GROUPS_ESPAWN;
    for (unsigned k = 0; k < grp->nsubs; k++) {
        if (mrt_compute_subscribe(g->c, ref, grp->sub_kind[k], grp->sub_target[k]) != MRT_OK) {
            (void)mrt_compute_stop_chain(g->c, ref, NULL);
            return MRT_GROUPS_ESPAWN;
        }
    }
    grp_gtab *gt = &g->master->g[grp->gid];
    gt->s[idx] = (grp_slot){ .id = ref.id, .term = term, .shard = ref.shard, .state = GRP_SLOT_UP };
    if (idx >= gt->nslots)
        gt->nslots = (uint16_t)(idx + 1);
    ms->used = true;
    atomic_store(&g->unhealthy[grp->gid][idx], 0);
    atomic_store(&g->ext_out[grp->gid][idx], (uint64_t)term << 32);
    return MRT_OK;
}

void grp_member_kill(mrt_group *grp, unsigned idx)
{
    grp_slot *s = slot_of(grp, idx);
    if (s->state == GRP_SLOT_EMPTY)
        return;
    mrt_causal_chain ch;
    if (mrt_compute_stop_chain(grp->g->c, (mrt_compute_ref){ s->id, s->shard }, &ch) == MRT_OK)
        grp->ms[idx].chain = ch;
    memset(s, 0, sizeof(*s));
}

static void nap_us(long us)
{
    struct timespec ts = { 0, us * 1000 };
    nanosleep(&ts, NULL);
}

int grp_member_retire(mrt_group *grp, unsigned idx)
{
    mrt_groups *g = grp->g;
    grp_slot *s = slot_of(grp, idx);
    if (s->state == GRP_SLOT_EMPTY)
        return MRT_OK;
    s->state = GRP_SLOT_DOWN;
    int rc = grp_publish(g);
    if (rc != MRT_OK)
        return rc;
    (void)grp_wait_adopted(g);
    /* Events already selected for it are delivered (or refused) and complete: wait for them. */
    for (uint32_t waited = 0; grp_slot_outstanding(g, grp->gid, idx, s->term) > 0 &&
                              waited < g->cfg.quiesce_ms * 10u;
         waited++)
        nap_us(100);
    mrt_causal_chain ch;
    rc = mrt_compute_stop_chain(g->c, (mrt_compute_ref){ s->id, s->shard }, &ch);
    if (rc == MRT_OK)
        grp->ms[idx].chain = ch;
    return rc == MRT_OK || rc == MRT_CP_ENODAEMON ? MRT_OK : rc;
}

/* The placement score of best effort's second pass: fewer of this group's members first. */
static double spread_score(void *ctx, uint32_t shard, double free_capacity)
{
    (void)free_capacity;
    const uint16_t *count = ctx;
    return 1.0 / (1.0 + count[shard]);
}

int grp_place(mrt_group *grp, unsigned idx, uint32_t avoid, uint32_t *shard)
{
    mrt_groups *g = grp->g;
    mrt_sched *s = mrt_runtime_sched(g->rt);
    if (s == NULL)
        return MRT_GROUPS_ESTATE;
    uint32_t ex[MRT_MAX_SHARDS + MRT_GROUP_MAX_MEMBERS + 1];
    uint16_t count[MRT_MAX_SHARDS] = { 0 };
    uint32_t nx = 0;
    for (uint32_t k = 0; k < grp->nexclude; k++)
        ex[nx++] = grp->exclude[k];
    if (avoid != MRT_SCHED_NONE)
        ex[nx++] = avoid;
    uint32_t base = nx;
    const grp_gtab *gt = &g->master->g[grp->gid];
    for (unsigned i = 0; i < gt->nslots; i++)
        if (i != idx && gt->s[i].state != GRP_SLOT_EMPTY) {
            ex[nx++] = gt->s[i].shard;
            count[gt->s[i].shard]++;
        }
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.filter = grp->has_filter ? &grp->filter : NULL;
    rq.exclude = ex;
    rq.nexclude = nx;
    int rc = mrt_sched_place(s, &rq, 1, shard);
    if (rc == MRT_SCHED_EEXCLUDED && grp->spread == MRT_SCHED_SPREAD_BEST_EFFORT) {
        /* Every free shard taken: the one with fewest of ours, never an excluded one. */
        rq.nexclude = base;
        rq.score = spread_score;
        rq.score_ctx = count;
        rc = mrt_sched_place(s, &rq, 1, shard);
    }
    if (rc == MRT_OK)
        return MRT_OK;
    if (rc == MRT_SCHED_EEXCLUDED && grp->spread == MRT_SCHED_SPREAD_STRICT && nx > base)
        return MRT_GROUPS_ESPREAD;
    return MRT_GROUPS_ENOPLACE;
}

int grp_recover_slots(mrt_group *grp, uint32_t max)
{
    mrt_groups *g = grp->g;
    uint32_t term = grp->term + 1;
    int done = 0;
    for (unsigned idx = 0; idx < grp->n && (uint32_t)done < max; idx++) {
        if (!grp_slot_unhealthy(grp, idx))
            continue;
        uint32_t old = slot_of(grp, idx)->shard;
        if (grp_member_retire(grp, idx) != MRT_OK)
            continue;
        uint32_t shard;
        if (grp_place(grp, idx, old, &shard) != MRT_OK &&
            grp_place(grp, idx, MRT_SCHED_NONE, &shard) != MRT_OK)
            continue; /* stays down: tried again next tick */
        if (shard == old && mrt_runtime_shard_failed(g->rt, old))
            continue;
        if (grp_member_spawn(grp, idx, shard, term) != MRT_OK)
            continue;
        done++;
    }
    if (done) {
        grp->term = term;
        grp->respawns += (uint64_t)done;
        g->respawns += (uint64_t)done;
        (void)grp_publish(g);
    }
    return done;
}

/* ---- groups ------------------------------------------------------------------ */

void mrt_group_destroy(mrt_group *grp)
{
    if (grp == NULL)
        return;
    mrt_groups *g = grp->g;
    for (unsigned idx = grp->n; idx-- > 0;)
        (void)grp_member_retire(grp, idx);
    memset(&g->master->g[grp->gid], 0, sizeof(grp_gtab));
    (void)grp_publish(g);
    (void)grp_wait_adopted(g);
    grp_group_free(grp);
}
