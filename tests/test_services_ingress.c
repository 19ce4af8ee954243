/*
 * Services, ingress: events with payload from threads that are not shards,
 * in buffers of the destination's ingress pool. Order per injector, payloads
 * intact, every buffer back on its free list after the drain, the error
 * codes (each leaving the pool as it was), malformed external messages.
 */
#include "test_services_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static mrt_svc_config ingress_cfg(uint32_t max_payload, uint32_t ingress_buffers)
{
    mrt_svc_config c;
    mrt_svc_config_default(&c);
    c.max_payload = max_payload;
    c.pool_buffers = 64;
    c.pool_class_bytes = 64 * 1024;
    c.pool_min_buffers = 8;
    c.ingress_buffers = ingress_buffers;
    c.ingress_class_bytes = 64 * 1024;
    return c;
}

/* Every ingress buffer of every shard is back on its free list. */
static void assert_ingress_home(world *w)
{
    for (unsigned i = 0; i < NSH; i++)
        for (unsigned c = 0; c < mrt_svc_pool_classes(w->svc); c++)
            ck_assert_msg(mrt_svc_ingress_free(w->svc, i, c) == mrt_svc_ingress_class(w->svc, c),
                          "shard %u class %u: %u of %u ingress buffers free", i, c,
                          mrt_svc_ingress_free(w->svc, i, c), mrt_svc_ingress_class(w->svc, c));
}

/* An injector thread: `per_dst` events to each shard's recording daemon, in sequence. */
typedef struct injector {
    world *w;
    unsigned self;          /* origin = self + 1, as the recording daemon expects */
    uint64_t per_dst;
    uint64_t refused, errors;
    int last_error;
    atomic_bool *abort;
} injector;

static void *inject_main(void *arg)
{
    injector *in = arg;
    uint32_t max = in->w->daemon[0].max;
    static _Thread_local uint8_t buf[8192];
    uint64_t next[NSH] = { 0 };
    bool left = true;
    while (left && !atomic_load(in->abort)) {
        left = false;
        /* Interleave destinations: one event to each per round. */
        for (unsigned d = 0; d < NSH; d++) {
            if (next[d] == in->per_dst)
                continue;
            left = true;
            uint64_t seq = next[d];
            size_t len = len_of(in->self, d, seq, max);
            for (size_t i = 0; i < len; i++)
                buf[i] = byte_of(seq, i);
            mrt_causal_link link = { .origin_hash = in->self + 1, .sequence = seq };
            int rc = mrt_svc_inject_event(in->w->svc, d, in->w->daemon_id[d], &link, buf, len);
            if (rc == MRT_OK) {
                next[d]++;
            } else if (rc == MRT_SVC_EPOOL || rc == MRT_SHARD_EFULL) {
                in->refused++;
                sched_yield(); /* backpressure: the shards free buffers as they poll */
            } else {
                in->errors++;
                in->last_error = rc;
                return NULL;
            }
        }
    }
    return NULL;
}

START_TEST(two_injector_threads_random_payloads_in_order)
{
    enum { PER_DST = 3000, MAX = 4096 };
    world w;
    world_mesh(&w, 64, 8, 0);
    mrt_svc_config c = ingress_cfg(MAX, 8); /* few buffers: backpressure happens */
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    world_start(&w, MAX);
    static atomic_bool abort_flag;
    atomic_store(&abort_flag, false);
    static injector in[NSH];
    pthread_t tid[NSH];
    for (unsigned j = 0; j < NSH; j++) {
        in[j] = (injector){ .w = &w, .self = j, .per_dst = PER_DST, .abort = &abort_flag };
        ck_assert_int_eq(pthread_create(&tid[j], NULL, inject_main, &in[j]), 0);
    }
    /* This thread drives both shards while the injectors run. */
    mrt_wait wt = mrt_wait_begin();
    while (w.daemon[0].got + w.daemon[1].got < (uint64_t)PER_DST * NSH * NSH &&
           in[0].errors + in[1].errors == 0) {
        world_poll(&w);
        if (mrt_wait_expired(&wt))
            atomic_store(&abort_flag, true);
        MRT_WAIT_CHECK(&wt, "%llu of %u injected events delivered",
                       (unsigned long long)(w.daemon[0].got + w.daemon[1].got), PER_DST * NSH * NSH);
    }
    for (unsigned j = 0; j < NSH; j++)
        pthread_join(tid[j], NULL);
    for (unsigned j = 0; j < NSH; j++)
        ck_assert_msg(in[j].errors == 0, "injector %u: %s", j, mrt_svc_strerror(in[j].last_error));
    world_drain(&w);
    for (unsigned i = 0; i < NSH; i++) {
        ck_assert_uint_eq(w.daemon[i].bad_order, 0);
        ck_assert_uint_eq(w.daemon[i].bad_payload, 0);
        for (unsigned j = 0; j < NSH; j++)
            ck_assert_uint_eq(w.daemon[i].expect[j], PER_DST);
        mrt_svc_stats st;
        mrt_svc_stats_get(w.ss[i], &st);
        ck_assert_uint_eq(st.ingress, (uint64_t)PER_DST * NSH);
        ck_assert_uint_eq(st.delivered, (uint64_t)PER_DST * NSH);
        ck_assert_uint_eq(st.handed_back[MRT_SVC_HB_EXTERNAL], 0);
        ck_assert_uint_eq(st.handed_back[MRT_SVC_HB_NO_HOST], 0);
    }
    assert_ingress_home(&w);
    world_assert_settled(&w);
    world_end(&w);
}
END_TEST

START_TEST(ingress_codes_leave_the_pool_as_it_was)
{
    enum { MAX = 1000 };
    world w;
    world_mesh(&w, 16, 4, 0); /* ingress ring: 15 messages */
    mrt_svc_config c = ingress_cfg(MAX, 32);
    c.ingress_class_bytes = 8192; /* 32 buffers of 64 B, 7 of the largest class */
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    static uint8_t big[MAX + 1];
    mrt_causal_link link = { .origin_hash = 1 };
    /* Before the shard has services. */
    ck_assert_int_eq(mrt_svc_inject_event(w.svc, 1, 5, &link, big, 10), MRT_SHARD_ENOTREADY);
    world_start(&w, MAX);
    uint64_t id1 = w.daemon_id[1];
    ck_assert_int_eq(mrt_svc_inject_event(w.svc, 1, id1, &link, big, MAX + 1), MRT_SVC_ETOOBIG);
    ck_assert_int_eq(mrt_svc_inject_event(w.svc, 1, id1, NULL, big, 10), MRT_EINVAL);
    ck_assert_int_eq(mrt_svc_inject_event(w.svc, 1, id1, &link, NULL, 10), MRT_EINVAL);
    ck_assert_int_eq(mrt_svc_inject_event(NULL, 1, id1, &link, big, 10), MRT_EINVAL);
    ck_assert_int_eq(mrt_svc_inject_event(w.svc, NSH, id1, &link, big, 10), MRT_SHARD_EDEST);
    assert_ingress_home(&w);

    /* The ring fills first (15 < 32 buffers): EFULL, and the buffer went back. */
    uint32_t cnt0 = mrt_svc_ingress_class(w.svc, 0);
    ck_assert_uint_eq(cnt0, 32);
    unsigned ok = 0;
    int rc;
    while ((rc = mrt_svc_inject_event(w.svc, 1, id1, &link, NULL, 0)) == MRT_OK)
        link.sequence = ++ok;
    ck_assert_int_eq(rc, MRT_SHARD_EFULL);
    ck_assert_uint_eq(ok, 15);
    ck_assert_uint_eq(mrt_svc_ingress_free(w.svc, 1, 0), cnt0 - ok);
    /* The largest class has few buffers: EPOOL before the ring is full. */
    unsigned last = mrt_svc_pool_classes(w.svc) - 1;
    uint32_t cntl = mrt_svc_ingress_class(w.svc, last);
    ck_assert_uint_lt(cntl, 15);
    for (int k = 0; k < 20; k++)
        world_poll(&w);
    ck_assert_uint_eq(mrt_svc_ingress_free(w.svc, 1, 0), cnt0);
    for (uint32_t i = 0; i < cntl; i++) {
        link.sequence = ok++;
        ck_assert_int_eq(mrt_svc_inject_event(w.svc, 1, id1, &link, big, MAX), MRT_OK);
    }
    ck_assert_int_eq(mrt_svc_inject_event(w.svc, 1, id1, &link, big, MAX), MRT_SVC_EPOOL);
    ck_assert_uint_eq(mrt_svc_ingress_free(w.svc, 1, last), 0);
    for (int k = 0; k < 20; k++)
        world_poll(&w);
    ck_assert_uint_eq(w.daemon[1].got, ok);
    ck_assert_uint_eq(w.daemon[1].bad_order, 0); /* (payload lengths are not the daemon's rule) */
    assert_ingress_home(&w);

    /* Once the mesh is stopping: ESTOPPED, the buffer back. */
    mrt_mesh_request_stop(w.m);
    ck_assert_int_eq(mrt_svc_inject_event(w.svc, 1, id1, &link, big, 10), MRT_SHARD_ESTOPPED);
    world_drain(&w);
    assert_ingress_home(&w);
    world_assert_settled(&w);
    world_end(&w);
}
END_TEST

typedef struct hb_count {
    unsigned calls[MRT_SVC_HB_REASONS];
} hb_count;

static void count_handback(mrt_svc_shard *ss, const mrt_svc_event *e,
                           mrt_svc_handback_reason why, void *ctx)
{
    (void)ss;
    (void)e;
    ((hb_count *)ctx)->calls[why]++;
}

START_TEST(malformed_external_events_handed_back)
{
    world w;
    world_mesh(&w, 64, 8, 0);
    mrt_svc_config c = ingress_cfg(1024, 8);
    ck_assert_int_eq(mrt_svc_create(w.m, &c, &w.svc), MRT_OK);
    static hb_count hb;
    memset(&hb, 0, sizeof hb);
    ck_assert_int_eq(mrt_svc_set_handback(w.svc, count_handback, &hb), MRT_OK);
    world_start(&w, 1024);
    uint16_t t_event = w.ss[1]->t_event;
    unsigned cls = SVC_H_INGRESS; /* class 0 of the ingress pool */
    /* Index 1: the valid injection below takes index 0 before shard 1 polls. */
    uint64_t ioff = w.svc->ioff[0] + w.svc->class_size[0];
    mrt_msg bad[] = {
        /* a pool handle (not ingress) */
        { .type = t_event, .w = { w.daemon_id[1], svc_handle(1, 0, 0), 0 } },
        /* shard 0's ingress buffer sent to shard 1 */
        { .type = t_event, .w = { w.daemon_id[1], svc_handle(0, cls, ioff), 0 } },
        /* a free ingress buffer (no injector holds it) */
        { .type = t_event, .w = { w.daemon_id[1], svc_handle(1, cls, ioff), 0 } },
        /* not a buffer start */
        { .type = t_event, .w = { w.daemon_id[1], svc_handle(1, cls, ioff + 8), 0 } },
        /* a completion token from outside */
        { .type = t_event, .w = { w.daemon_id[1], svc_handle(1, cls, ioff), 7 } },
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(mrt_mesh_inject(w.m, 1, &bad[i]), MRT_OK);
    /* A valid one behind them still gets through. */
    mrt_causal_link link = { .origin_hash = 1 };
    ck_assert_int_eq(mrt_svc_inject_event(w.svc, 1, w.daemon_id[1], &link, NULL, 0), MRT_OK);
    for (int k = 0; k < 5; k++)
        world_poll(&w);
    ck_assert_uint_eq(hb.calls[MRT_SVC_HB_EXTERNAL], sizeof bad / sizeof bad[0]);
    ck_assert_uint_eq(w.daemon[1].got, 1);
    mrt_svc_stats st;
    mrt_svc_stats_get(w.ss[1], &st);
    ck_assert_uint_eq(st.handed_back[MRT_SVC_HB_EXTERNAL], sizeof bad / sizeof bad[0]);
    ck_assert_uint_eq(st.ingress, 1);
    world_drain(&w);
    /* No forged message put a buffer on a free list twice. */
    assert_ingress_home(&w);
    world_assert_settled(&w);
    world_end(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("services_ingress");
    TCase *tc = tcase_create("ingress");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, two_injector_threads_random_payloads_in_order);
    tcase_add_test(tc, ingress_codes_leave_the_pool_as_it_was);
    tcase_add_test(tc, malformed_external_events_handed_back);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
