/*
 * Output routing: services hands compute the outputs of each delivery (on
 * the owner shard, before they are released); each output goes to each
 * subscription of the daemon that emitted it — a daemon (mrt_svc_send to
 * its shard), the balancer-routed set (mrt_svc_send_routed, the selection
 * naming the daemon), or egress (mrt_svc_egress_push). A send refused for
 * backpressure is deferred (defer.c); anything that cannot be routed is
 * handed back with its reason, never dropped silently.
 */
#include "compute/cp_internal.h"

static const mrt_compute_ref any_ref = { .id = 0, .shard = MRT_COMPUTE_ANY_SHARD };

/*
 * One output to one subscription, through the subscription's deferral
 * queue q: sent at once when q is empty (otherwise behind what waits there,
 * to keep the order), deferred on backpressure, handed back with its reason
 * otherwise (and when even q refuses, which admission makes unreachable).
 */
static inline void route_one(cp_shard *cs, const cp_daemon *d, const cp_sub *s,
                             const mrt_event *o)
{
    unsigned q;
    mrt_compute_ref to;
    switch (s->kind) {
    case MRT_COMPUTE_TO_DAEMON:
        q = s->shard;
        to = (mrt_compute_ref){ .id = s->id, .shard = s->shard };
        break;
    case MRT_COMPUTE_TO_SET:
        q = cs->n;
        to = any_ref;
        break;
    default: /* MRT_COMPUTE_TO_EGRESS: an application that polls slowly is backpressure */
        q = cs->n + 1;
        to = (mrt_compute_ref){ .id = d->id, .shard = (uint16_t)cs->id };
        break;
    }
    int rc = MRT_SHARD_EFULL;
    if (cs->dq[q].count == 0)
        rc = cp_send_q(cs, q, to.id, to.shard, &o->link, o->payload, o->payload_len);
    if (rc == MRT_OK)
        return;
    if (cp_backpressure(rc)) {
        rc = cp_defer_put(cs, q, to.id, to.shard, &o->link, o->payload, o->payload_len);
        if (rc == MRT_OK) {
            cs->st.deferred++;
            return;
        }
        if (q == cs->n + 1 && rc != MRT_SVC_ETOOBIG)
            rc = MRT_CP_EEGRESS;
    }
    cp_handback(cs, to, o, rc);
}

void cp_on_output(mrt_svc_shard *ss, mrt_host *host, const mrt_event *outs, size_t n, void *ctx)
{
    (void)ctx;
    cp_shard *cs = cp_of(ss);
    cs->st.emitted += n;
    const cp_daemon *d = cp_find(cs, mrt_host_origin(host));
    if (d == NULL) { /* only compute adds hosts; kept so a stray host cannot lose outputs */
        for (size_t i = 0; i < n; i++)
            cp_handback(cs, any_ref, &outs[i], MRT_CP_ENODAEMON);
        return;
    }
    if (d->nsubs == 0)
        cs->st.unsubscribed += n; /* not a refusal: counted, so no output goes unaccounted */
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; k < d->nsubs; k++)
            route_one(cs, d, &d->subs[k], &outs[i]);
}

void cp_on_handback(mrt_svc_shard *ss, const mrt_svc_event *e, mrt_svc_handback_reason why,
                    void *ctx)
{
    (void)ctx;
    cp_shard *cs = cp_of(ss);
    if (cs == NULL)
        return;
    int rc = why == MRT_SVC_HB_NO_HOST ? MRT_CP_ENODAEMON : MRT_EINVAL;
    cp_handback(cs, (mrt_compute_ref){ .id = e->daemon_id, .shard = (uint16_t)cs->id }, &e->ev,
                rc);
}

/*
 * What one delivery of d may need in each deferral queue: every output of
 * the delivery (at most max_outputs, their payloads at most the sink's
 * region) once per subscription to that queue.
 */
void cp_need_update(cp_shard *cs, cp_daemon *d)
{
    const mrt_compute_type *t = &cs->c->types[d->type].t;
    uint32_t outs = t->max_outputs ? t->max_outputs : MRT_SINK_DEFAULT_OUTPUTS;
    uint64_t bytes = t->payload_bytes ? t->payload_bytes : MRT_SINK_DEFAULT_PAYLOAD_BYTES;
    if (bytes > (uint64_t)outs * cs->c->max_payload)
        bytes = (uint64_t)outs * cs->c->max_payload;
    d->nneed = 0;
    for (unsigned k = 0; k < d->nsubs; k++) {
        const cp_sub *s = &d->subs[k];
        uint16_t q = s->kind == MRT_COMPUTE_TO_SET      ? (uint16_t)cs->n
                     : s->kind == MRT_COMPUTE_TO_EGRESS ? (uint16_t)(cs->n + 1)
                                                        : s->shard;
        unsigned j = 0;
        while (j < d->nneed && d->need[j].q != q)
            j++;
        if (j == d->nneed)
            d->need[d->nneed++] = (cp_need){ .q = q };
        d->need[j].entries += outs;
        d->need[j].bytes += bytes;
    }
}

/* Whether d's next delivery can defer everything it may emit (the push-back test). */
bool cp_admit_daemon(const cp_shard *cs, const cp_daemon *d)
{
    for (unsigned k = 0; k < d->nneed; k++)
        if (!cp_defer_room(cs, d->need[k].q, d->need[k].entries, d->need[k].bytes))
            return false;
    return true;
}

/*
 * Services' admission, before each delivery on this shard: the push-back.
 * A daemon emits at most max_outputs per event, so reserving that much
 * deferral room per subscription before it runs makes the decision exact
 * and ahead of processing: refused, the event waits in services (its
 * buffer held, the shard's input held) and is retried after the next
 * deferral flush. An output can then always be deferred, never lost.
 */
bool cp_admit(mrt_svc_shard *ss, mrt_host *host, void *ctx)
{
    (void)ctx;
    cp_shard *cs = cp_of(ss);
    const cp_daemon *d = cs ? cp_find(cs, mrt_host_origin(host)) : NULL;
    if (d == NULL || d->nneed == 0 || cp_admit_daemon(cs, d))
        return true;
    cs->st.pushed_back++;
    return false;
}

int mrt_compute_send(mrt_svc_shard *ss, mrt_compute_ref d, const mrt_causal_link *link,
                     const void *payload, size_t len)
{
    cp_shard *cs = ss ? cp_of(ss) : NULL;
    if (cs == NULL)
        return MRT_EINVAL;
    if (d.shard >= cs->n)
        return MRT_SHARD_EDEST;
    if (cs->dq[d.shard].count)
        return MRT_SHARD_EFULL; /* sends deferred to that shard go first: defer this one too */
    return mrt_svc_send(ss, d.shard, d.id, link, payload, len);
}

int mrt_compute_defer(mrt_svc_shard *ss, mrt_compute_ref d, const mrt_causal_link *link,
                      const void *payload, size_t len)
{
    cp_shard *cs = ss ? cp_of(ss) : NULL;
    if (cs == NULL || link == NULL || (payload == NULL && len > 0))
        return MRT_EINVAL;
    if (d.shard >= cs->n)
        return MRT_SHARD_EDEST;
    if (len > cs->c->max_payload)
        return MRT_SVC_ETOOBIG;
    int rc = cp_defer_put(cs, d.shard, d.id, d.shard, link, payload, len);
    if (rc == MRT_OK)
        cs->st.deferred++;
    return rc;
}
