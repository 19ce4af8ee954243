/*
 * The least-* strategies' trees, one per pool a shard has used: a tournament
 * tree over the pool's members keyed by their current cost, so a select
 * reads the root and a complete replays one leaf. Kept by select and
 * complete (select.c) and by the breakers' transitions (breaker.c); inline,
 * as both sit on the event path of these strategies.
 */
#ifndef MESHRT_BALANCER_LB_TREE_H
#define MESHRT_BALANCER_LB_TREE_H

#include "balancer/lb_internal.h"

#include <float.h>
#include <math.h>

/*
 * Least latency and least load weigh their metric by what is in flight
 * ("peak EWMA": cost = (metric + floor) x (in-flight + 1)). On the metric
 * alone every shard would send everything to the one endpoint that looked
 * best, which then never gets a new sample (a slower one is never measured
 * again, a loaded one never relieved) — with load scores that no one
 * reports, all traffic would go to the first endpoint. The floor keeps an
 * endpoint whose metric reads 0 (a coarse clock's 0 ns, no metrics yet)
 * from absorbing everything: equal metrics reduce to least connections.
 */
#define LB_LATENCY_FLOOR_NS 1000.0 /* about one poll iteration: the coarse clock's grain */
#define LB_LOAD_FLOOR 0.01         /* load scores are in [0, 1] */

static inline double lb_tree_key(const mrt_lb_snapshot *S, const mrt_lb_shard *sh, uint32_t slot)
{
    const lb_live *h = &sh->live[slot];
    if (h->brk >= LB_BRK_OPEN)
        return INFINITY;
    if (h->inflight >= sh->maxc)
        return DBL_MAX;
    switch (S->cfg.strategy) {
    case MRT_LB_WEIGHTED_LEAST_CONN:
        return ((double)h->inflight + 1.0) / (double)S->weights[slot];
    case MRT_LB_LEAST_LATENCY:
        return (sh->cold[sh->slot_id[slot]].ewma + LB_LATENCY_FLOOR_NS) *
               ((double)h->inflight + 1.0);
    case MRT_LB_LEAST_LOAD:
        return (S->load[slot] + LB_LOAD_FLOOR) * ((double)h->inflight + 1.0);
    default: /* least connections, adaptive */
        return (double)h->inflight;
    }
}

/* Set leaf i of pool P and replay the matches above it; stop once a node is unchanged. */
static inline void lb_tree_set(lb_tnode *T, const lb_pool *P, uint32_t i, double key)
{
    lb_tnode *t = T + P->tree_base;
    uint32_t k = P->tree_leaves + i;
    if (t[k].key == key)
        return;
    t[k].key = key;
    while (k > 1) {
        k >>= 1;
        const lb_tnode *l = &t[2 * k], *r = &t[2 * k + 1];
        const lb_tnode *w = (r->key < l->key) ? r : l; /* ties: lower index */
        if (t[k].key == w->key && t[k].idx == w->idx)
            return;
        t[k].key = w->key;
        t[k].idx = w->idx;
    }
}

/* Replay one endpoint's key into the trees of the pools this shard has used. */
static inline void lb_tree_update_slot(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t slot)
{
    uint32_t a = S->mem_off[slot], b = S->mem_off[slot + 1];
    if (a == b)
        return;
    double key = lb_tree_key(S, sh, slot);
    for (uint32_t k = a; k < b; k++) {
        uint32_t pi = S->mem_pool[k];
        if (sh->tree_on[pi])
            lb_tree_set(sh->tree, &S->pools[pi], S->mem_idx[k], key);
    }
}

/* Replay endpoint id's key into the trees, when it is in the adopted snapshot. */
static inline void lb_tree_update_id(mrt_lb_shard *sh, uint32_t id)
{
    const mrt_lb_snapshot *S = sh->snap;
    if (S == NULL || S->tree_nodes == 0)
        return;
    uint32_t slot = sh->id_slot[id];
    if (slot != LB_NONE)
        lb_tree_update_slot(S, sh, slot);
}

/*
 * Build pool pi's tree from the current per-endpoint state. Trees start
 * inactive after an adopt and are built on their pool's first select on
 * this shard (O(n), no allocation: the memory is reserved at adopt), so a
 * shard maintains only the trees of the pools its requests use.
 */
static inline void lb_tree_build(const mrt_lb_snapshot *S, mrt_lb_shard *sh, uint32_t pi)
{
    const lb_pool *P = &S->pools[pi];
    lb_tnode *t = sh->tree + P->tree_base;
    uint32_t L = P->tree_leaves;
    for (uint32_t i = 0; i < L; i++) {
        t[L + i].idx = i;
        t[L + i].pad = 0;
        t[L + i].key = i < P->n ? lb_tree_key(S, sh, P->members[i]) : INFINITY;
    }
    for (uint32_t k = L - 1; k >= 1; k--) {
        const lb_tnode *l = &t[2 * k], *r = &t[2 * k + 1];
        t[k] = (r->key < l->key) ? *r : *l;
    }
    t[0].key = INFINITY;
    t[0].idx = 0;
    sh->tree_on[pi] = 1;
}

#endif
