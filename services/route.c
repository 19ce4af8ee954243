/*
 * The forward flow: an event's link and payload go into a buffer of the
 * sender's pool, a 32-byte message carries the handle across, and the
 * receiver delivers it to its host and releases the buffer (svc_release).
 * Every delivery happens here: events from other shards, from ingress
 * (ingress.c gives the event, this file delivers it) and those admission
 * held back (hold.c keeps the queue, svc_retry_held delivers them).
 */
#include "services/svc_internal.h"

#include <string.h>

/* Copy the event into buffer `buf` and send its message; on error the buffer is still ours. */
static inline int put_event(mrt_svc_shard *ss, unsigned dst, uint64_t daemon_id, uint64_t h,
                            uint8_t *buf, const mrt_causal_link *link, const void *payload,
                            size_t len, uint64_t token, uint64_t now)
{
    uint64_t key = token & SVC_KEY_MASK;
    memcpy(buf + SVC_BUF_LINK, link, sizeof *link);
    memcpy(buf + SVC_BUF_SENT, &now, sizeof now);
    memcpy(buf + SVC_BUF_KEY, &key, sizeof key);
    if (len)
        memcpy(buf + SVC_BUF_HDR, payload, len);
    mrt_msg m = { .type = ss->t_event, .aux = (uint32_t)len, .w = { daemon_id, h, token } };
    return mrt_shard_send(ss->shard, dst, &m);
}

/* Checks shared by both sends; on success *c is the payload's size class. */
static inline int check_event(mrt_svc_shard *ss, unsigned dst, const mrt_causal_link *link,
                              const void *payload, size_t len, unsigned *c)
{
    if (ss == NULL || link == NULL || (payload == NULL && len > 0))
        return MRT_EINVAL;
    if (len > ss->svc->cfg.max_payload) {
        ss->st.refused_toobig++;
        return MRT_SVC_ETOOBIG;
    }
    if (dst >= ss->n)
        return MRT_SHARD_EDEST;
    *c = svc_class_of(ss->svc, len);
    return MRT_OK;
}

static inline void count_refusal(mrt_svc_shard *ss, int rc)
{
    if (rc == MRT_SHARD_EFULL)
        ss->st.refused_full++;
}

int mrt_svc_send(mrt_svc_shard *ss, unsigned dst, uint64_t daemon_id,
                 const mrt_causal_link *link, const void *payload, size_t len)
{
    unsigned c;
    int rc = check_event(ss, dst, link, payload, len, &c);
    if (rc != MRT_OK)
        return rc;
    uint64_t h;
    uint8_t *buf;
    if (!svc_pool_pop(ss, c, &h, &buf)) {
        ss->st.refused_pool++;
        return MRT_SVC_EPOOL;
    }
    rc = put_event(ss, dst, daemon_id, h, buf, link, payload, len, 0, mrt_shard_now(ss->shard));
    if (rc != MRT_OK) {
        svc_pool_push(ss, h);
        count_refusal(ss, rc);
        return rc;
    }
    ss->st.sent++;
    return MRT_OK;
}

int mrt_svc_send_routed(mrt_svc_shard *ss, const mrt_lb_request *rq, uint64_t daemon_id,
                        const mrt_causal_link *link, const void *payload, size_t len,
                        unsigned *dst_out)
{
    unsigned c;
    int rc = check_event(ss, 0, link, payload, len, &c);
    if (rc != MRT_OK)
        return rc;
    const mrt_lb_snapshot *snap = ss->lb ? mrt_lb_shard_snapshot(ss->lb) : NULL;
    if (snap == NULL)
        return MRT_SVC_ENOBALANCER;
    /* Resources first, so that a refusal costs no selection. */
    if (ss->nfree_slots == 0) {
        ss->st.refused_inflight++;
        return MRT_SVC_EINFLIGHT;
    }
    uint64_t h;
    uint8_t *buf;
    if (!svc_pool_pop(ss, c, &h, &buf)) {
        ss->st.refused_pool++;
        return MRT_SVC_EPOOL;
    }
    uint32_t slot = 0;
    (void)svc_slot_take(ss, &slot);
    svc_slot *e = &ss->slots[slot];
    uint64_t now = mrt_shard_now(ss->shard);
    rc = mrt_lb_select(snap, ss->lb, rq, now, &e->sel);
    if (rc != MRT_OK) {
        ss->st.lb_errors++;
        ss->st.lb_error_code[mrt_svc_lb_err_slot(rc)]++;
        svc_slot_drop(ss, slot);
        svc_pool_push(ss, h);
        return rc;
    }
    e->t_sel = now;
    unsigned dst = (unsigned)e->sel.user_data;
    rc = e->sel.user_data < ss->n ? MRT_OK : MRT_SHARD_EDEST;
    if (daemon_id == 0)
        daemon_id = mrt_svc_node_daemon(e->sel.node_id);
    if (rc == MRT_OK)
        rc = put_event(ss, dst, daemon_id, h, buf, link, payload, len,
                       svc_token(ss->id, slot, e->gen), now);
    if (rc != MRT_OK) {
        /*
         * Never reached the owner; the reservation is released now. A full
         * ring is this shard's backpressure, not the endpoint's failure: no
         * outcome for the balancer (a breaker fed with it would open on a
         * healthy endpoint). Anything else is the endpoint's failure.
         */
        if (rc == MRT_SHARD_EFULL)
            (void)mrt_lb_release(ss->lb, &e->sel);
        else
            (void)mrt_lb_complete(ss->lb, &e->sel, false, 0, now);
        svc_slot_drop(ss, slot);
        svc_pool_push(ss, h);
        count_refusal(ss, rc);
        return rc;
    }
    ss->st.sent++;
    ss->st.routed++;
    if (dst_out)
        *dst_out = dst;
    return MRT_OK;
}

void svc_hand_back(mrt_svc_shard *ss, const mrt_msg *m, const mrt_event *ev,
                   mrt_svc_handback_reason why)
{
    ss->st.handed_back[why]++;
    if (ss->svc->handback) {
        mrt_svc_event e = { .daemon_id = m->w[0], .src = m->src, .ev = *ev };
        ss->svc->handback(ss, &e, why, ss->svc->handback_ctx);
    }
}

/* Deliver to the host; true when the daemon took it. */
static inline bool deliver(mrt_svc_shard *ss, const mrt_msg *m, const mrt_event *ev, uint64_t now)
{
    mrt_host *host = mrt_svc_host_find(ss, m->w[0]);
    if (host == NULL) {
        svc_hand_back(ss, m, ev, MRT_SVC_HB_NO_HOST);
        return false;
    }
    /* The stall detector names the daemon whose process runs (two plain stores). */
    mrt_stall_daemon(ss->stall, m->w[0]);
    int rc = mrt_host_deliver(host, ev, now);
    mrt_stall_daemon(ss->stall, 0);
    if (rc != MRT_OK) {
        ss->st.deliver_errors++;
        return false;
    }
    ss->st.delivered++;
    size_t nout = 0;
    const mrt_event *outs = mrt_host_outputs(host, &nout);
    if (nout) {
        if (ss->svc->output)
            ss->svc->output(ss, host, outs, nout, ss->svc->output_ctx);
        else
            ss->st.outputs_unrouted += nout;
        mrt_host_release_outputs(host);
    }
    return true;
}

/* One event message: deliver it, release its buffer, complete its selection. */
static void event_one(mrt_svc_shard *ss, const mrt_msg *x, const mrt_msg *next, uint64_t now)
{
    const mrt_svc *svc = ss->svc;
    mrt_event ev = { .timestamp = now };
    if (x->src == MRT_SRC_EXTERNAL) {
        /* From ingress: a buffer of this shard's ingress pool, never a token. */
        svc_iref ref;
        if (!svc_ingress_take(ss, x, &ev, &ref)) {
            svc_hand_back(ss, x, &ev, MRT_SVC_HB_EXTERNAL);
            return;
        }
        (void)deliver(ss, x, &ev, now);
        svc_ingress_done(ss, ref);
        return;
    }
    uint8_t *buf;
    if (!svc_resolve(svc, x->w[1], x->aux, &buf)) {
        svc_hand_back(ss, x, &ev, MRT_SVC_HB_BAD_HANDLE);
        if (x->w[2])
            svc_complete(ss, x->w[2], false, 0);
        return;
    }
    if (next && next->src != MRT_SRC_EXTERNAL) {
        /* The next buffer's header: its line is on another core, start the miss now. */
        uint64_t nh = next->w[1];
        unsigned no = svc_h_owner(nh);
        if (no < ss->n && svc->base[no])
            __builtin_prefetch(svc->base[no] + svc_h_off(nh));
    }
    memcpy(&ev.link, buf + SVC_BUF_LINK, sizeof ev.link);
    ev.payload = buf + SVC_BUF_HDR;
    ev.payload_len = x->aux;
    bool ok = deliver(ss, x, &ev, now);
    uint64_t token = x->w[2];
    /* Send time: in the header line the link was just read from, no clock read. */
    uint64_t sent;
    memcpy(&sent, buf + SVC_BUF_SENT, sizeof sent);
    uint64_t d = now > sent ? now - sent : 0;
    uint32_t lat = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    mrt_hist_record(&ss->hist[MRT_SVC_HIST_DELIVER], d);
    if (token && (unsigned)(token >> 48) - 1u == svc_h_owner(x->w[1]) &&
        svc_h_owner(x->w[1]) != ss->id) {
        /* The completion rides the buffer home (see SVC_BUF_KEY). */
        uint64_t outcome = lat | (uint64_t)ok << 32;
        memcpy(buf + SVC_BUF_SENT, &outcome, sizeof outcome);
        svc_release(ss, x->w[1]);
        return;
    }
    svc_release(ss, x->w[1]);
    if (token)
        svc_complete(ss, token, ok, lat);
}

/* The held events (hold.c), in arrival order, while admission lets them through. */
void svc_retry_held(mrt_svc_shard *ss)
{
    uint64_t now = mrt_shard_now(ss->shard);
    while (ss->nheld) {
        const mrt_msg *x = &ss->held[ss->held_head];
        mrt_host *h = mrt_svc_host_find(ss, x->w[0]);
        if (h != NULL && !ss->svc->admit(ss, h, ss->svc->admit_ctx))
            return;
        mrt_msg m = *x;
        ss->held_head = ss->held_head + 1 == ss->held_cap ? 0 : ss->held_head + 1;
        ss->nheld--;
        event_one(ss, &m, NULL, now);
    }
    ss->held_head = 0;
}

void svc_on_events(mrt_shard *s, const mrt_msg *m, unsigned n, void *ctx)
{
    mrt_svc_shard *ss = ctx;
    const mrt_svc *svc = ss->svc;
    uint64_t now = mrt_shard_now(s);
    ss->st.received += n;
    for (unsigned i = 0; i < n; i++) {
        /* Admission (hold.c): a held event keeps every later one behind it. */
        if (__builtin_expect(svc->admit != NULL, 0) && svc_hold(ss, &m[i]))
            continue;
        event_one(ss, &m[i], i + 1 < n ? &m[i + 1] : NULL, now);
    }
}

int mrt_svc_send_msg(mrt_svc_shard *ss, unsigned dst, uint16_t type, const mrt_msg *m)
{
    if (ss == NULL || m == NULL)
        return MRT_EINVAL;
    if (type >= ss->svc->ntypes)
        return MRT_SVC_ENOTYPE;
    mrt_msg x = *m;
    x.type = (uint16_t)(ss->svc->cfg.shard_type_base + SVC_T_USER + type);
    int rc = mrt_shard_send(ss->shard, dst, &x);
    ss->st.user_msgs_sent += rc == MRT_OK;
    return rc;
}

int mrt_svc_inject_msg(mrt_svc *svc, unsigned dst, uint16_t type, const mrt_msg *m)
{
    if (svc == NULL || m == NULL)
        return MRT_EINVAL;
    if (type >= svc->ntypes)
        return MRT_SVC_ENOTYPE;
    mrt_msg x = *m;
    x.type = (uint16_t)(svc->cfg.shard_type_base + SVC_T_USER + type);
    return mrt_mesh_inject(svc->mesh, dst, &x);
}
