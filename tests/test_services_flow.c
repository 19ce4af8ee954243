/*
 * Services, the event path: payloads across shards in order, buffers back
 * to their owners, backpressure codes, hand-back of unknown daemons, a full
 * reverse ring, completions under several strategies, and no allocation
 * per event. Two shards driven by hand on one thread.
 */
#include "test_services_common.h"

#include <pthread.h>
#include <stdatomic.h>

/* A producer hook: per iteration up to 16 events to every shard, in sequence. */
typedef struct prod {
    world *w;
    unsigned self;
    uint64_t next[NSH], target;
    uint64_t refused, errors;
    bool routed;
    uint8_t buf[MRT_SVC_DEFAULT_MAX_PAYLOAD];
} prod;

static void produce(mrt_svc_shard *ss, bool draining, void *ctx)
{
    prod *p = ctx;
    if (draining)
        return;
    uint32_t max = p->w->daemon[0].max;
    for (unsigned d = 0; d < NSH; d++) {
        for (unsigned k = 0; k < 16 && p->next[d] < p->target; k++) {
            uint64_t seq = p->next[d];
            size_t len = len_of(p->self, d, seq, max);
            for (size_t i = 0; i < len; i++)
                p->buf[i] = byte_of(seq, i);
            mrt_causal_link link = { .origin_hash = p->self + 1, .sequence = seq };
            int rc = mrt_svc_send(ss, d, p->w->daemon_id[d], &link, p->buf, len);
            if (rc == MRT_OK) {
                p->next[d]++;
            } else if (rc == MRT_SVC_EPOOL || rc == MRT_SHARD_EFULL) {
                p->refused++;
                break;
            } else {
                p->errors++;
                break;
            }
        }
    }
}

static mrt_svc_config small_cfg(uint32_t max_payload)
{
    mrt_svc_config c;
    mrt_svc_config_default(&c);
    c.max_payload = max_payload;
    c.pool_buffers = 64;
    c.pool_class_bytes = 64 * 1024;
    c.pool_min_buffers = 8;
    return c;
}

START_TEST(order_across_shards_random_payloads)
{
    enum { PER_PAIR = 2000, MAX = 8192 };
    world w;
    world_mesh(&w, 64, 8, 0);
    mrt_svc_config c = small_cfg(MAX);
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    world_start(&w, MAX);
    static prod p[NSH];
    for (unsigned i = 0; i < NSH; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].w = &w;
        p[i].self = i;
        p[i].target = PER_PAIR;
        ck_assert_int_eq(mrt_svc_add_hook(w.ss[i], produce, &p[i]), MRT_OK);
    }
    unsigned k = 0;
    while (w.daemon[0].got + w.daemon[1].got < (uint64_t)PER_PAIR * NSH * NSH) {
        world_poll(&w);
        ck_assert_msg(++k < 1000000, "only %llu events delivered after 1e6 polls",
                      (unsigned long long)(w.daemon[0].got + w.daemon[1].got));
    }
    world_drain(&w);
    for (unsigned i = 0; i < NSH; i++) {
        ck_assert_uint_eq(w.daemon[i].bad_order, 0);
        ck_assert_uint_eq(w.daemon[i].bad_payload, 0);
        for (unsigned s = 0; s < NSH; s++)
            ck_assert_uint_eq(w.daemon[i].expect[s], PER_PAIR);
        ck_assert_uint_eq(p[i].errors, 0);
        mrt_svc_stats st;
        mrt_svc_stats_get(w.ss[i], &st);
        ck_assert_uint_eq(st.sent, (uint64_t)PER_PAIR * NSH);
        ck_assert_uint_eq(st.delivered, (uint64_t)PER_PAIR * NSH);
        ck_assert_uint_eq(st.returns_invalid, 0);
        /* Each shard got the other's buffers back by message, its own in place. */
        ck_assert_uint_eq(st.returns_local, PER_PAIR);
        ck_assert_uint_eq(st.returns_received, PER_PAIR);
    }
    /* The small pools were exhausted on the way: backpressure, then progress. */
    ck_assert_uint_gt(p[0].refused + p[1].refused, 0);
    world_assert_settled(&w);
    world_end(&w);
}
END_TEST

START_TEST(too_big_pool_and_argument_errors)
{
    world w;
    world_mesh(&w, 256, 8, 0);
    mrt_svc_config c = small_cfg(1000);
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    world_start(&w, 1000);
    mrt_svc_shard *s0 = w.ss[0];
    static uint8_t big[1001];
    mrt_causal_link link = { .origin_hash = 1 };
    ck_assert_int_eq(mrt_svc_send(s0, 1, w.daemon_id[1], &link, big, 1001), MRT_SVC_ETOOBIG);
    ck_assert_int_eq(mrt_svc_send(s0, 1, w.daemon_id[1], NULL, big, 10), MRT_EINVAL);
    ck_assert_int_eq(mrt_svc_send(s0, 1, w.daemon_id[1], &link, NULL, 10), MRT_EINVAL);
    ck_assert_int_eq(mrt_svc_send(s0, NSH, w.daemon_id[1], &link, big, 10), MRT_SHARD_EDEST);
    ck_assert_int_eq(mrt_svc_send(NULL, 1, 0, &link, big, 10), MRT_EINVAL);
    ck_assert_int_eq(mrt_svc_send_routed(s0, NULL, w.daemon_id[1], &link, big, 10, NULL),
                     MRT_SVC_ENOBALANCER);
    mrt_svc_stats st;
    mrt_svc_stats_get(s0, &st);
    ck_assert_uint_eq(st.refused_toobig, 1);
    ck_assert_uint_eq(st.pool_out, 0);
    ck_assert_uint_eq(st.sent, 0);

    /* The largest class empties, then EPOOL; the buffers come back after a poll. */
    unsigned last = mrt_svc_pool_classes(w.svc) - 1;
    uint32_t cap = 0, cnt = 0;
    ck_assert_int_eq(mrt_svc_pool_class(w.svc, last, &cap, &cnt), MRT_OK);
    ck_assert_uint_ge(cap, 1000);
    for (uint32_t i = 0; i < cnt; i++) {
        link.sequence = i;
        ck_assert_int_eq(mrt_svc_send(s0, 1, w.daemon_id[1], &link, big, 1000), MRT_OK);
    }
    ck_assert_uint_eq(mrt_svc_pool_free(s0, last), 0);
    ck_assert_int_eq(mrt_svc_send(s0, 1, w.daemon_id[1], &link, big, 1000), MRT_SVC_EPOOL);
    /* Other classes are unaffected. */
    ck_assert_int_eq(mrt_svc_send(s0, 1, w.daemon_id[1], &link, big, 0), MRT_OK);
    mrt_svc_stats_get(s0, &st);
    ck_assert_uint_eq(st.refused_pool, 1);
    ck_assert_uint_eq(st.pool_out, cnt + 1);
    for (int k = 0; k < 10; k++)
        world_poll(&w);
    ck_assert_uint_eq(mrt_svc_pool_free(s0, last), cnt);
    /* The receiver saw sequences 0..cnt-1, then a repeat of cnt-1 (out of order): counted. */
    ck_assert_uint_eq(w.daemon[1].got, cnt + 1);
    world_drain(&w);
    world_assert_settled(&w);
    world_end(&w);
}
END_TEST

typedef struct hb_log {
    unsigned calls[MRT_SVC_HB_REASONS];
    uint64_t last_id;
    size_t last_len;
    bool payload_ok;
} hb_log;

static void on_handback(mrt_svc_shard *ss, const mrt_svc_event *e, mrt_svc_handback_reason why,
                        void *ctx)
{
    (void)ss;
    hb_log *l = ctx;
    l->calls[why]++;
    l->last_id = e->daemon_id;
    l->last_len = e->ev.payload_len;
    l->payload_ok = e->ev.payload_len == 5 && memcmp(e->ev.payload, "hello", 5) == 0 &&
                    e->ev.link.sequence == 77;
}

START_TEST(unknown_daemon_and_forged_messages_handed_back)
{
    world w;
    world_mesh(&w, 256, 8, 0);
    mrt_svc_config c = small_cfg(1024);
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    static hb_log log;
    memset(&log, 0, sizeof log);
    ck_assert_int_eq(mrt_svc_set_handback(w.svc, on_handback, &log), MRT_OK);
    world_start(&w, 1024);
    mrt_causal_link link = { .origin_hash = 1, .sequence = 77 };
    ck_assert_int_eq(mrt_svc_send(w.ss[0], 1, 0xdeadbeefull, &link, "hello", 5), MRT_OK);
    /* Shard 1's own id is not on shard 0 either. */
    ck_assert_int_eq(mrt_svc_send(w.ss[0], 0, w.daemon_id[1], &link, "hello", 5), MRT_OK);
    for (int k = 0; k < 5; k++)
        world_poll(&w);
    ck_assert_uint_eq(log.calls[MRT_SVC_HB_NO_HOST], 2);
    ck_assert(log.payload_ok);
    ck_assert_uint_eq(w.daemon[0].got + w.daemon[1].got, 0);

    /* A forged handle from a shard, and an event message through ingress. */
    mrt_msg bad = { .type = w.ss[0]->t_event, .aux = 5,
                    .w = { w.daemon_id[1], svc_handle(0, 0, 7), 0 } };
    ck_assert_int_eq(mrt_shard_send(mrt_mesh_shard(w.m, 0), 1, &bad), MRT_OK);
    bad.w[1] = svc_handle(9, 0, 0);
    ck_assert_int_eq(mrt_shard_send(mrt_mesh_shard(w.m, 0), 1, &bad), MRT_OK);
    bad.w[1] = svc_handle(0, 0, 0); /* a real buffer, but 5000 bytes do not fit class 0 */
    bad.aux = 5000;
    ck_assert_int_eq(mrt_shard_send(mrt_mesh_shard(w.m, 0), 1, &bad), MRT_OK);
    ck_assert_int_eq(mrt_mesh_inject(w.m, 1, &bad), MRT_OK);
    /* A return of a buffer that is not out. */
    mrt_msg ret = { .type = w.ss[0]->t_ret, .aux = 1, .w = { svc_handle(0, 0, 0) } };
    ck_assert_int_eq(mrt_shard_send(mrt_mesh_shard(w.m, 1), 0, &ret), MRT_OK);
    for (int k = 0; k < 5; k++)
        world_poll(&w);
    ck_assert_uint_eq(log.calls[MRT_SVC_HB_BAD_HANDLE], 3);
    ck_assert_uint_eq(log.calls[MRT_SVC_HB_EXTERNAL], 1);
    mrt_svc_stats st0, st1;
    mrt_svc_stats_get(w.ss[0], &st0);
    mrt_svc_stats_get(w.ss[1], &st1);
    ck_assert_uint_eq(st1.handed_back[MRT_SVC_HB_NO_HOST], 1);
    ck_assert_uint_eq(st0.handed_back[MRT_SVC_HB_NO_HOST], 1);
    ck_assert_uint_eq(st1.handed_back[MRT_SVC_HB_BAD_HANDLE], 3);
    ck_assert_uint_eq(st0.returns_invalid, 1);
    world_drain(&w);
    world_assert_settled(&w);
    world_end(&w);
}
END_TEST

START_TEST(full_reverse_ring_keeps_returns_until_there_is_room)
{
    /* Tiny rings: 15 messages each, plus a FIFO of 8 behind them. */
    world w;
    world_mesh(&w, 16, 4, 4);
    mrt_svc_config c = small_cfg(64);
    c.pool_buffers = c.pool_min_buffers = 256;
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    world_start(&w, 64);
    mrt_causal_link link = { .origin_hash = 2 };
    /* Shard 1 fills ring 1 -> 0 and its FIFO with events (shard 0 does not poll yet). */
    unsigned sent1 = 0;
    while (mrt_svc_send(w.ss[1], 0, w.daemon_id[0], &link, NULL, 0) == MRT_OK) {
        link.sequence = ++sent1;
        ck_assert_uint_lt(sent1, 1000);
    }
    /* Shard 0 sends events to shard 1 until its side is full too. */
    link = (mrt_causal_link){ .origin_hash = 1 };
    unsigned sent0 = 0;
    while (mrt_svc_send(w.ss[0], 1, w.daemon_id[1], &link, NULL, 0) == MRT_OK) {
        link.sequence = ++sent0;
        ck_assert_uint_lt(sent0, 1000);
    }
    mrt_shard_flush(mrt_mesh_shard(w.m, 0));
    /* Shard 1 handles what it can: the returns it owes shard 0 cannot all go. */
    for (int k = 0; k < 4; k++)
        mrt_shard_poll_once(mrt_mesh_shard(w.m, 1));
    mrt_svc_stats st;
    mrt_svc_stats_get(w.ss[1], &st);
    ck_assert_uint_gt(st.backlog, 0);
    ck_assert_uint_gt(st.backlog_retries, 0);
    ck_assert_uint_gt(w.daemon[1].got, 0);
    /* Everyone polls: every buffer finds its way home. */
    unsigned k = 0;
    while (w.daemon[0].got < sent1 || w.daemon[1].got < sent0) {
        world_poll(&w);
        ck_assert_msg(++k < 100000, "events stuck: %llu/%u %llu/%u",
                      (unsigned long long)w.daemon[0].got, sent1,
                      (unsigned long long)w.daemon[1].got, sent0);
    }
    world_drain(&w);
    ck_assert_uint_eq(w.daemon[0].bad_order + w.daemon[1].bad_order, 0);
    world_assert_settled(&w);
    world_end(&w);
}
END_TEST

/* ---- completions ------------------------------------------------------------ */

typedef struct rprod {
    world *w;
    uint64_t left, sent, refused, errors;
    unsigned per_dst[NSH];
} rprod;

static void produce_routed(mrt_svc_shard *ss, bool draining, void *ctx)
{
    rprod *p = ctx;
    if (draining)
        return;
    /* The same daemon id is hosted on both shards (replicas of one key). */
    uint64_t id = p->w->daemon_id[0];
    for (unsigned k = 0; k < 24 && p->left > 0; k++) {
        mrt_causal_link link = { .origin_hash = 99, .sequence = p->sent };
        unsigned dst = 0;
        int rc = mrt_svc_send_routed(ss, NULL, id, &link, "x", 1, &dst);
        if (rc == MRT_OK) {
            p->left--;
            p->sent++;
            p->per_dst[dst]++;
        } else if (rc == MRT_SVC_EPOOL || rc == MRT_SVC_EINFLIGHT || rc == MRT_SHARD_EFULL) {
            p->refused++;
            break;
        } else {
            p->errors++;
            break;
        }
    }
}

static int count_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)ev;
    (void)sink;
    (*(uint64_t *)state)++;
    return MRT_OK;
}
static const mrt_daemon_vtable count_vt = { .name = "count", .process = count_process };

/* A registry of the shards (user_data = shard index) and a domain with its first snapshot. */
static void lb_setup(mrt_lb_strategy strategy, mrt_lb_registry **reg, mrt_lb_domain **dom)
{
    mrt_lb_config lc;
    mrt_lb_config_default(&lc);
    lc.strategy = strategy;
    ck_assert_int_eq(mrt_lb_registry_create(NULL, &lc, reg), MRT_OK);
    for (unsigned i = 0; i < NSH; i++) {
        uint8_t id[MRT_LB_NODE_ID_LEN] = { 's', 'h', (uint8_t)i };
        mrt_lb_endpoint_spec spec;
        mrt_lb_endpoint_spec_init(&spec, id);
        spec.user_data = i;
        ck_assert_int_eq(mrt_lb_registry_add(*reg, &spec, NULL), MRT_OK);
    }
    ck_assert_int_eq(mrt_lb_domain_create(NULL, NSH, dom), MRT_OK);
    mrt_lb_snapshot *snap = NULL;
    ck_assert_int_eq(mrt_lb_registry_compile(*reg, 0, NULL, &snap), MRT_OK);
    ck_assert_int_ge(mrt_lb_domain_publish(*dom, snap), 1);
}

static void run_completions(mrt_lb_strategy strategy)
{
    enum { EVENTS = 3000 };
    mrt_lb_registry *reg = NULL;
    mrt_lb_domain *dom = NULL;
    lb_setup(strategy, &reg, &dom);

    world w;
    world_mesh(&w, 64, 8, 0);
    mrt_svc_config c = small_cfg(64);
    c.domain = dom;
    c.inflight = 64; /* small: EINFLIGHT backpressure happens */
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    uint64_t delivered[NSH] = { 0 };
    mrt_host *hosts[NSH];
    static rprod p[NSH];
    for (unsigned i = 0; i < NSH; i++) {
        ck_assert_int_eq(mrt_svc_shard_init(w.svc, mrt_mesh_shard(w.m, i), &w.ss[i]), MRT_OK);
        mrt_host_config hc = { .alloc = mrt_svc_allocator(w.ss[i]), .max_outputs = 1,
                               .payload_bytes = 64, .max_origins = 8 };
        host_key(0, hc.key);
        ck_assert_int_eq(mrt_host_create(&hc, (mrt_daemon){ &count_vt, &delivered[i] }, &hosts[i]),
                         MRT_OK);
        ck_assert_int_eq(mrt_svc_host_add(w.ss[i], hosts[i]), MRT_OK);
        w.daemon_id[i] = mrt_host_origin(hosts[i]);
        p[i] = (rprod){ .w = &w, .left = EVENTS };
        ck_assert_int_eq(mrt_svc_add_hook(w.ss[i], produce_routed, &p[i]), MRT_OK);
    }
    unsigned k = 0;
    while (delivered[0] + delivered[1] < EVENTS * NSH) {
        world_poll(&w);
        ck_assert_msg(++k < 1000000, "%s: %llu of %u delivered", mrt_lb_strategy_name(strategy),
                      (unsigned long long)(delivered[0] + delivered[1]), EVENTS * NSH);
    }
    world_drain(&w);
    world_assert_settled(&w);
    unsigned to[NSH] = { 0 };
    for (unsigned i = 0; i < NSH; i++) {
        ck_assert_uint_eq(p[i].errors, 0);
        mrt_svc_stats st;
        mrt_svc_stats_get(w.ss[i], &st);
        ck_assert_uint_eq(st.routed, EVENTS);
        ck_assert_uint_eq(st.completions, EVENTS);
        ck_assert_uint_eq(st.completions_stale, 0);
        mrt_lb_shard_stats ls;
        mrt_lb_shard_stats_get(mrt_svc_lb(w.ss[i]), &ls);
        ck_assert_uint_eq(ls.outstanding, 0);
        ck_assert_uint_eq(ls.completes, ls.selects);
        /* Latency reached the balancer: delivery happens in a later poll than the send. */
        bool fed = false;
        for (uint32_t e = 0; e < NSH; e++) {
            mrt_lb_endpoint_shard_info info;
            ck_assert_int_eq(mrt_lb_shard_endpoint(mrt_svc_lb(w.ss[i]), e, 0, &info), MRT_OK);
            ck_assert_uint_eq(info.inflight, 0);
            fed |= info.latency_ewma_ns > 0;
        }
        ck_assert_msg(fed, "%s: no latency sample on shard %u", mrt_lb_strategy_name(strategy), i);
        for (unsigned d = 0; d < NSH; d++)
            to[d] += p[i].per_dst[d];
    }
    /*
     * Completions keep the in-flight counts honest, so the strategies that
     * balance on them spread; least latency follows the faster shard, which
     * is timing, so it only has to have tried both.
     */
    unsigned floor = strategy == MRT_LB_LEAST_LATENCY ? 1 : EVENTS * NSH / 4;
    for (unsigned d = 0; d < NSH; d++)
        ck_assert_msg(to[d] >= floor, "%s: shard %u got %u of %u",
                      mrt_lb_strategy_name(strategy), d, to[d], EVENTS * NSH);
    for (unsigned i = 0; i < NSH; i++) {
        ck_assert_int_eq(mrt_svc_host_remove(w.ss[i], w.daemon_id[i], NULL), MRT_OK);
        mrt_svc_shard_fini(w.ss[i]);
        mrt_host_destroy(hosts[i]);
    }
    mrt_svc_destroy(w.svc);
    mrt_mesh_destroy(w.m);
    mrt_lb_domain_destroy(dom);
    mrt_lb_registry_destroy(reg);
}

START_TEST(completions_release_every_reservation)
{
    static const mrt_lb_strategy strategies[] = {
        MRT_LB_ROUND_ROBIN, MRT_LB_LEAST_CONNECTIONS, MRT_LB_WEIGHTED_LEAST_CONN,
        MRT_LB_LEAST_LATENCY, MRT_LB_POWER_OF_TWO,
    };
    run_completions(strategies[_i]);
}
END_TEST


/* ---- two shard threads ------------------------------------------------------- */

static int atomic_count_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    (void)ev;
    (void)sink;
    atomic_fetch_add_explicit((_Atomic uint64_t *)state, 1, memory_order_relaxed);
    return MRT_OK;
}
static const mrt_daemon_vtable atomic_count_vt = { .name = "acount",
                                                   .process = atomic_count_process };

typedef struct thr {
    world *w;
    unsigned i;
    rprod p;
    pthread_barrier_t *bar;
    _Atomic uint64_t *delivered;
    int rc;                       /* first setup error */
    bool settled;                 /* after the drain: every buffer home, nothing owed */
    mrt_svc_stats st;
    uint64_t lb_outstanding;
} thr;

/* A shard thread: set up on its own thread, run until the drain, check, tear down. */
static void *shard_main(void *arg)
{
    thr *t = arg;
    mrt_shard *s = mrt_mesh_shard(t->w->m, t->i);
    mrt_svc_shard *ss = NULL;
    mrt_host *host = NULL;
    t->rc = mrt_shard_init_local(s);
    if (t->rc == MRT_OK)
        t->rc = mrt_svc_shard_init(t->w->svc, s, &ss);
    if (t->rc == MRT_OK) {
        mrt_host_config hc = { .alloc = mrt_svc_allocator(ss), .max_outputs = 1,
                               .payload_bytes = 64, .max_origins = 8 };
        host_key(0, hc.key);
        t->rc = mrt_host_create(&hc, (mrt_daemon){ &atomic_count_vt, t->delivered }, &host);
    }
    if (t->rc == MRT_OK)
        t->rc = mrt_svc_host_add(ss, host);
    if (t->rc == MRT_OK)
        t->rc = mrt_svc_add_hook(ss, produce_routed, &t->p);
    pthread_barrier_wait(t->bar);
    if (t->rc != MRT_OK)
        return NULL;
    mrt_shard_run(s);
    mrt_svc_stats_get(ss, &t->st);
    t->settled = t->st.pool_out == 0 && t->st.backlog == 0 && t->st.inflight == 0;
    mrt_lb_shard_stats ls;
    mrt_lb_shard_stats_get(mrt_svc_lb(ss), &ls);
    t->lb_outstanding = ls.outstanding;
    (void)mrt_svc_host_remove(ss, mrt_host_origin(host), NULL);
    mrt_host_destroy(host);
    mrt_svc_shard_fini(ss);
    return NULL;
}

START_TEST(two_shard_threads_route_complete_and_drain)
{
    enum { EVENTS = 20000 };
    mrt_lb_registry *reg = NULL;
    mrt_lb_domain *dom = NULL;
    lb_setup(MRT_LB_LEAST_CONNECTIONS, &reg, &dom);
    world w;
    memset(&w, 0, sizeof w);
    mrt_mesh_config mc;
    mrt_mesh_config_default(&mc, NSH);
    mc.ring_size = 64;
    mc.burst = 8;
    mc.idle_sleep_max_us = 50;
    ck_assert_int_eq(mrt_mesh_create(&mc, &w.m), MRT_OK);
    mrt_svc_config c = small_cfg(64);
    c.domain = dom;
    c.inflight = 64;
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    uint8_t key[MRT_HOST_KEY_SIZE];
    host_key(0, key);
    w.daemon_id[0] = w.daemon_id[1] = mrt_host_origin_from_key(key);
    static _Atomic uint64_t delivered;
    atomic_store(&delivered, 0);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NSH + 1);
    static thr t[NSH];
    pthread_t tid[NSH];
    for (unsigned i = 0; i < NSH; i++) {
        t[i] = (thr){ .w = &w, .i = i, .bar = &bar, .delivered = &delivered,
                      .p = { .w = &w, .left = EVENTS } };
        ck_assert_int_eq(pthread_create(&tid[i], NULL, shard_main, &t[i]), 0);
    }
    pthread_barrier_wait(&bar); /* every shard is set up before any sends */
    for (unsigned i = 0; i < NSH; i++)
        ck_assert_int_eq(t[i].rc, MRT_OK);
    MRT_WAIT_UNTIL(atomic_load(&delivered) >= (uint64_t)EVENTS * NSH,
                   "%llu of %u events delivered", (unsigned long long)atomic_load(&delivered),
                   EVENTS * NSH);
    mrt_mesh_stop(w.m);
    for (unsigned i = 0; i < NSH; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&bar);
    ck_assert_uint_eq(atomic_load(&delivered), (uint64_t)EVENTS * NSH);
    for (unsigned i = 0; i < NSH; i++) {
        ck_assert_msg(t[i].settled, "shard %u: %llu buffers out, %llu owed, %llu in flight", i,
                      (unsigned long long)t[i].st.pool_out, (unsigned long long)t[i].st.backlog,
                      (unsigned long long)t[i].st.inflight);
        ck_assert_uint_eq(t[i].lb_outstanding, 0);
        ck_assert_uint_eq(t[i].st.routed, EVENTS);
        ck_assert_uint_eq(t[i].st.completions, EVENTS);
        ck_assert_uint_eq(t[i].p.errors, 0);
    }
    mrt_svc_destroy(w.svc);
    mrt_mesh_destroy(w.m);
    mrt_lb_domain_destroy(dom);
    mrt_lb_registry_destroy(reg);
}
END_TEST

/* ---- allocations ------------------------------------------------------------ */

START_TEST(steady_state_allocates_nothing)
{
    if (mrt_alloc_counting_enable() != MRT_OK)
        MRT_SKIP("alloc-count", "sanitizer builds allocate through libc, which jemalloc's hook cannot count");
    world w;
    world_mesh(&w, 256, 32, 0);
    mrt_svc_config c = small_cfg(1024);
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    world_start(&w, 1024);
    static prod p[NSH];
    for (unsigned i = 0; i < NSH; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].w = &w;
        p[i].self = i;
        p[i].target = UINT64_MAX;
        ck_assert_int_eq(mrt_svc_add_hook(w.ss[i], produce, &p[i]), MRT_OK);
    }
    for (int k = 0; k < 200; k++) /* warm up: connections, thread caches */
        world_poll(&w);
    uint64_t got0 = w.daemon[0].got + w.daemon[1].got;
    mrt_alloc_counts before = mrt_alloc_counts_now();
    for (int k = 0; k < 5000; k++)
        world_poll(&w);
    mrt_alloc_counts after = mrt_alloc_counts_now();
    ck_assert_uint_gt(w.daemon[0].got + w.daemon[1].got - got0, 50000);
    ck_assert_uint_eq(after.allocs - before.allocs, 0);
    ck_assert_uint_eq(after.bytes - before.bytes, 0);
    ck_assert_uint_eq(w.daemon[0].bad_order + w.daemon[1].bad_order, 0);
    ck_assert_uint_eq(w.daemon[0].bad_payload + w.daemon[1].bad_payload, 0);
    world_drain(&w);
    world_assert_settled(&w);
    world_end(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("services_flow");
    TCase *tc = tcase_create("flow");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, order_across_shards_random_payloads);
    tcase_add_test(tc, too_big_pool_and_argument_errors);
    tcase_add_test(tc, unknown_daemon_and_forged_messages_handed_back);
    tcase_add_test(tc, full_reverse_ring_keeps_returns_until_there_is_room);
    tcase_add_loop_test(tc, completions_release_every_reservation, 0, 5);
    tcase_add_test(tc, two_shard_threads_route_complete_and_drain);
    tcase_add_test(tc, steady_state_allocates_nothing);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
