/*
 * Control signals to the daemons (see "Control signals" in mrt_compute.h):
 * backpressure from the shard's own queues, computed once per iteration at
 * the poll boundary, and the drain's start and finish. Everything here runs
 * on the shard thread, reads no clock and allocates nothing; the daemons are
 * walked only on a transition, never per event.
 *
 * Thresholds: ON at 6/8, OFF below 2/8. ON fires with a quarter of the room
 * left, so a daemon that slows its producers still has room for what is in
 * flight (a deferral queue holds 256 entries: 64 to go); OFF waits until
 * three quarters are free, so a queue that drains just below the ON mark
 * and fills again (every send at a full ring does that) does not flap.
 */
#include "compute/cp_internal.h"

static void tell(cp_shard *cs, cp_daemon *d, mrt_daemon_control kind, uint32_t level)
{
    (void)mrt_host_control(d->host, kind, level); /* advice: a daemon's answer changes nothing */
    switch (kind) {
    case MRT_DAEMON_CTL_BACKPRESSURE_ON: cs->st.bp_on++; break;
    case MRT_DAEMON_CTL_BACKPRESSURE_OFF: cs->st.bp_off++; break;
    case MRT_DAEMON_CTL_DRAIN_START: cs->st.drain_start++; break;
    case MRT_DAEMON_CTL_DRAIN_FINISH: cs->st.drain_finish++; break;
    default: break;
    }
}

/* used/cap in whole eighths, 0..8. */
static unsigned eighths(uint64_t used, uint64_t cap)
{
    return cap ? (unsigned)(used * 8 / cap) : 0;
}

/* The fullest of the shard's outbound FIFOs and deferral queues, in eighths. */
static unsigned fill(const cp_shard *cs)
{
    uint32_t used, cap;
    mrt_shard_outbound_backlog(cs->shard, &used, &cap);
    unsigned e = eighths(used, cap);
    if (cs->deferred_now == 0)
        return e;
    const cp_config *cfg = &cs->c->cfg;
    for (unsigned q = 0; q < CP_NQ(cs->n) && e < 8; q++) {
        unsigned k = eighths(cs->dq[q].count, cfg->defer_depth);
        unsigned b = eighths(cs->dq[q].bused, cfg->defer_bytes);
        if (k > e)
            e = k;
        if (b > e)
            e = b;
    }
    return e;
}

void cp_pressure_tick(cp_shard *cs, bool draining)
{
    if (draining && !cs->stop_told) {
        cs->stop_told = true;
        for (cp_daemon *d = cs->list; d; d = d->next)
            (void)cp_drain_to(cs, d, MRT_DAEMON_CTL_DRAIN_START);
    }
    unsigned e = fill(cs);
    uint32_t level = cs->bp_level;
    if (e >= 6)
        level = e - 5; /* 6/8: 1, 7/8: 2, full: 3 */
    else if (e < 2)
        level = 0;
    if (level == cs->bp_level)
        return;
    cs->bp_level = level;
    mrt_daemon_control kind = level ? MRT_DAEMON_CTL_BACKPRESSURE_ON
                                    : MRT_DAEMON_CTL_BACKPRESSURE_OFF;
    for (cp_daemon *d = cs->list; d; d = d->next)
        tell(cs, d, kind, level);
}

void cp_pressure_join(cp_shard *cs, cp_daemon *d)
{
    if (cs->stop_told)
        (void)cp_drain_to(cs, d, MRT_DAEMON_CTL_DRAIN_START);
    if (cs->bp_level)
        tell(cs, d, MRT_DAEMON_CTL_BACKPRESSURE_ON, cs->bp_level);
}

bool cp_drain_to(cp_shard *cs, cp_daemon *d, mrt_daemon_control kind)
{
    uint8_t want = kind == MRT_DAEMON_CTL_DRAIN_FINISH ? CP_DRAIN_FINISHED : CP_DRAIN_STARTED;
    if (d->drain >= want)
        return false;
    if (d->drain == CP_DRAIN_NONE) {
        tell(cs, d, MRT_DAEMON_CTL_DRAIN_START, 0);
        d->drain = CP_DRAIN_STARTED;
    }
    if (want == CP_DRAIN_FINISHED) {
        tell(cs, d, MRT_DAEMON_CTL_DRAIN_FINISH, 0);
        d->drain = CP_DRAIN_FINISHED;
    }
    return true;
}

int cp_drain_all(cp_shard *cs, mrt_daemon_control kind)
{
    int n = 0;
    for (cp_daemon *d = cs->list; d; d = d->next)
        n += cp_drain_to(cs, d, kind);
    return n;
}
