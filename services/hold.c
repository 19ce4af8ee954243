/*
 * Push-back by admission: before an event reaches its daemon, the
 * registered admission (compute: "could this delivery's outputs all be
 * deferred?") may refuse; the event is then held here with its buffer and
 * the tick retries in arrival order once the hooks made room (route.c's
 * svc_retry_held: delivering is routing's job, this file keeps the queue).
 * Nothing is dropped and nothing overtakes: every event after a held one is
 * held behind it. The shard keeps reading (returns and completions must still
 * come in); the senders feel the push-back as their buffers stay out, so
 * what can be held is bounded by the pools (see svc_hold_init).
 */
#include "services/svc_internal.h"

#include <string.h>

int mrt_svc_set_admit(mrt_svc *svc, mrt_svc_admit_fn fn, void *ctx)
{
    if (svc == NULL)
        return MRT_EINVAL;
    if (atomic_load(&svc->started))
        return MRT_ESTATE;
    svc->admit = fn;
    svc->admit_ctx = ctx;
    return MRT_OK;
}

/*
 * Every held event holds a buffer: of a shard's pool (n pools) or of this
 * shard's ingress pool. A burst more for malformed external messages,
 * which hold nothing.
 */
int svc_hold_init(mrt_svc_shard *ss)
{
    const mrt_svc *svc = ss->svc;
    if (svc->admit == NULL)
        return MRT_OK;
    uint64_t cap = (uint64_t)svc->n * svc->pool_total + MRT_MAX_BURST;
    for (unsigned c = 0; c < svc->nclasses; c++)
        cap += svc->icount[c];
    if (cap > UINT32_MAX)
        return MRT_SVC_ECONFIG;
    ss->held = mrt_alloc(ss->alloc, sizeof(mrt_msg) * cap);
    if (ss->held == NULL)
        return MRT_ENOMEM;
    ss->held_cap = (uint32_t)cap;
    return MRT_OK;
}

void svc_hold_fini(mrt_svc_shard *ss)
{
    mrt_free(ss->alloc, ss->held, sizeof(mrt_msg) * ss->held_cap);
    ss->held = NULL;
    ss->held_cap = 0;
}

/* Whether x must wait (it is then held); false: deliver it now. */
bool svc_hold(mrt_svc_shard *ss, const mrt_msg *x)
{
    if (ss->nheld == 0) {
        mrt_host *h = mrt_svc_host_find(ss, x->w[0]);
        if (h == NULL || ss->svc->admit(ss, h, ss->svc->admit_ctx))
            return false;
    } else if (ss->nheld == ss->held_cap) {
        return false; /* unreachable by the bound: delivering beats losing */
    }
    uint32_t tail = ss->held_head + ss->nheld;
    ss->held[tail >= ss->held_cap ? tail - ss->held_cap : tail] = *x;
    ss->nheld++;
    return true;
}
