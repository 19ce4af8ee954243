/*
 * A shard's circuit breakers: opening one (counted, reported to the control
 * plane), the deadlines that move open to half-open and reclaim a stuck
 * probe, the reports the control plane drains, and one endpoint's state as
 * the shard sees it. Off the common path: select and complete call in here
 * only when a breaker opens or a deadline has passed (one compare each).
 */
#include "balancer/lb_internal.h"
#include "balancer/lb_tree.h"

/* ------------------------------------------------------------------ breakers */

void lb_add_tripped(mrt_lb_shard *sh, uint32_t id, uint64_t deadline)
{
    lb_cold *c = &sh->cold[id];
    if (!c->in_list) {
        c->in_list = 1;
        sh->tripped[sh->ntripped++] = id;
    }
    if (deadline < sh->next_wake)
        sh->next_wake = deadline;
}

static void push_report(mrt_lb_shard *sh, uint32_t id, uint64_t now)
{
    if (sh->rep_count == LB_REPORTS) {
        sh->rep_head = (sh->rep_head + 1) % LB_REPORTS;
        sh->rep_count--;
        sh->st.reports_dropped++;
    }
    mrt_lb_breaker_report *r = &sh->reports[(sh->rep_head + sh->rep_count) % LB_REPORTS];
    r->endpoint_id = id;
    r->generation = sh->cold[id].gen;
    r->opened_at_ns = now;
    sh->rep_count++;
}

void lb_open_breaker(mrt_lb_shard *sh, lb_live *l, uint32_t id, uint64_t now)
{
    l->brk = LB_BRK_OPEN;
    sh->cold[id].opened_at = now;
    sh->st.breaker_opens++;
    lb_add_tripped(sh, id, lb_sat_add(now, sh->recovery_ns));
    push_report(sh, id, now);
}

/*
 * Apply the breaker transitions due by `now`: open -> half-open after the
 * recovery time, and a probe still out after a recovery window is
 * reclaimed (its reservation released, the shard may probe again). Runs
 * only when the earliest deadline has passed: one compare per select.
 */
void lb_breaker_wake(mrt_lb_shard *sh, uint64_t now)
{
    uint64_t rec = sh->recovery_ns;
    uint64_t next = UINT64_MAX;
    uint32_t keep = 0;
    for (uint32_t j = 0; j < sh->ntripped; j++) {
        uint32_t id = sh->tripped[j];
        lb_live *h = lb_live_of(sh, id);
        lb_cold *c = &sh->cold[id];
        uint64_t deadline;
        if (h->brk == LB_BRK_OPEN) {
            deadline = lb_sat_add(c->opened_at, rec);
            if (now >= deadline) {
                h->brk = LB_BRK_HALF;
                c->in_list = 0;
                lb_tree_update_id(sh, id);
                continue;
            }
        } else if (h->brk == LB_BRK_PROBING) {
            deadline = lb_sat_add(c->probe_at, rec);
            if (now >= deadline) {
                h->brk = LB_BRK_HALF;
                c->in_list = 0;
                c->probe_epoch++;
                if (h->inflight > 0)
                    h->inflight--;
                if (sh->st.outstanding > 0)
                    sh->st.outstanding--;
                sh->st.probes_reclaimed++;
                lb_tree_update_id(sh, id);
                continue;
            }
        } else {
            c->in_list = 0;
            continue;
        }
        sh->tripped[keep++] = id;
        if (deadline < next)
            next = deadline;
    }
    sh->ntripped = keep;
    sh->next_wake = next;
}

size_t mrt_lb_shard_drain_reports(mrt_lb_shard *sh, mrt_lb_breaker_report *out, size_t max)
{
    if (sh == NULL || out == NULL)
        return 0;
    size_t n = 0;
    while (n < max && sh->rep_count > 0) {
        out[n++] = sh->reports[sh->rep_head];
        sh->rep_head = (sh->rep_head + 1) % LB_REPORTS;
        sh->rep_count--;
    }
    return n;
}

/* ------------------------------------------------------------------ endpoint info */

int mrt_lb_shard_endpoint(mrt_lb_shard *sh, uint32_t endpoint_id, uint64_t now_ns,
                          mrt_lb_endpoint_shard_info *out)
{
    if (sh == NULL || out == NULL || endpoint_id >= sh->cap || sh->select == NULL)
        return MRT_LB_EINVAL;
    if (now_ns >= sh->next_wake)
        lb_breaker_wake(sh, now_ns);
    const lb_live *h = lb_live_of(sh, endpoint_id);
    const lb_cold *c = &sh->cold[endpoint_id];
    out->breaker = (mrt_lb_breaker_state)h->brk;
    out->consecutive_failures = c->fails;
    out->inflight = h->inflight;
    out->opened_at_ns = c->opened_at;
    out->latency_ewma_ns = c->ewma;
    return MRT_OK;
}
