/*
 * The balancer-routed set: outputs of a daemon on each shard spread by
 * that shard's balancer over worker daemons on both shards; every
 * selection completes on the selecting shard (0 in flight after the
 * drain) under round robin, least connections and power of two, and every
 * strategy reaches every worker. An empty set hands every output back.
 */
#include "test_compute_common.h"

enum { WORKERS = 4, N = 4000 };

static void run_set(mrt_lb_strategy lb)
{
    mrt_runtime *rt = tc_runtime(2, lb, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type relay = tc_type("relay", 1);
    uint16_t tr;
    ck_assert_int_eq(mrt_compute_register_type(c, &relay, &tr), MRT_OK);
    tc_start(rt);
    mrt_compute_ref src[2], w[WORKERS];
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_int_eq(mrt_compute_spawn(c, tr, (uint16_t)i, NULL, NULL, 0, &src[i]), MRT_OK);
        ck_assert_int_eq(mrt_compute_subscribe(c, src[i], MRT_COMPUTE_TO_SET, src[i]), MRT_OK);
    }
    for (unsigned i = 0; i < WORKERS; i++) {
        ck_assert_int_eq(mrt_compute_spawn(c, tr, MRT_COMPUTE_ANY_SHARD, NULL, NULL, 0, &w[i]),
                         MRT_OK);
        ck_assert_uint_eq(w[i].shard, i % 2); /* placement alternates: least hosted */
        ck_assert_int_eq(mrt_compute_subscribe(c, w[i], MRT_COMPUTE_TO_EGRESS, w[i]), MRT_OK);
        ck_assert_int_eq(mrt_compute_set_add(c, w[i], 0), MRT_OK);
    }
    mrt_compute_ref gone = { .id = 12345, .shard = 1 };
    ck_assert_int_eq(mrt_compute_set_add(c, gone, 0), MRT_CP_ENODAEMON);
    ck_assert_int_eq(mrt_runtime_control_tick(rt, false), 1); /* the set changed: published */
    ck_assert_int_eq(mrt_runtime_control_tick(rt, false), 0);

    /*
     * Until a shard adopted the snapshot its selections fail (no endpoints)
     * and the outputs are handed back: probe each source until one routes.
     */
    tc_egress eg;
    memset(&eg, 0, sizeof eg);
    uint64_t probes = 0;
    for (unsigned i = 0; i < 2; i++) {
        mrt_wait wt = mrt_wait_begin();
        mrt_compute_stats s;
        uint64_t mine = 0;
        for (;;) {
            ck_assert_int_eq(mrt_compute_stats_get(c, i, &s), MRT_OK);
            if (s.routed_set > 0)
                break;
            MRT_WAIT_CHECK(&wt, "shard %u to route to the set", i);
            uint64_t seq = 0;
            tc_inject_eg(c, src[i], &seq, sizeof seq, &eg);
            probes++;
            mine++;
            /* The probe's outcome, routed or handed back, before the next one. */
            MRT_WAIT_UNTIL(mrt_compute_stats_get(c, i, &s) == MRT_OK &&
                               s.routed_set + s.handed_back == mine,
                           "the outcome of probe %llu on shard %u", (unsigned long long)mine, i);
        }
    }
    mrt_compute_stats before = tc_totals(rt);
    for (uint64_t k = 1; k <= N; k++)
        for (unsigned i = 0; i < 2; i++)
            tc_inject_eg(c, src[i], &k, sizeof k, &eg);
    tc_egress_until(c, &eg, 2 * N + before.routed_set);
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.handed_back, before.handed_back); /* none after the adoption */
    ck_assert_uint_eq(s.routed_set, 2 * N + before.routed_set);
    ck_assert_uint_eq(s.routed_set + s.handed_back, 2 * N + probes);
    ck_assert_uint_eq(s.completions, s.routed_set); /* every selection completed ... */
    ck_assert_uint_eq(s.inflight, 0);               /* ... and none left reserved */
    ck_assert_uint_eq(s.buffers_out, 0);
    ck_assert_uint_eq(eg.bad_chain, 0);
    ck_assert_uint_eq(eg.nfrom, WORKERS);
    for (unsigned i = 0; i < WORKERS; i++)
        ck_assert_msg(tc_count_of(&eg, w[i].id) > 0, "%s: worker %u got nothing",
                      mrt_lb_strategy_name(lb), i);
    mrt_runtime_destroy(rt);
}

/* Hand-backs of outputs for the set: the set's address, a reason, counted. */
static _Atomic uint64_t hb_set, hb_other;

static void on_set_handback(void *ctx, mrt_compute_ref to, const mrt_event *ev, int why)
{
    (void)ctx;
    (void)ev;
    if (to.id == 0 && to.shard == MRT_COMPUTE_ANY_SHARD && why < 0 && why != MRT_CP_ENODAEMON)
        atomic_fetch_add(&hb_set, 1);
    else
        atomic_fetch_add(&hb_other, 1);
}

/* An empty set routes nothing: every output for it is handed back, none lost or held. */
START_TEST(set_empty_hands_back)
{
    mrt_runtime *rt = tc_runtime(2, MRT_LB_ROUND_ROBIN, 0);
    mrt_compute *c = mrt_runtime_compute(rt);
    mrt_compute_type relay = tc_type("relay", 2);
    uint16_t tr;
    ck_assert_int_eq(mrt_compute_register_type(c, &relay, &tr), MRT_OK);
    ck_assert_int_eq(mrt_compute_set_handback(c, on_set_handback, NULL), MRT_OK);
    atomic_store(&hb_set, 0);
    atomic_store(&hb_other, 0);
    tc_start(rt);
    mrt_compute_ref src;
    uint32_t fan = 2;
    ck_assert_int_eq(mrt_compute_spawn(c, tr, 1, NULL, &fan, sizeof fan, &src), MRT_OK);
    ck_assert_int_eq(mrt_compute_subscribe(c, src, MRT_COMPUTE_TO_SET, src), MRT_OK);
    for (uint64_t k = 0; k < 100; k++)
        tc_inject(c, src, &k, sizeof k);
    MRT_WAIT_UNTIL(atomic_load(&hb_set) + atomic_load(&hb_other) == 200, "200 hand-backs (%llu)",
                   (unsigned long long)(atomic_load(&hb_set) + atomic_load(&hb_other)));
    ck_assert_int_eq(mrt_runtime_stop(rt), MRT_OK);
    ck_assert_uint_eq(atomic_load(&hb_other), 0);
    mrt_compute_stats s = tc_totals(rt);
    ck_assert_uint_eq(s.delivered, 100);
    ck_assert_uint_eq(s.emitted, 200);
    ck_assert_uint_eq(s.handed_back, 200);
    ck_assert_uint_eq(s.routed_set, 0);
    ck_assert_uint_eq(s.inflight, 0);
    ck_assert_uint_eq(s.buffers_out, 0);
    mrt_runtime_destroy(rt);
}
END_TEST

START_TEST(set_round_robin) { run_set(MRT_LB_ROUND_ROBIN); }
END_TEST
START_TEST(set_least_connections) { run_set(MRT_LB_LEAST_CONNECTIONS); }
END_TEST
START_TEST(set_power_of_two) { run_set(MRT_LB_POWER_OF_TWO); }
END_TEST

int main(void)
{
    Suite *s = suite_create("compute_set");
    TCase *tc = tcase_create("compute_set");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, set_empty_hands_back);
    tcase_add_test(tc, set_round_robin);
    tcase_add_test(tc, set_least_connections);
    tcase_add_test(tc, set_power_of_two);
    suite_add_tcase(s, tc);
    return mrt_check_run(s);
}
