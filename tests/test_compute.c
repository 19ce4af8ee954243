/*
 * Compute, the embedder's path (built-in workload off, 2 shards even on
 * one CPU): types, spawn on a shard and by placement, injection from the
 * main thread, a chain of daemons across shards out to egress with every
 * causal link validated, stop and hand-back, outputs with no subscription
 * counted, bad input codes.
 */
#include "test_compute_common.h"

#include <stdlib.h>

static _Atomic uint64_t hb_count, hb_nodaemon;

static void on_handback(void *ctx, mrt_compute_ref to, const mrt_event *ev, int why)
{
    (void)ctx;
    (void)to;
    (void)ev;
    atomic_fetch_add(&hb_count, 1);
    if (why == MRT_CP_ENODAEMON)
        atomic_fetch_add(&hb_nodaemon, 1);
}

START_TEST(chain_across_shards_to_egress)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type t = tc_type("relay", 4);
    uint16_t relay;
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &relay), MRT_OK);
    ck_assert_int_eq(mrt_compute_set_handback(c, on_handback, NULL), MRT_OK);
    atomic_store(&hb_count, 0);
    tc_start(rt);

    /* Spawn on shard 0 and 1, then by placement: the least loaded, lowest index on ties. */
    mrt_compute_ref a, b, x, y;
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 0, NULL, NULL, 0, &a), MRT_OK);
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 1, NULL, NULL, 0, &b), MRT_OK);
    ck_assert_uint_eq(a.shard, 0);
    ck_assert_uint_eq(b.shard, 1);
    ck_assert_uint_ne(a.id, b.id);
    ck_assert_int_eq(mrt_compute_spawn(c, relay, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &x),
                     MRT_OK);
    ck_assert_uint_eq(x.shard, 0); /* 1 and 1 hosted: the lower index */
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 1, NULL, NULL, 0, &y), MRT_OK);
    mrt_compute_ref z;
    ck_assert_int_eq(mrt_compute_spawn(c, relay, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &z),
                     MRT_OK);
    ck_assert_uint_eq(z.shard, 0); /* 2 and 2 again */
    mrt_compute_ref w;
    ck_assert_int_eq(mrt_compute_spawn(c, relay, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &w),
                     MRT_OK);
    ck_assert_uint_eq(w.shard, 1); /* 3 against 2: the emptier one */

    /* a (shard 0) -> b (shard 1) -> x (shard 0) -> egress. */
    ck_assert_int_eq(mrt_compute_subscribe(c, a, MRT_COMPUTE_TO_DAEMON, b), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, b, MRT_COMPUTE_TO_DAEMON, x), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, x, MRT_COMPUTE_TO_EGRESS, x), MRT_OK);

    enum { N = 3000 };
    static uint8_t payload[2048];
    tc_egress eg;
    memset(&eg, 0, sizeof eg);
    srand(7);
    for (uint64_t i = 0; i < N; i++) {
        size_t len = 8 + (size_t)(rand() % 2000);
        memcpy(payload, &i, 8);
        for (size_t k = 8; k < len; k++)
            payload[k] = (uint8_t)(i + k);
        tc_inject_eg(c, a, payload, len, &eg);
    }
    tc_egress_until(c, &eg, N);
    ck_assert_uint_eq(eg.nfrom, 1);
    ck_assert_uint_eq(eg.from[0], x.id);
    ck_assert_uint_eq(eg.from_shard[0], x.shard);
    ck_assert_uint_eq(eg.bad_chain, 0);
    ck_assert_uint_eq(eg.out_of_order, 0);
    ck_assert_uint_eq(eg.last_seq[0], N - 1);

    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.injected, N);
    ck_assert_uint_eq(s.delivered, 3 * N);
    ck_assert_uint_eq(s.emitted, 3 * N);
    ck_assert_uint_eq(s.routed_daemon, 2 * N);
    ck_assert_uint_eq(s.egressed, N);
    ck_assert_uint_eq(s.handed_back, 0);
    ck_assert_uint_eq(atomic_load(&hb_count), 0);
    ck_assert_uint_eq(s.daemon_errors, 0);
    ck_assert_uint_eq(s.buffers_out, 0);
    ck_assert_uint_eq(s.inflight, 0);
    ck_assert_uint_eq(s.hosted, 0); /* torn down with the shards */
    ck_assert_uint_eq(mrt_compute_egress_unclaimed(c), 0);
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(stopped_daemon_events_handed_back)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type t = tc_type("relay", 1);
    uint16_t relay;
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &relay), MRT_OK);
    ck_assert_int_eq(mrt_compute_set_handback(c, on_handback, NULL), MRT_OK);
    atomic_store(&hb_count, 0);
    atomic_store(&hb_nodaemon, 0);
    tc_start(rt);
    uint64_t creates = atomic_load(&tc_creates), destroys = atomic_load(&tc_destroys);
    mrt_compute_ref d, e;
    uint8_t key[MRT_HOST_KEY_SIZE] = "a key of the test's own";
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 1, key, NULL, 0, &d), MRT_OK);
    ck_assert_uint_eq(d.id, mrt_host_origin_from_key(key));
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 0, NULL, NULL, 0, &e), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, e, MRT_COMPUTE_TO_DAEMON, d), MRT_OK);
    ck_assert_uint_eq(atomic_load(&tc_creates), creates + 2);
    ck_assert_int_eq(mrt_compute_stop(c, d), MRT_OK);
    ck_assert_uint_eq(atomic_load(&tc_destroys), destroys + 1); /* done when stop returns */
    ck_assert_int_eq(mrt_compute_stop(c, d), MRT_CP_ENODAEMON);
    ck_assert_int_eq(mrt_compute_subscribe(c, d, MRT_COMPUTE_TO_EGRESS, d), MRT_CP_ENODAEMON);
    /* Straight to it, and through e's subscription: all handed back, with the reason. */
    for (uint64_t i = 0; i < 100; i++) {
        tc_inject(c, d, &i, sizeof i);
        tc_inject(c, e, &i, sizeof i);
    }
    MRT_WAIT_UNTIL(atomic_load(&hb_nodaemon) == 200, "200 hand-backs (%llu)",
                   (unsigned long long)atomic_load(&hb_nodaemon));
    /* The same key again once it is gone: a fresh daemon under the same id. */
    mrt_compute_ref d2;
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 1, key, NULL, 0, &d2), MRT_OK);
    ck_assert_uint_eq(d2.id, d.id);
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 1, key, NULL, 0, &d2), MRT_SVC_EEXIST);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.handed_back, 200);
    ck_assert_uint_eq(atomic_load(&hb_count), 200);
    ck_assert_uint_eq(s.delivered, 100); /* e's, relayed to d: handed back there */
    ck_assert_uint_eq(s.buffers_out, 0);
    ck_assert_uint_eq(atomic_load(&tc_destroys) - destroys, atomic_load(&tc_creates) - creates);
    mrt_runtime_destroy(rt);
}
END_TEST

/* Outputs of a daemon nobody subscribed to have nowhere to go: counted, not handed back. */
START_TEST(unsubscribed_outputs_counted)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type t = tc_type("relay", 4);
    uint16_t relay;
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &relay), MRT_OK);
    tc_start(rt);
    mrt_compute_ref d;
    uint32_t fan = 3;
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 1, NULL, &fan, sizeof fan, &d), MRT_OK);
    for (uint64_t i = 0; i < 10; i++)
        tc_inject(c, d, &i, sizeof i);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.delivered, 10);
    ck_assert_uint_eq(s.emitted, 30);
    ck_assert_uint_eq(s.unsubscribed, 30);
    ck_assert_uint_eq(s.handed_back, 0);
    ck_assert_uint_eq(s.routed_daemon + s.routed_set + s.egressed + s.deferred, 0);
    ck_assert_uint_eq(s.buffers_out, 0);
    mrt_runtime_destroy(rt);
}
END_TEST

/* ---- types without create: zeroed state of state_size, or none ---------------- */

static _Atomic uint64_t stateless_events;

static int count_process(void *state, const mrt_event *ev, mrt_daemon_sink *sink)
{
    if (state == NULL) { /* the stateless type */
        atomic_fetch_add(&stateless_events, 1);
        return mrt_daemon_emit_copy(sink, ev->payload, ev->payload_len);
    }
    uint64_t *n = state;
    ++*n;
    return mrt_daemon_emit_copy(sink, n, sizeof *n);
}

static const mrt_daemon_vtable count_vt = { .name = "count", .process = count_process };

static int read_count(void *ctx, mrt_host *host, void *state)
{
    (void)host;
    *(uint64_t *)ctx = state ? *(uint64_t *)state : UINT64_MAX;
    return MRT_OK;
}

START_TEST(state_size_types_need_no_create)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type counting = { .name = "count", .vt = &count_vt,
                                  .state_size = sizeof(uint64_t), .max_outputs = 1 };
    mrt_compute_type stateless = { .name = "stateless", .vt = &count_vt, .max_outputs = 1 };
    uint16_t tcount, tnone;
    ck_assert_int_eq(mrt_compute_register_type(c, &counting, &tcount), MRT_OK);
    ck_assert_int_eq(mrt_compute_register_type(c, &stateless, &tnone), MRT_OK);
    atomic_store(&stateless_events, 0);
    tc_start(rt);

    enum { N = 500 };
    mrt_compute_ref d[3];
    ck_assert_int_eq(mrt_compute_spawn(c, tcount, 0, NULL, NULL, 0, &d[0]), MRT_OK);
    ck_assert_int_eq(mrt_compute_spawn(c, tcount, 1, NULL, NULL, 0, &d[1]), MRT_OK);
    ck_assert_int_eq(mrt_compute_spawn(c, tnone, 1, NULL, NULL, 0, &d[2]), MRT_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mrt_compute_subscribe(c, d[i], MRT_COMPUTE_TO_EGRESS, d[i]), MRT_OK);
    tc_egress eg;
    memset(&eg, 0, sizeof eg);
    uint8_t p[8] = { 0 };
    for (uint64_t i = 0; i < N; i++)
        for (int k = 0; k < 3; k++) /* d[0] gets N events, d[1] N + N / 2, d[2] N / 2 */
            tc_inject_eg(c, d[k == 2 && i % 2 ? 1 : k], p, sizeof p, &eg);
    tc_egress_until(c, &eg, 3 * N);
    ck_assert_uint_eq(eg.bad_chain, 0);
    /* Each instance's own state, zeroed at spawn: its count is exactly its events. */
    uint64_t n0 = 0, n1 = 0, n2 = 0;
    ck_assert_int_eq(mrt_compute_call(c, d[0], read_count, &n0), MRT_OK);
    ck_assert_int_eq(mrt_compute_call(c, d[1], read_count, &n1), MRT_OK);
    ck_assert_int_eq(mrt_compute_call(c, d[2], read_count, &n2), MRT_OK);
    ck_assert_uint_eq(n0, N);
    ck_assert_uint_eq(n1, N + N / 2);
    ck_assert_uint_eq(n2, UINT64_MAX); /* state NULL */
    ck_assert_uint_eq(atomic_load(&stateless_events), N / 2);
    /* The pair wrapping types use: bad input is refused, a zeroed block comes and goes. */
    void *st = (void *)&st;
    ck_assert_int_eq(mrt_compute_state_create(NULL, NULL, NULL, 0, &st), MRT_EINVAL);
    ck_assert_int_eq(mrt_compute_state_create(&counting, NULL, NULL, 0, NULL), MRT_EINVAL);
    ck_assert_int_eq(mrt_compute_state_create(&counting, NULL, NULL, 4, &st), MRT_EINVAL);
    ck_assert_int_eq(mrt_compute_state_create(&counting, NULL, NULL, 0, &st), MRT_OK);
    ck_assert_ptr_nonnull(st);
    ck_assert_uint_eq(*(uint64_t *)st, 0);
    mrt_compute_state_destroy(&counting, NULL, st);
    ck_assert_int_eq(mrt_compute_state_create(&stateless, NULL, NULL, 0, &st), MRT_OK);
    ck_assert_ptr_null(st);
    mrt_compute_state_destroy(&stateless, NULL, st);
    mrt_compute_state_destroy(NULL, NULL, NULL);
    /* Stopping frees the state (the sanitizer builds' leak check sees a lost block). */
    ck_assert_int_eq(mrt_compute_stop(c, d[0]), MRT_OK);
    ck_assert_int_eq(mrt_compute_stop(c, d[2]), MRT_OK);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(bad_input_codes)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type t = tc_type("relay", 1);
    uint16_t relay, id;
    mrt_compute_ref r, d = { 0, 0 };
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &relay), MRT_OK);
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &id), MRT_SVC_EEXIST);
    mrt_compute_type bad = t;
    bad.name = "no-process";
    bad.vt = NULL;
    ck_assert_int_eq(mrt_compute_register_type(c, &bad, &id), MRT_EINVAL);
    bad = t;
    bad.name = "both";
    bad.state_size = 8; /* a create and a state size: which one makes the state? */
    ck_assert_int_eq(mrt_compute_register_type(c, &bad, &id), MRT_EINVAL);
    ck_assert_int_eq(mrt_compute_register_type(NULL, &t, &id), MRT_EINVAL);
    /* Before start: nothing runs yet. */
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 0, NULL, NULL, 0, &r), MRT_CP_ENOTSTARTED);
    ck_assert_int_eq(mrt_compute_inject(c, d, "x", 1), MRT_CP_ENOTSTARTED);
    tc_start(rt);
    ck_assert_int_eq(mrt_compute_register_type(c, &t, &id), MRT_CP_ESTARTED);
    ck_assert_int_eq(mrt_compute_set_placement(c, NULL, NULL), MRT_CP_ESTARTED);
    ck_assert_int_eq(mrt_compute_set_handback(c, NULL, NULL), MRT_CP_ESTARTED);
    ck_assert_int_eq(mrt_compute_spawn(c, 99, 0, NULL, NULL, 0, &r), MRT_CP_ENOTYPE);
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 7, NULL, NULL, 0, &r), MRT_SHARD_EDEST);
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 0, NULL, NULL, 0, NULL), MRT_EINVAL);
    static uint8_t big[MRT_COMPUTE_MAX_ARG + 1];
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 0, NULL, big, sizeof big, &r), MRT_EINVAL);
    uint8_t fail = 0xEE;
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 0, NULL, &fail, 1, &r), MRT_CP_ECREATE);
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 1, NULL, NULL, 0, &d), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, d, (mrt_compute_sink_kind)9, d), MRT_EINVAL);
    mrt_compute_ref far = { .id = d.id, .shard = 9 };
    ck_assert_int_eq(mrt_compute_subscribe(c, d, MRT_COMPUTE_TO_DAEMON, far), MRT_SHARD_EDEST);
    ck_assert_int_eq(mrt_compute_stop(c, far), MRT_CP_ENODAEMON);
    for (unsigned k = 0; k < MRT_COMPUTE_MAX_SUBS; k++)
        ck_assert_int_eq(mrt_compute_subscribe(c, d, MRT_COMPUTE_TO_EGRESS, d), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, d, MRT_COMPUTE_TO_EGRESS, d), MRT_CP_ELIMIT);
    /* Payloads: above the maximum refused with its code, never truncated. */
    static uint8_t huge[MRT_SVC_DEFAULT_MAX_PAYLOAD + 1];
    ck_assert_int_eq(mrt_compute_inject(c, d, huge, sizeof huge), MRT_SVC_ETOOBIG);
    ck_assert_int_eq(mrt_compute_inject(c, d, NULL, 4), MRT_EINVAL);
    ck_assert_int_eq(mrt_compute_inject(c, far, "x", 1), MRT_SHARD_EDEST);
    ck_assert_int_eq(mrt_compute_inject(NULL, d, "x", 1), MRT_EINVAL);
    mrt_compute_stats s;
    ck_assert_int_eq(mrt_compute_stats_get(c, 2, &s), MRT_EINVAL);
    ck_assert_int_eq(mrt_compute_send(NULL, d, NULL, NULL, 0), MRT_EINVAL);
    ck_assert_int_eq(mrt_compute_defer(NULL, d, NULL, NULL, 0), MRT_EINVAL);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    /* After stop: nothing new is accepted. */
    ck_assert_int_eq(mrt_compute_spawn(c, relay, 0, NULL, NULL, 0, &r), MRT_CP_ESTOPPED);
    ck_assert_int_eq(mrt_compute_inject(c, d, "x", 1), MRT_CP_ESTOPPED);
    ck_assert_int_eq(mrt_compute_stop(c, d), MRT_CP_ESTOPPED);
    /* Names. */
    for (int code = MRT_CP_ENOTSTARTED; code <= MRT_CP_ENOTYPE; code++) {
        ck_assert_ptr_nonnull(mrt_compute_strerror(code));
        ck_assert_str_eq(mrt_strerror(code), mrt_compute_strerror(code));
    }
    ck_assert_ptr_null(mrt_compute_strerror(-700));
    ck_assert_ptr_null(mrt_compute_strerror(-809));
    ck_assert_str_eq(mrt_strerror(-850), "unknown status");
    mrt_runtime_destroy(rt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compute");
    TCase *tc = tcase_create("compute");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, chain_across_shards_to_egress);
    tcase_add_test(tc, stopped_daemon_events_handed_back);
    tcase_add_test(tc, unsubscribed_outputs_counted);
    tcase_add_test(tc, state_size_types_need_no_create);
    tcase_add_test(tc, bad_input_codes);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
