/*
 * The horizon's observe with its common case inline, for the delivery path
 * (host.c): apart from daemon_internal.h because it falls back to
 * horizon.c's out-of-line mrt_horizon_observe, which includes that header.
 */
#ifndef MRT_DAEMONS_OBSERVE_H
#define MRT_DAEMONS_OBSERVE_H

#include "daemons/daemon_internal.h"

/*
 * mrt_horizon_observe with the common case inline: a known, non-zero origin
 * (one keyed hash, one bounded probe sequence). Anything else takes the
 * out-of-line path.
 */
static inline int mrt_dm_horizon_observe(mrt_horizon *h, uint64_t origin, uint64_t seq)
{
    if (origin != 0) {
        mrt_horizon_slot *s = mrt_dm_horizon_probe(h, origin);
        if (s != NULL && s->origin == origin) {
            if (seq > s->seq)
                s->seq = seq;
            h->logical_time += (h->logical_time != UINT64_MAX);
            return MRT_OK;
        }
    }
    return mrt_horizon_observe(h, origin, seq);
}

#endif
