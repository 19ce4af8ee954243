/*
 * Fork groups: N divergent forks of a running daemon. Each fork has a
 * random identity (its secret kept here, so recovery re-spawns the same
 * fork), a fork record naming the parent and the fork point, the parent's
 * state and horizon from one snapshot, and a chain from its fork genesis.
 * Routed like a replica group; recovered like one (same identity, chain
 * resumed from the slot's last head).
 */
#include "groups/groups_internal.h"

#include <string.h>

#define FORK_LABEL "meshrt/groups/fork/v1"

typedef struct fk_state {
    uint64_t parent_origin;
    uint64_t fork_seq;
    mrt_fork_record rec[MRT_GROUP_MAX_MEMBERS];
    uint8_t secret[MRT_GROUP_MAX_MEMBERS][MRT_FORK_SECRET_SIZE];
} fk_state;

static void fk_fini(mrt_group *grp)
{
    if (grp->kind_state) {
        memset(grp->kind_state, 0, sizeof(fk_state)); /* secrets do not outlive the group */
        mrt_free(NULL, grp->kind_state, sizeof(fk_state));
        grp->kind_state = NULL;
    }
}

const grp_kind grp_kind_fork = {
    .name = "fork",
    .route = GRP_ROUTE_SELECT,
    .recover = grp_recover_slots,
    .fini = fk_fini,
};

void mrt_group_fork_config_default(mrt_group_fork_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->forks = 1;
    cfg->strategy = MRT_GROUP_ROUND_ROBIN;
    cfg->spread = MRT_SCHED_SPREAD_BEST_EFFORT;
}

typedef struct parent_snap {
    uint8_t *buf;
    size_t cap, len;
    uint64_t origin, head_seq;
} parent_snap;

/* On the parent's shard: its snapshot and fork point. The parent is only read. */
static int call_parent(void *ctx, mrt_host *h, void *state)
{
    (void)state;
    parent_snap *p = ctx;
    const mrt_causal_chain *c = mrt_host_chain(h);
    p->origin = mrt_host_origin(h);
    p->head_seq = c->has_head ? c->head.sequence : 0;
    return mrt_host_snapshot(h, p->buf, p->cap, &p->len);
}

/* On a fork's shard: the parent's state and horizon, the fork's own chain kept. */
static int call_restore_fork(void *ctx, mrt_host *h, void *state)
{
    (void)state;
    const parent_snap *p = ctx;
    return mrt_host_restore_fork(h, p->buf, p->len);
}

int mrt_group_fork_create(mrt_groups *g, const mrt_group_fork_config *cfg, mrt_group **out)
{
    if (g == NULL || cfg == NULL || out == NULL || cfg->forks == 0 ||
        cfg->forks > MRT_GROUP_MAX_MEMBERS || (unsigned)cfg->strategy > MRT_GROUP_LEAST_CONN ||
        (cfg->arg == NULL && cfg->arg_len))
        return MRT_GROUPS_EINVAL;
    if (cfg->arg_len > MRT_GROUPS_MAX_ARG)
        return MRT_GROUPS_ETOOBIG;
    /* The parent's snapshot first: nothing is created when the parent is gone. */
    parent_snap ps = { NULL, 0, 0, 0, 0 };
    int rc = mrt_compute_call(g->c, cfg->parent, call_parent, &ps);
    if (rc == MRT_DAEMON_ENOSPACE) {
        ps.cap = ps.len;
        ps.buf = mrt_alloc(NULL, ps.cap ? ps.cap : 1);
        if (ps.buf == NULL)
            return MRT_GROUPS_ENOMEM;
        rc = mrt_compute_call(g->c, cfg->parent, call_parent, &ps);
    }
    if (rc != MRT_OK) {
        if (ps.buf)
            mrt_free(NULL, ps.buf, ps.cap ? ps.cap : 1);
        return rc;
    }
    mrt_group *grp;
    rc = grp_group_new(g, &grp_kind_fork, cfg->type, &grp);
    fk_state *st = rc == MRT_OK ? mrt_calloc(NULL, sizeof(*st)) : NULL;
    if (rc == MRT_OK && st == NULL) {
        grp_group_free(grp);
        rc = MRT_GROUPS_ENOMEM;
    }
    if (rc != MRT_OK) {
        mrt_free(NULL, ps.buf, ps.cap ? ps.cap : 1);
        return rc;
    }
    grp->kind_state = st;
    grp->label = FORK_LABEL;
    grp->spread = cfg->spread;
    if (cfg->arg_len)
        memcpy(grp->arg, cfg->arg, cfg->arg_len);
    grp->arg_len = cfg->arg_len;
    grp_gtab *gt = &g->master->g[grp->gid];
    gt->strategy = (uint8_t)cfg->strategy;
    if (cfg->max_conn)
        gt->max_conn = cfg->max_conn;
    st->parent_origin = ps.origin;
    st->fork_seq = ps.head_seq;
    for (uint32_t idx = 0; idx < cfg->forks && rc == MRT_OK; idx++) {
        grp_mslot *ms = &grp->ms[idx];
        rc = mrt_fork_secret_new(st->secret[idx]);
        if (rc == MRT_OK)
            rc = mrt_fork_record_make(st->secret[idx], ps.origin, ps.head_seq, &ps.head_seq,
                                      &st->rec[idx]);
        if (rc == MRT_OK)
            rc = mrt_fork_chain_init(&ms->chain, &st->rec[idx]);
        if (rc != MRT_OK)
            break;
        memcpy(ms->key, st->secret[idx], MRT_FORK_SECRET_SIZE);
        ms->keyed = true;
        ms->used = true; /* spawn resumes the slot's chain: here, after the fork genesis */
        uint32_t shard;
        rc = grp_place(grp, idx, MRT_SCHED_NONE, &shard);
        if (rc == MRT_OK)
            rc = grp_member_spawn(grp, idx, shard, grp->term);
        if (rc == MRT_OK) {
            grp->n = idx + 1;
            rc = mrt_compute_call(g->c, (mrt_compute_ref){ gt->s[idx].id, gt->s[idx].shard },
                                  call_restore_fork, &ps);
        }
    }
    mrt_free(NULL, ps.buf, ps.cap ? ps.cap : 1);
    if (rc == MRT_OK)
        rc = grp_publish(g);
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
    (void)grp_wait_adopted(g);
    *out = grp;
    return MRT_OK;
}

int mrt_group_fork_records(const mrt_group *grp, mrt_fork_record *out, unsigned *n)
{
    if (grp == NULL || out == NULL || n == NULL)
        return MRT_GROUPS_EINVAL;
    if (grp->kind != &grp_kind_fork)
        return MRT_GROUPS_EKIND;
    const fk_state *st = grp->kind_state;
    unsigned k = *n < grp->n ? *n : grp->n;
    memcpy(out, st->rec, sizeof(*out) * k);
    *n = k;
    return MRT_OK;
}

int mrt_group_fork_verify_lineage(const mrt_group *grp)
{
    if (grp == NULL)
        return MRT_GROUPS_EINVAL;
    if (grp->kind != &grp_kind_fork)
        return MRT_GROUPS_EKIND;
    const fk_state *st = grp->kind_state;
    /* The members run under the identities the records name. */
    const grp_gtab *gt = &grp->g->master->g[grp->gid];
    for (unsigned i = 0; i < grp->n; i++)
        if (gt->s[i].state != GRP_SLOT_EMPTY && gt->s[i].id != st->rec[i].forked_origin)
            return MRT_GROUPS_ELINEAGE;
    return mrt_fork_verify_lineage(st->parent_origin, st->fork_seq, st->rec, grp->n,
                                   (const uint8_t(*)[MRT_FORK_SECRET_SIZE])st->secret) == MRT_OK
               ? MRT_OK
               : MRT_GROUPS_ELINEAGE;
}
