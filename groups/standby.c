/*
 * Standby groups: one active, the others passive copies kept by snapshot
 * sync, promotion by ingress-index replay with outputs suppressed.
 *
 * Threads. The replay buffer has one owner at a time: the active's shard
 * (it appends in on_accept, and sync points are recorded there through
 * mrt_compute_call), then — once the old active is retired (stopped, so
 * nothing appends) — the control thread and the promoted standby's shard
 * for the replay, then the new active's shard. The control thread reads it
 * only through a call on the active's shard, or while no active runs.
 */
#include "groups/groups_internal.h"

#include <string.h>
#include <time.h>

#define STANDBY_LABEL "meshrt/groups/standby/v1"
#define SB_DEFAULT_EVENTS 65536u
#define SB_DEFAULT_BYTES (16u << 20)

typedef struct sb_state {
    mrt_group *grp;
    mrt_replay *buf;
    unsigned active;
    bool synced[MRT_GROUP_MAX_MEMBERS];   /* restored from a snapshot of the active */
    uint8_t *snap;                         /* control: the last snapshot */
    size_t snap_cap;
    uint64_t promotions, replayed, suppressed, replayed_total, suppressed_total;
    uint64_t promote_ns, syncs;
} sb_state;

static sb_state *state_of(mrt_group *grp)
{
    return grp->kind_state;
}

/* Active's shard: a routed event its daemon accepted, at the next ingress index. */
static void sb_on_accept(void *ctx, const mrt_event *ev)
{
    sb_state *st = ctx;
    (void)mrt_replay_append(st->buf, ev, mrt_replay_next_index(st->buf));
}

static mrt_compute_ref ref_of(mrt_group *grp, unsigned idx)
{
    const grp_slot *s = &grp->g->master->g[grp->gid].s[idx];
    return (mrt_compute_ref){ s->id, s->shard };
}

/* ---- calls on a member's shard ------------------------------------------- */

typedef struct snap_call {
    uint8_t *buf;
    size_t cap, len;
    uint64_t ingress;
} snap_call;

static int call_snapshot(void *ctx, mrt_host *h, void *state)
{
    (void)state;
    snap_call *c = ctx;
    c->ingress = mrt_host_ingress_next(h);
    return mrt_host_snapshot(h, c->buf, c->cap, &c->len);
}

static int call_restore(void *ctx, mrt_host *h, void *state)
{
    (void)state;
    const snap_call *c = ctx;
    return mrt_host_restore(h, c->buf, c->len);
}

typedef struct synced_call {
    sb_state *st;
    const bool *which;
    uint64_t sync_next;
    int stale;
} synced_call;

/* On the active's shard (the buffer's owner): record the standbys' sync points. */
static int call_synced(void *ctx, mrt_host *h, void *state)
{
    (void)h, (void)state;
    synced_call *c = ctx;
    for (unsigned i = 0; i < c->st->grp->n; i++)
        if (c->which[i] && mrt_replay_synced(c->st->buf, i, c->sync_next) != MRT_OK)
            c->stale++;
    return MRT_OK;
}

static int call_stats(void *ctx, mrt_host *h, void *state)
{
    (void)h, (void)state;
    const sb_state *st = ((void **)ctx)[0];
    mrt_replay_stats_get(st->buf, ((void **)ctx)[1]);
    return MRT_OK;
}

typedef struct promote_call {
    sb_state *st;
    unsigned idx;
    uint32_t term;
    uint64_t replayed, suppressed;
} promote_call;

/* On the promoted standby's shard: replay its suffix, suppressed; then take the new term. */
static int call_promote(void *ctx, mrt_host *h, void *state)
{
    promote_call *c = ctx;
    grp_member *m = state;
    mrt_host_stats a, b;
    mrt_host_stats_get(h, &a);
    m->replaying = true;
    int rc = mrt_replay_apply(c->st->buf, c->idx, h, 0, &c->replayed);
    m->replaying = false;
    mrt_host_stats_get(h, &b);
    c->suppressed = b.suppressed - a.suppressed;
    if (rc == MRT_OK)
        m->term = c->term; /* fenced: from now on only events of the new term */
    return rc;
}

/* ---- sync ------------------------------------------------------------------ */

static bool standby_healthy(mrt_group *grp, unsigned idx)
{
    const grp_slot *s = &grp->g->master->g[grp->gid].s[idx];
    return s->state == GRP_SLOT_UP && !grp_slot_unhealthy(grp, idx);
}

/* Snapshot the active and restore onto the standbys in `which` (control). */
static int sync_some(mrt_group *grp, const bool *which)
{
    sb_state *st = state_of(grp);
    mrt_compute *c = grp->g->c;
    if (grp_slot_unhealthy(grp, st->active))
        return MRT_GROUPS_ESTATE; /* a lost active is no source: promotion comes first */
    mrt_compute_ref act = ref_of(grp, st->active);
    snap_call sc = { st->snap, st->snap_cap, 0, 0 };
    int rc = mrt_compute_call(c, act, call_snapshot, &sc);
    if (rc == MRT_DAEMON_ENOSPACE) { /* grow once to the size it reported, then retry */
        uint8_t *nb = mrt_alloc(NULL, sc.len * 2);
        if (nb == NULL)
            return MRT_GROUPS_ENOMEM;
        if (st->snap)
            mrt_free(NULL, st->snap, st->snap_cap);
        st->snap = nb;
        st->snap_cap = sc.len * 2;
        sc = (snap_call){ st->snap, st->snap_cap, 0, 0 };
        rc = mrt_compute_call(c, act, call_snapshot, &sc);
    }
    if (rc != MRT_OK)
        return rc;
    bool ok[MRT_GROUP_MAX_MEMBERS] = { false };
    int n = 0;
    for (unsigned i = 0; i < grp->n; i++) {
        if (!which[i] || i == st->active || !standby_healthy(grp, i))
            continue;
        if (mrt_compute_call(c, ref_of(grp, i), call_restore, &sc) == MRT_OK) {
            ok[i] = true;
            st->synced[i] = true;
            st->syncs++;
            n++;
        }
    }
    synced_call yc = { st, ok, sc.ingress, 0 };
    rc = mrt_compute_call(c, act, call_synced, &yc);
    return rc == MRT_OK ? n : rc;
}

int mrt_group_standby_sync(mrt_group *grp)
{
    if (grp == NULL)
        return MRT_GROUPS_EINVAL;
    if (grp->kind != &grp_kind_standby)
        return MRT_GROUPS_EKIND;
    bool all[MRT_GROUP_MAX_MEMBERS];
    memset(all, 1, sizeof all);
    return sync_some(grp, all);
}

/* ---- promotion -------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Per member: its sync point, when it is tracked and replayable. */
typedef struct view_call {
    sb_state *st;
    bool ok[MRT_GROUP_MAX_MEMBERS];
    uint64_t sp[MRT_GROUP_MAX_MEMBERS];
    mrt_replay_stats rs;
} view_call;

static int call_view(void *ctx, mrt_host *h, void *state)
{
    (void)h, (void)state;
    view_call *v = ctx;
    for (unsigned i = 0; i < v->st->grp->n; i++) {
        uint64_t pending;
        v->ok[i] = mrt_replay_sync_point(v->st->buf, i, &v->sp[i]) == MRT_OK &&
                   mrt_replay_pending(v->st->buf, i, &pending) == MRT_OK;
    }
    mrt_replay_stats_get(v->st->buf, &v->rs);
    return MRT_OK;
}

/*
 * Run a buffer reader where the buffer is owned: on the active's shard
 * while the active runs, else here (no active appends).
 */
static int on_owner(mrt_group *grp, mrt_compute_host_fn fn, void *ctx)
{
    sb_state *st = state_of(grp);
    const grp_slot *as = &grp->g->master->g[grp->gid].s[st->active];
    if (as->state == GRP_SLOT_UP) {
        int rc = mrt_compute_call(grp->g->c, ref_of(grp, st->active), fn, ctx);
        if (rc != MRT_CP_ENODAEMON)
            return rc;
    }
    return fn(ctx, NULL, NULL);
}

/*
 * The freshest replayable healthy standby: the highest sync point; among
 * equally fresh ones the scheduler's ranking of their shards decides
 * (placement score only breaks ties). -1: none.
 */
static int pick(mrt_group *grp, const view_call *v)
{
    sb_state *st = state_of(grp);
    uint64_t best = 0;
    bool tied[MRT_GROUP_MAX_MEMBERS] = { false };
    int nbest = 0, one = -1;
    for (unsigned i = 0; i < grp->n; i++) {
        if (i == st->active || !st->synced[i] || !v->ok[i] || !standby_healthy(grp, i))
            continue;
        if (nbest == 0 || v->sp[i] > best) {
            memset(tied, 0, sizeof tied);
            best = v->sp[i];
            nbest = 0;
        }
        if (v->sp[i] == best) {
            tied[i] = true;
            nbest++;
            one = (int)i;
        }
    }
    if (nbest <= 1)
        return one;
    mrt_sched *s = mrt_runtime_sched(grp->g->rt);
    const grp_gtab *gt = &grp->g->master->g[grp->gid];
    bool on[MRT_MAX_SHARDS] = { false };
    for (unsigned i = 0; i < grp->n; i++)
        if (tied[i])
            on[gt->s[i].shard] = true;
    uint32_t ex[MRT_MAX_SHARDS];
    uint32_t nx = 0;
    for (unsigned k = 0; k < grp->g->n; k++)
        if (!on[k])
            ex[nx++] = k;
    mrt_sched_request rq;
    mrt_sched_request_init(&rq);
    rq.exclude = ex;
    rq.nexclude = nx;
    uint32_t shard;
    if (s == NULL || mrt_sched_place(s, &rq, 1, &shard) != MRT_OK)
        return one;
    for (unsigned i = 0; i < grp->n; i++)
        if (tied[i] && gt->s[i].shard == shard)
            return (int)i;
    return one;
}

static int promote(mrt_group *grp)
{
    sb_state *st = state_of(grp);
    mrt_groups *g = grp->g;
    uint64_t t0 = now_ns();
    static view_call v; /* control thread only; large */
    memset(&v, 0, sizeof v);
    v.st = st;
    int rc = on_owner(grp, call_view, &v);
    if (rc != MRT_OK)
        return rc;
    int cand = pick(grp, &v);
    if (cand < 0)
        return MRT_GROUPS_ENOSTANDBY; /* nothing changed */
    uint32_t term = grp->term + 1;
    unsigned old = st->active;
    /* Route away from the old active and stop it: from here nothing appends. */
    rc = grp_member_retire(grp, old);
    if (rc != MRT_OK)
        return rc;
    st->synced[old] = false;
    mrt_replay_forget(st->buf, old);
    promote_call pc = { st, (unsigned)cand, term, 0, 0 };
    rc = mrt_compute_call(g->c, ref_of(grp, (unsigned)cand), call_promote, &pc);
    st->replayed = pc.replayed;
    st->suppressed = pc.suppressed;
    st->replayed_total += pc.replayed;
    st->suppressed_total += pc.suppressed;
    if (rc != MRT_OK) { /* a standby that cannot replay is no copy: recovery re-places it */
        mrt_group_mark_unhealthy(grp, (unsigned)cand);
        st->synced[cand] = false;
        (void)grp_publish(g);
        return rc;
    }
    mrt_replay_forget(st->buf, (unsigned)cand);
    st->synced[cand] = false;
    grp_gtab *gt = &g->master->g[grp->gid];
    gt->s[cand].term = term;
    gt->s[cand].state = GRP_SLOT_UP;
    atomic_store(&g->unhealthy[grp->gid][cand], 0);
    atomic_store(&g->ext_out[grp->gid][cand], (uint64_t)term << 32);
    gt->active = (uint8_t)cand;
    st->active = (unsigned)cand;
    grp->term = term;
    st->promotions++;
    rc = grp_publish(g);
    if (rc == MRT_OK)
        (void)grp_wait_adopted(g);
    st->promote_ns = now_ns() - t0;
    return rc;
}

int mrt_group_standby_promote(mrt_group *grp)
{
    if (grp == NULL)
        return MRT_GROUPS_EINVAL;
    if (grp->kind != &grp_kind_standby)
        return MRT_GROUPS_EKIND;
    return promote(grp);
}

/* ---- recovery ------------------------------------------------------------- */

/*
 * The active is promoted away from, never re-placed; then unhealthy
 * standbys (the old active among them) are re-placed on another shard,
 * re-spawned with term + 1 and synced.
 */
static int sb_recover(mrt_group *grp, uint32_t max)
{
    sb_state *st = state_of(grp);
    int done = 0;
    if (grp_slot_unhealthy(grp, st->active)) {
        if (promote(grp) != MRT_OK)
            return 0; /* no standby to promote: tried again next tick */
        done++;
    }
    uint32_t term = grp->term + 1;
    bool fresh[MRT_GROUP_MAX_MEMBERS] = { false };
    int respawned = 0;
    for (unsigned idx = 0; idx < grp->n && (uint32_t)done < max; idx++) {
        if (idx == st->active || !grp_slot_unhealthy(grp, idx))
            continue;
        uint32_t old = grp->g->master->g[grp->gid].s[idx].shard;
        if (grp_member_retire(grp, idx) != MRT_OK)
            continue;
        st->synced[idx] = false;
        uint32_t shard;
        if (grp_place(grp, idx, old, &shard) != MRT_OK)
            continue; /* stays down: tried again next tick */
        if (grp_member_spawn(grp, idx, shard, term) != MRT_OK)
            continue;
        fresh[idx] = true;
        respawned++;
        done++;
    }
    if (respawned) {
        grp->term = term;
        grp->respawns += (uint64_t)respawned;
        grp->g->respawns += (uint64_t)respawned;
        (void)grp_publish(grp->g);
        (void)sync_some(grp, fresh);
    }
    return done;
}

static void sb_fini(mrt_group *grp)
{
    sb_state *st = state_of(grp);
    if (st == NULL)
        return;
    mrt_replay_destroy(st->buf);
    if (st->snap)
        mrt_free(NULL, st->snap, st->snap_cap);
    mrt_free(NULL, st, sizeof(*st));
    grp->kind_state = NULL;
}

const grp_kind grp_kind_standby = {
    .name = "standby",
    .route = GRP_ROUTE_ACTIVE,
    .recover = sb_recover,
    .fini = sb_fini,
    .on_accept = sb_on_accept,
};

/* ---- creation and queries ---------------------------------------------------- */

void mrt_group_standby_config_default(mrt_group_standby_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->members = 2;
}

int mrt_group_standby_create(mrt_groups *g, const mrt_group_standby_config *cfg,
                             mrt_group **out)
{
    if (g == NULL || cfg == NULL || out == NULL || cfg->members < 2 ||
        cfg->members > MRT_GROUP_MAX_MEMBERS || (cfg->arg == NULL && cfg->arg_len))
        return MRT_GROUPS_EINVAL;
    if (cfg->arg_len > MRT_GROUPS_MAX_ARG)
        return MRT_GROUPS_ETOOBIG;
    mrt_group *grp;
    int rc = grp_group_new(g, &grp_kind_standby, cfg->type, &grp);
    if (rc != MRT_OK)
        return rc;
    sb_state *st = mrt_calloc(NULL, sizeof(*st));
    mrt_replay_config rc_cfg = {
        .max_events = cfg->buffer_events ? cfg->buffer_events : SB_DEFAULT_EVENTS,
        .max_bytes = cfg->buffer_bytes ? cfg->buffer_bytes : SB_DEFAULT_BYTES,
        .max_standbys = cfg->members,
    };
    if (st == NULL || mrt_replay_create(&rc_cfg, &st->buf) != MRT_OK) {
        if (st)
            mrt_free(NULL, st, sizeof(*st));
        grp_group_free(grp);
        return MRT_GROUPS_ENOMEM;
    }
    st->grp = grp;
    grp->kind_state = st; /* before any member is spawned: w_create reads it */
    grp->label = STANDBY_LABEL;
    grp->seed = cfg->seed;
    grp->spread = MRT_SCHED_SPREAD_STRICT; /* a standby on the active's shard fails with it */
    if (cfg->filter) {
        grp->filter = *cfg->filter;
        grp->has_filter = true;
    }
    if (cfg->arg_len)
        memcpy(grp->arg, cfg->arg, cfg->arg_len);
    grp->arg_len = cfg->arg_len;
    grp_gtab *gt = &g->master->g[grp->gid];
    if (cfg->max_conn)
        gt->max_conn = cfg->max_conn;
    gt->active = 0;
    /* One chain identity for every member: the routing identity is the slot. */
    uint8_t key[MRT_HOST_KEY_SIZE];
    grp_member_key(STANDBY_LABEL, cfg->seed, 0, key);
    for (uint32_t idx = 0; idx < cfg->members && rc == MRT_OK; idx++) {
        memcpy(grp->ms[idx].key, key, sizeof key);
        grp->ms[idx].keyed = true;
        uint32_t shard;
        rc = grp_place(grp, idx, MRT_SCHED_NONE, &shard);
        if (rc == MRT_OK)
            rc = grp_member_spawn(grp, idx, shard, grp->term);
        if (rc == MRT_OK)
            grp->n = idx + 1;
    }
    if (rc == MRT_OK)
        rc = grp_publish(g);
    if (rc == MRT_OK) {
        (void)grp_wait_adopted(g);
        int n = mrt_group_standby_sync(grp);
        rc = n < 0 ? n : MRT_OK;
    }
    if (rc != MRT_OK) {
        for (uint32_t idx = grp->n; idx-- > 0;)
            grp_member_kill(grp, idx);
        grp->n = 0;
        memset(gt, 0, sizeof(*gt));
        (void)grp_publish(g);
        (void)grp_wait_adopted(g);
        grp_group_free(grp);
        return rc;
    }
    *out = grp;
    return MRT_OK;
}

int mrt_group_standby_info_get(mrt_group *grp, mrt_group_standby_info *out)
{
    if (grp == NULL || out == NULL)
        return MRT_GROUPS_EINVAL;
    if (grp->kind != &grp_kind_standby)
        return MRT_GROUPS_EKIND;
    sb_state *st = state_of(grp);
    mrt_replay_stats rs;
    void *ctx[2] = { st, &rs };
    int rc = on_owner(grp, call_stats, ctx);
    if (rc != MRT_OK)
        return rc;
    memset(out, 0, sizeof(*out));
    out->active = st->active;
    out->term = grp->term;
    out->promotions = st->promotions;
    out->replayed = st->replayed;
    out->suppressed = st->suppressed;
    out->replayed_total = st->replayed_total;
    out->suppressed_total = st->suppressed_total;
    out->promote_ns = st->promote_ns;
    out->syncs = st->syncs;
    out->buffered = rs.events;
    out->buffered_bytes = rs.bytes;
    out->evicted = rs.evicted;
    out->resyncs = rs.resyncs;
    return MRT_OK;
}

int mrt_group_standby_sync_point(mrt_group *grp, unsigned idx, uint64_t *sync_next)
{
    if (grp == NULL || sync_next == NULL || idx >= grp->n)
        return MRT_GROUPS_EINVAL;
    if (grp->kind != &grp_kind_standby)
        return MRT_GROUPS_EKIND;
    sb_state *st = state_of(grp);
    if (idx == st->active || !st->synced[idx])
        return MRT_GROUPS_ENOSTANDBY;
    static view_call v;
    memset(&v, 0, sizeof v);
    v.st = st;
    int rc = on_owner(grp, call_view, &v);
    if (rc != MRT_OK)
        return rc;
    if (!v.ok[idx])
        return MRT_DAEMON_ERESYNC;
    *sync_next = v.sp[idx];
    return MRT_OK;
}
