/*
 * Replica groups: N interchangeable members, identity (seed, index) in the
 * replica-only domain, spread by the scheduler, scale_to with rollback,
 * recovery by re-spawn under the same identity (the chain resumed). Also
 * the group-level queries every kind shares (health, members, marks,
 * subscriptions, outstanding reservations).
 */
#include "groups/groups_internal.h"

#include <string.h>

#define REPLICA_LABEL "meshrt/groups/replica/v1"

const grp_kind grp_kind_replica = {
    .name = "replica",
    .route = GRP_ROUTE_SELECT,
    .recover = grp_recover_slots,
    .fini = NULL,
};

void mrt_group_replica_config_default(mrt_group_replica_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->members = 1;
    cfg->strategy = MRT_GROUP_ROUND_ROBIN;
    cfg->spread = MRT_SCHED_SPREAD_BEST_EFFORT;
}

/* Spawn slots grp->n .. n-1, one placement each; on failure stop them all again. */
static int grow(mrt_group *grp, uint32_t n)
{
    uint32_t start = grp->n;
    int rc = MRT_OK;
    for (uint32_t idx = start; idx < n; idx++) {
        grp_mslot *ms = &grp->ms[idx];
        if (!ms->keyed) { /* the identity is the slot's for good: re-grown, it continues */
            grp_member_key(grp->label, grp->seed, idx, ms->key);
            ms->keyed = true;
        }
        uint32_t shard;
        rc = grp_place(grp, idx, MRT_SCHED_NONE, &shard);
        if (rc == MRT_OK)
            rc = grp_member_spawn(grp, idx, shard, grp->term);
        if (rc != MRT_OK)
            break;
        grp->n = idx + 1;
    }
    if (rc != MRT_OK) { /* never published: stop at once */
        for (uint32_t idx = grp->n; idx-- > start;)
            grp_member_kill(grp, idx);
        grp->n = start;
        grp->g->master->g[grp->gid].nslots = (uint16_t)start;
        return rc;
    }
    return MRT_OK;
}

static int shrink(mrt_group *grp, uint32_t n)
{
    grp_gtab *gt = &grp->g->master->g[grp->gid];
    while (grp->n > n) {
        uint32_t idx = grp->n - 1;
        int rc = grp_member_retire(grp, idx);
        if (rc != MRT_OK)
            return rc;
        memset(&gt->s[idx], 0, sizeof(gt->s[idx]));
        gt->nslots = (uint16_t)idx;
        grp->n = idx;
    }
    return MRT_OK;
}

int mrt_group_replica_create(mrt_groups *g, const mrt_group_replica_config *cfg, mrt_group **out)
{
    if (g == NULL || cfg == NULL || out == NULL || cfg->members == 0 ||
        cfg->members > MRT_GROUP_MAX_MEMBERS || (unsigned)cfg->strategy > MRT_GROUP_LEAST_CONN ||
        (cfg->arg == NULL && cfg->arg_len) || (cfg->exclude == NULL && cfg->nexclude) ||
        cfg->nexclude > MRT_MAX_SHARDS)
        return MRT_GROUPS_EINVAL;
    if (cfg->arg_len > MRT_GROUPS_MAX_ARG)
        return MRT_GROUPS_ETOOBIG;
    for (uint32_t k = 0; k < cfg->nexclude; k++)
        if (cfg->exclude[k] >= g->n)
            return MRT_GROUPS_EINVAL;
    mrt_group *grp;
    int rc = grp_group_new(g, &grp_kind_replica, cfg->type, &grp);
    if (rc != MRT_OK)
        return rc;
    grp->label = REPLICA_LABEL;
    grp->seed = cfg->seed;
    grp->spread = cfg->spread;
    if (cfg->filter) {
        grp->filter = *cfg->filter;
        grp->has_filter = true;
    }
    if (cfg->arg_len)
        memcpy(grp->arg, cfg->arg, cfg->arg_len);
    grp->arg_len = cfg->arg_len;
    grp_gtab *gt = &g->master->g[grp->gid];
    gt->strategy = (uint8_t)cfg->strategy;
    if (cfg->max_conn)
        gt->max_conn = cfg->max_conn;
    if (cfg->nexclude) {
        grp->exclude = mrt_calloc(NULL, sizeof(uint32_t) * cfg->nexclude);
        if (grp->exclude == NULL) {
            grp_group_free(grp);
            return MRT_GROUPS_ENOMEM;
        }
        memcpy(grp->exclude, cfg->exclude, sizeof(uint32_t) * cfg->nexclude);
        grp->nexclude = cfg->nexclude;
    }
    rc = grow(grp, cfg->members);
    if (rc == MRT_OK)
        rc = grp_publish(g);
    if (rc != MRT_OK) {
        grp_group_free(grp);
        return rc;
    }
    (void)grp_wait_adopted(g);
    *out = grp;
    return MRT_OK;
}

int mrt_group_scale_to(mrt_group *grp, uint32_t n)
{
    if (grp == NULL || n == 0 || n > MRT_GROUP_MAX_MEMBERS)
        return MRT_GROUPS_EINVAL;
    if (grp->kind != &grp_kind_replica)
        return MRT_GROUPS_EKIND;
    int rc = n > grp->n ? grow(grp, n) : shrink(grp, n);
    if (rc != MRT_OK)
        return rc;
    rc = grp_publish(grp->g);
    if (rc == MRT_OK)
        (void)grp_wait_adopted(grp->g);
    return rc;
}

int mrt_group_subscribe(mrt_group *grp, mrt_compute_sink_kind kind, mrt_compute_ref target)
{
    if (grp == NULL)
        return MRT_GROUPS_EINVAL;
    if (grp->nsubs >= MRT_COMPUTE_MAX_SUBS - 1)
        return MRT_GROUPS_ELIMIT;
    const grp_gtab *gt = &grp->g->master->g[grp->gid];
    for (unsigned i = 0; i < gt->nslots; i++) {
        const grp_slot *s = &gt->s[i];
        if (s->state == GRP_SLOT_EMPTY)
            continue;
        int rc = mrt_compute_subscribe(grp->g->c, (mrt_compute_ref){ s->id, s->shard }, kind,
                                       target);
        if (rc != MRT_OK)
            return rc;
    }
    grp->sub_kind[grp->nsubs] = kind;
    grp->sub_target[grp->nsubs++] = target;
    return MRT_OK;
}

int mrt_group_health_get(const mrt_group *grp, mrt_group_health *out)
{
    if (grp == NULL || out == NULL)
        return MRT_GROUPS_EINVAL;
    memset(out, 0, sizeof(*out));
    const grp_gtab *gt = &grp->g->master->g[grp->gid];
    for (unsigned i = 0; i < grp->n; i++)
        out->healthy += gt->s[i].state == GRP_SLOT_UP && !grp_slot_unhealthy(grp, i);
    out->members = grp->n;
    out->term = grp->term;
    out->respawns = grp->respawns;
    out->state = out->healthy == out->members ? MRT_GROUP_HEALTHY
                 : out->healthy ? MRT_GROUP_DEGRADED
                                : MRT_GROUP_DEAD;
    return MRT_OK;
}

int mrt_group_member(const mrt_group *grp, unsigned idx, mrt_group_member_info *out)
{
    if (grp == NULL || out == NULL || idx >= grp->n)
        return MRT_GROUPS_EINVAL;
    const grp_slot *s = &grp->g->master->g[grp->gid].s[idx];
    out->ref = (mrt_compute_ref){ s->id, s->shard };
    out->term = s->term;
    out->up = s->state == GRP_SLOT_UP;
    out->unhealthy = grp_slot_unhealthy(grp, idx);
    return MRT_OK;
}

int mrt_group_member_of(const mrt_group *grp, uint64_t id)
{
    if (grp == NULL)
        return -1;
    int idx = grp_gtab_find(&atomic_load(&grp->g->pub)->g[grp->gid], id);
    return idx >= 0 && (unsigned)idx < grp->n ? idx : -1;
}

int mrt_group_mark_unhealthy(mrt_group *grp, unsigned idx)
{
    if (grp == NULL || idx >= grp->n)
        return MRT_GROUPS_EINVAL;
    atomic_store(&grp->g->unhealthy[grp->gid][idx], grp->g->master->g[grp->gid].s[idx].term);
    return MRT_OK;
}

uint64_t mrt_group_outstanding(const mrt_group *grp)
{
    if (grp == NULL)
        return 0;
    const mrt_groups *g = grp->g;
    uint64_t sum = atomic_load(&((mrt_groups *)g)->left[grp->gid]);
    for (unsigned i = 0; i < g->n; i++) {
        grp_shard *gs = atomic_load(&g->shards[i]);
        for (unsigned k = 0; gs && k < MRT_GROUP_MAX_MEMBERS; k++)
            sum += atomic_load_explicit(&gs->res[grp->gid][k].out, memory_order_relaxed);
    }
    for (unsigned k = 0; k < MRT_GROUP_MAX_MEMBERS; k++)
        sum += (uint32_t)atomic_load(&g->ext_out[grp->gid][k]);
    return sum;
}
