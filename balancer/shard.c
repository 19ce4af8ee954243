/*
 * A balancer shard's own state: create and destroy, adopting a snapshot
 * (growing the per-id and per-slot arrays, parking and unparking live
 * state), and its stats. Runs on the shard's thread at set-up or at its
 * poll boundary, never per event.
 */
#include "balancer/lb_internal.h"

#include <string.h>

/* ------------------------------------------------------------------ lifecycle */

int mrt_lb_shard_create(const mrt_allocator *a, uint64_t seed, mrt_lb_shard **out)
{
    if (out == NULL)
        return MRT_LB_EINVAL;
    mrt_allocator al = mrt_allocator_or_default(a);
    mrt_lb_shard *sh = mrt_calloc(&al, sizeof(*sh));
    if (sh == NULL)
        return MRT_LB_ENOMEM;
    sh->alloc = al;
    sh->rng = seed;
    (void)lb_rand(&sh->rng);
    sh->maxc = UINT32_MAX;
    sh->next_wake = UINT64_MAX;
    *out = sh;
    return MRT_OK;
}

void mrt_lb_shard_destroy(mrt_lb_shard *sh)
{
    if (sh == NULL)
        return;
    mrt_allocator a = sh->alloc;
    mrt_free(&a, sh->live, (size_t)sh->slots_cap * sizeof(lb_live));
    mrt_free(&a, sh->slot_id, (size_t)sh->slots_cap * sizeof(uint32_t));
    mrt_free(&a, sh->cold, (size_t)sh->cap * sizeof(lb_cold));
    mrt_free(&a, sh->id_slot, (size_t)sh->cap * sizeof(uint32_t));
    mrt_free(&a, sh->tripped, (size_t)sh->cap * sizeof(uint32_t));
    mrt_free(&a, sh->rr, (size_t)sh->npools_cap * sizeof(uint32_t));
    mrt_free(&a, sh->wrr, (size_t)sh->npools_cap * sizeof(uint32_t));
    mrt_free(&a, sh->tree_on, sh->npools_cap);
    mrt_free(&a, sh->tree, (size_t)sh->tree_cap * sizeof(lb_tnode));
    mrt_free(&a, sh, sizeof(*sh));
}

const mrt_lb_snapshot *mrt_lb_shard_snapshot(const mrt_lb_shard *sh)
{
    return sh ? sh->snap : NULL;
}

void lb_shard_detach(mrt_lb_shard *sh)
{
    sh->snap = NULL;
    if (sh->npools_cap > 0)
        memset(sh->tree_on, 0, sh->npools_cap); /* stale from now on: rebuilt on first use */
}

void lb_shard_reattach(mrt_lb_shard *sh, const mrt_lb_snapshot *s)
{
    sh->snap = s;
}

/* ------------------------------------------------------------------ adopt */

static int grow(const mrt_allocator *a, void **p, size_t old_bytes, size_t new_bytes)
{
    void *n = mrt_realloc(a, *p, new_bytes);
    if (n == NULL)
        return MRT_LB_ENOMEM;
    if (new_bytes > old_bytes)
        memset((uint8_t *)n + old_bytes, 0, new_bytes - old_bytes);
    *p = n;
    return MRT_OK;
}

int mrt_lb_shard_adopt(mrt_lb_shard *sh, const mrt_lb_snapshot *S)
{
    if (sh == NULL || S == NULL || S->magic != LB_MAGIC)
        return MRT_LB_EINVAL;
    const mrt_allocator *a = &sh->alloc;
    /*
     * Grow first. Every array keeps its contents (and id_slot's new entries
     * name ids nobody has), so a failure changes nothing a select can see.
     * The previous snapshot is not read: it may already be gone.
     */
    if (S->id_cap > sh->cap) {
        uint32_t ncap = sh->cap ? sh->cap : 16;
        while (ncap < S->id_cap)
            ncap *= 2;
        if (grow(a, (void **)&sh->cold, (size_t)sh->cap * sizeof(lb_cold),
                 (size_t)ncap * sizeof(lb_cold)) != MRT_OK ||
            grow(a, (void **)&sh->tripped, (size_t)sh->cap * sizeof(uint32_t),
                 (size_t)ncap * sizeof(uint32_t)) != MRT_OK ||
            grow(a, (void **)&sh->id_slot, (size_t)sh->cap * sizeof(uint32_t),
                 (size_t)ncap * sizeof(uint32_t)) != MRT_OK)
            return MRT_LB_ENOMEM;
        for (uint32_t id = sh->cap; id < ncap; id++)
            sh->id_slot[id] = LB_NONE;
        sh->cap = ncap;
    }
    if (S->n > sh->slots_cap) {
        if (grow(a, (void **)&sh->live, (size_t)sh->slots_cap * sizeof(lb_live),
                 (size_t)S->n * sizeof(lb_live)) != MRT_OK ||
            grow(a, (void **)&sh->slot_id, (size_t)sh->slots_cap * sizeof(uint32_t),
                 (size_t)S->n * sizeof(uint32_t)) != MRT_OK)
            return MRT_LB_ENOMEM;
        sh->slots_cap = S->n;
    }
    if (S->npools > sh->npools_cap) {
        if (grow(a, (void **)&sh->rr, (size_t)sh->npools_cap * sizeof(uint32_t),
                 (size_t)S->npools * sizeof(uint32_t)) != MRT_OK ||
            grow(a, (void **)&sh->wrr, (size_t)sh->npools_cap * sizeof(uint32_t),
                 (size_t)S->npools * sizeof(uint32_t)) != MRT_OK ||
            grow(a, (void **)&sh->tree_on, sh->npools_cap, S->npools) != MRT_OK)
            return MRT_LB_ENOMEM;
        sh->npools_cap = S->npools;
    }
    if (S->tree_nodes > sh->tree_cap) {
        if (grow(a, (void **)&sh->tree, (size_t)sh->tree_cap * sizeof(lb_tnode),
                 (size_t)S->tree_nodes * sizeof(lb_tnode)) != MRT_OK)
            return MRT_LB_ENOMEM;
        sh->tree_cap = S->tree_nodes;
    }

    /* Park the live state of the old slots under their ids ... */
    for (uint32_t s = 0; s < sh->nslots; s++) {
        uint32_t id = sh->slot_id[s];
        sh->cold[id].parked = sh->live[s];
        sh->id_slot[id] = LB_NONE;
    }
    /* ... and unpark it at the new ones; an id now held by another generation starts fresh. */
    for (uint32_t s = 0; s < S->n; s++) {
        uint32_t id = S->slots[s].id;
        lb_cold *c = &sh->cold[id];
        if (c->gen != S->slots[s].gen) {
            uint8_t in_list = c->in_list;
            memset(c, 0, sizeof(*c));
            c->in_list = in_list;
            c->gen = S->slots[s].gen;
        }
        sh->live[s] = c->parked;
        sh->slot_id[s] = id;
        sh->id_slot[id] = s;
    }
    sh->nslots = S->n;
    sh->snap = S;
    sh->snap_id = S->publish_id;
    sh->select = lb_select_for(S->cfg.strategy);
    sh->maxc = S->cfg.max_connections ? S->cfg.max_connections : UINT32_MAX;
    sh->recovery_ns = S->cfg.recovery_ns;
    sh->breaker_threshold = S->cfg.breaker_threshold;
    sh->latency_alpha = S->cfg.latency_alpha;
    /* Start cursors at random offsets so shards do not march in lockstep. */
    for (uint32_t pi = 0; pi < S->npools; pi++) {
        const lb_pool *P = &S->pools[pi];
        uint64_t r = lb_rand(&sh->rng);
        sh->rr[pi] = P->n ? lb_reduce(r, P->n) : 0;
        sh->wrr[pi] = P->wrr_len ? lb_reduce(r * 0x9e3779b97f4a7c15ull, P->wrr_len) : 0;
    }
    memset(sh->tree_on, 0, S->npools); /* trees are built on first use */
    /* Deadlines depend on the recovery time, which may have changed. */
    if (sh->ntripped > 0)
        sh->next_wake = 0;
    sh->st.adopts++;
    return MRT_OK;
}

/* ------------------------------------------------------------------ stats */

void mrt_lb_shard_stats_get(const mrt_lb_shard *sh, mrt_lb_shard_stats *out)
{
    if (sh == NULL || out == NULL)
        return;
    *out = sh->st;
}

uint32_t mrt_lb_shard_inflight(const mrt_lb_shard *sh, uint32_t endpoint_id)
{
    if (sh == NULL || endpoint_id >= sh->cap)
        return 0;
    return lb_live_of((mrt_lb_shard *)sh, endpoint_id)->inflight;
}
